"""Meta's change notifications, acted on: mark the nodes outdated, then refresh them.

The HTTP endpoint (`wahealth.web.meta_webhooks`) verifies each notification and hands
it here; this never blocks the answer to Meta. Every node a change concerns is marked
outdated at once (its cached report is then served only as stale), then refreshed
through `refresh(node_id, "webhook")`, which records the transition and enqueues its
alerts like any other refresh. Refreshes are bounded: at most one per node per
`min_refresh_interval_seconds`, and each spends the monitor's Meta call budget (when
the budget is spent, the node stays outdated and the next poll picks it up).

Which nodes a change concerns:

| field | nodes refreshed |
|---|---|
| `account_update` | the WABA (`entry[].id`), its phone numbers and templates |
| `business_capability_update` | the WABA and its phone numbers |
| `phone_number_quality_update`, `phone_number_name_update` | the number with that display number |
| `message_template_status_update`, `..._quality_update`, `template_category_update` | the template |

Other fields are acknowledged and ignored. The refresh of a phone number or template
asks its kept fields (quality, limits, statuses) in the same call, so an
`account_update` or a `phone_number_quality_update` is seen in full. Before it, the
values a notification itself carries are recorded at once (cause `webhook`), so a
change is known even when the budget leaves no call for the refresh:

| field | value | kept field |
|---|---|---|
| `phone_number_quality_update` | `current_limit` | `messaging_limit_tier` |
| | `max_daily_conversations_per_business` | `whatsapp_business_manager_messaging_limit` |
| `message_template_status_update` | `event`, when it is a template status | `status` |
| | `reason`, when the event is `REJECTED` | `rejected_reason` |
| `message_template_quality_update` | `new_quality_score` | `quality_score` |
| `template_category_update` | `new_category` | `category` |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from wahealth.core.lru import BoundedLru
from wahealth.core.ports import BackendUnavailable, MetaBudget
from wahealth.domain import normalize_phone_number
from wahealth.domain.records import PropertyObservation

log = structlog.get_logger(__name__)

_REFRESH_CONCURRENCY = 4
CAUSE = "webhook"

Refresh = Callable[[str, str], Awaitable[object]]
MarkOutdated = Callable[[str], Awaitable[None]]
Observe = Callable[[Sequence[PropertyObservation], str], Awaitable[object]]

# Template statuses Meta documents (an event that is one of them is the new status).
TEMPLATE_STATUSES = frozenset(
    {
        "APPROVED",
        "IN_APPEAL",
        "PENDING",
        "REJECTED",
        "PENDING_DELETION",
        "DELETED",
        "DISABLED",
        "PAUSED",
        "LIMIT_EXCEEDED",
        "ARCHIVED",
        "LOCKED",
    }
)
_TEMPLATE_FIELDS = (
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def notified_values(field: str, value: Mapping[str, Any]) -> dict[str, str | None]:
    """The kept fields a notification states outright (see the module's table)."""
    if field == "phone_number_quality_update":
        return {
            "messaging_limit_tier": _text(value.get("current_limit")),
            "whatsapp_business_manager_messaging_limit": _text(
                value.get("max_daily_conversations_per_business")
            ),
        }
    if field == "message_template_status_update":
        event = _text(value.get("event"))
        values = {"status": event if event in TEMPLATE_STATUSES else None}
        if event == "REJECTED":
            values["rejected_reason"] = _text(value.get("reason"))
        return values
    if field == "message_template_quality_update":
        return {"quality_score": _text(value.get("new_quality_score"))}
    if field == "template_category_update":
        return {"category": _text(value.get("new_category"))}
    return {}


class WebhookCatalog(Protocol):
    """What the ingest needs of the catalog (`CatalogRepository` has it)."""

    async def phone_numbers_of_waba(self, waba_id: str) -> Iterable[Any]: ...

    async def templates_of_waba(self, waba_id: str) -> Iterable[Any]: ...


class MetaWebhookIngest:
    """Turns verified notifications into outdated marks and bounded refreshes."""

    def __init__(
        self,
        *,
        catalog: WebhookCatalog,
        refresh: Refresh,
        mark_outdated: MarkOutdated,
        budget: MetaBudget | None = None,
        min_refresh_interval_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        observe: Observe | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self._refresh = refresh
        self._mark_outdated = mark_outdated
        self._observe = observe
        self._wall_clock = wall_clock
        self._budget = budget
        self._min_interval = min_refresh_interval_seconds
        self._clock = clock
        self._last_refresh: BoundedLru[str, float] = BoundedLru(100_000, 16 * 1024 * 1024)
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, document: Mapping[str, Any]) -> None:
        """Act on a verified notification in the background."""
        self._spawn(self._process(document))

    async def drain(self) -> None:
        """Wait for every refresh scheduled so far (on stop, before cancelling the rest)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel refreshes still running (Meta's answer is already given; the poller covers)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, document: Mapping[str, Any]) -> None:
        node_ids: dict[str, None] = {}
        observations: list[PropertyObservation] = []
        for entry in _objects(document.get("entry")):
            waba_id = str(entry.get("id") or "")
            for change in _objects(entry.get("changes")):
                field = str(change.get("field") or "")
                value = change.get("value")
                value = value if isinstance(value, Mapping) else {}
                try:
                    found = await self._nodes_for(field, waba_id, value)
                except Exception:
                    log.exception(
                        "meta webhook: cannot resolve nodes", field=field, waba_id=waba_id
                    )
                    continue
                log.info("meta webhook", field=field, waba_id=waba_id, nodes=len(found))
                node_ids.update(dict.fromkeys(found))
                values = notified_values(field, value)
                if any(v is not None for v in values.values()):
                    # Seen on arrival, by our clock: Meta's `time` is another clock's.
                    now = self._wall_clock()
                    observations += [PropertyObservation(n, values, now) for n in found]
        if observations and self._observe is not None:
            try:
                await self._observe(observations, CAUSE)
            except Exception:
                log.exception("meta webhook: cannot record the values it carries")
        for node_id in node_ids:
            await self._mark_outdated(node_id)
        limit = asyncio.Semaphore(_REFRESH_CONCURRENCY)

        async def refresh(node_id: str) -> None:
            if not await self._may_refresh(node_id):
                return
            async with limit:
                try:
                    await self._refresh(node_id, CAUSE)
                except Exception as exc:  # noqa: BLE001 — logged; the poller covers it
                    # One node Meta cannot answer for must not stop the others.
                    log.warning(
                        "refresh after meta webhook failed",
                        node_id=node_id,
                        error=f"{type(exc).__name__}: {exc}",
                    )

        await asyncio.gather(*(refresh(node_id) for node_id in node_ids))

    async def _may_refresh(self, node_id: str) -> bool:
        now = self._clock()
        last = self._last_refresh.get(node_id)
        if last is not None and now - last < self._min_interval:
            log.info("webhook refresh skipped: refreshed moments ago", node_id=node_id)
            return False
        if self._budget is not None and not await self._spent_one():
            log.info("webhook refresh skipped: Meta call budget spent", node_id=node_id)
            return False
        self._last_refresh.put(node_id, now, len(node_id))
        return True

    async def _spent_one(self) -> bool:
        assert self._budget is not None
        try:
            return (await self._budget.spend(1)).calls == 1
        except BackendUnavailable as exc:
            log.warning("Meta call budget unavailable", error=str(exc))
            return False

    async def _nodes_for(self, field: str, waba_id: str, value: Mapping[str, Any]) -> list[str]:
        if not waba_id.isdigit():
            return []
        if field == "account_update":
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            templates = await self._catalog.templates_of_waba(waba_id)
            return [waba_id, *(n.id for n in numbers), *(t.id for t in templates)]
        if field == "business_capability_update":
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            return [waba_id, *(n.id for n in numbers)]
        if field in ("phone_number_quality_update", "phone_number_name_update"):
            digits = normalize_phone_number(str(value.get("display_phone_number") or ""))
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            matches = [n.id for n in numbers if digits and n.digits == digits]
            if not matches:
                log.info("meta webhook for a phone number not in the catalog", waba_id=waba_id)
            return matches
        if field in _TEMPLATE_FIELDS:
            template_id = str(value.get("message_template_id") or "")
            return [template_id] if template_id.isdigit() else []
        return []


def _objects(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]
