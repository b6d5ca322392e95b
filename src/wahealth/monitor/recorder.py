"""The health core's observer: every report fetched from Meta is recorded here.

`HealthRepository.record` keeps the last state of each node and stores a
transition only when something that matters changed (overall status, an
entity's status, error codes, additional info), with the cause of the fetch
(poll, webhook, query, manual). The alerts for a transition are planned inside
that same transaction, so a change is never stored without its alerts, nor an
alert sent for a change that was rolled back. Then the alerts of a flapping
node are grouped (see `events`) and the sender is woken.

Every report also reschedules its node one interval later: a node the gateway
just fetched for a query is fresh, and the fleet refresh need not spend a call
on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from wahealth.domain import HealthReport, render_health_status
from wahealth.domain.records import PlannedAlert, Subscription, Transition, TransitionCause
from wahealth.monitor.events import alert_document, flap_policy, subscriptions_wanting
from wahealth.storage.catalog import NodeRef
from wahealth.storage.errors import StorageError
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.health import HealthRepository

log = structlog.get_logger(__name__)

NODE_INDEX_SECONDS = 300.0
NODE_INDEX_RELOAD_SECONDS = 5.0


class NodeCatalog(Protocol):
    """Every node's kind and space (the catalog repository)."""

    async def all_nodes(self, include_disabled: bool = False) -> list[NodeRef]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def transition_cause(cause: str) -> TransitionCause:
    """The stored cause; anything unexpected is recorded as a query (and logged)."""
    try:
        return TransitionCause(cause)
    except ValueError:
        log.warning("unknown refresh cause recorded as query", cause=cause)
        return TransitionCause.QUERY


class TransitionRecorder:
    """Records reports as transitions with their alerts; `observe` is the health observer."""

    def __init__(
        self,
        *,
        history: HealthRepository,
        catalog: NodeCatalog,
        flaps: FlapRepository,
        interval_seconds: float,
        flap_window_seconds: float,
        on_alerts: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._history = history
        self._catalog = catalog
        self._flaps = flaps
        self._interval = timedelta(seconds=interval_seconds)
        self._window = flap_window_seconds
        self._on_alerts = on_alerts
        self._clock = clock
        self._monotonic = monotonic
        self._index: dict[str, NodeRef] = {}
        self._loaded_at = float("-inf")

    async def observe(self, report: HealthReport, cause: str) -> None:
        """The `ReportObserver` the health core calls with every upstream report."""
        await self.record(report, cause)

    async def record(self, report: HealthReport, cause: str) -> int | None:
        """Store the report; the new transition's id if something changed, else None."""
        ref = await self._node(report.node_id)
        kind = ref.kind.value if ref is not None else report.node_kind.value
        space_id = ref.space_id if ref is not None else None
        planned: list[PlannedAlert] = []
        stored: list[Transition] = []

        def plan(
            transition: Transition, subscriptions: Sequence[Subscription]
        ) -> list[PlannedAlert]:
            stored.append(transition)
            wanting = subscriptions_wanting(subscriptions, transition.before, transition.after)
            planned[:] = [
                PlannedAlert(sub.id, event.value, alert_document(event, transition, report))
                for sub, event in wanting
            ]
            return planned

        transition_id = await self._history.record(
            report.node_id,
            kind,
            space_id,
            report.can_send_message.value,
            render_health_status(report),
            report.error_codes(),
            report.fetched_at,
            transition_cause(cause),
            alerts=plan,
            next_due_at=report.fetched_at + self._interval,
        )
        if transition_id is None:
            return None
        # A first sighting is routine (a new install sees its whole fleet); a change is news.
        first_seen = bool(stored) and stored[0].before is None
        (log.debug if first_seen else log.info)(
            "health transition",
            node_id=report.node_id,
            node_kind=kind,
            space_id=space_id,
            after=report.can_send_message.value,
            cause=cause,
            transition_id=transition_id,
            alerts=len(planned),
        )
        if planned:
            await self._group(transition_id)
            if self._on_alerts is not None:
                self._on_alerts()
        return transition_id

    async def _group(self, transition_id: int) -> None:
        if self._window <= 0:
            return
        try:
            await self._flaps.fold(transition_id, self._clock(), flap_policy(self._window))
        except StorageError as exc:
            # The alerts are committed already; only the grouping is lost.
            log.warning("cannot group alerts", transition_id=transition_id, error=str(exc))

    async def _node(self, node_id: str) -> NodeRef | None:
        """The node's catalog entry, from an index of the whole catalog.

        One query loads every node (a fleet refresh would otherwise ask once per
        node); the index is reloaded when it is old, or on a miss, at most once
        every `NODE_INDEX_RELOAD_SECONDS`, since a node may have just been synced.
        """
        now = self._monotonic()
        ref = self._index.get(node_id)
        if ref is not None and now < self._loaded_at + NODE_INDEX_SECONDS:
            return ref
        if now >= self._loaded_at + NODE_INDEX_RELOAD_SECONDS:
            refs = await self._catalog.all_nodes(include_disabled=True)
            self._index = {ref.node_id: ref for ref in refs}
            self._loaded_at = now
        return self._index.get(node_id)
