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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from wahealth.core.ports import BatchReportObserver
from wahealth.domain import HealthReport, render_health_status
from wahealth.domain.records import PlannedAlert, Subscription, Transition, TransitionCause
from wahealth.monitor.events import alert_document, flap_policy, subscriptions_wanting
from wahealth.storage.errors import StorageError
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.health import HealthRepository, ReportRecord

log = structlog.get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def transition_cause(cause: str) -> TransitionCause:
    """The stored cause; anything unexpected is recorded as a query (and logged)."""
    try:
        return TransitionCause(cause)
    except ValueError:
        log.warning("unknown refresh cause recorded as query", cause=cause)
        return TransitionCause.QUERY


@dataclass(slots=True)
class _Planned:
    """What the planner of one report saw and chose, read after the write."""

    report: HealthReport
    transition: Transition | None = None
    alerts: list[PlannedAlert] = field(default_factory=list)

    def __call__(
        self, transition: Transition, subscriptions: Sequence[Subscription]
    ) -> list[PlannedAlert]:
        self.transition = transition
        wanting = subscriptions_wanting(subscriptions, transition.before, transition.after)
        self.alerts = [
            PlannedAlert(sub.id, event.value, alert_document(event, transition, self.report))
            for sub, event in wanting
        ]
        return self.alerts


class TransitionRecorder:
    """Records reports as transitions with their alerts; `observe` is the health observer."""

    def __init__(
        self,
        *,
        history: HealthRepository,
        flaps: FlapRepository,
        interval_seconds: float,
        flap_window_seconds: float,
        on_alerts: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        # Nodes are looked up per batch through `history`: no index of the whole catalog.
        self._history = history
        self._flaps = flaps
        self._interval = timedelta(seconds=interval_seconds)
        self._window = flap_window_seconds
        self._on_alerts = on_alerts
        self._clock = clock

    @property
    def observe(self) -> BatchReportObserver:
        """The health core's observer: the recorder itself, which takes one report or many."""
        return self

    async def __call__(self, report: HealthReport, cause: str) -> None:
        await self.record(report, cause)

    async def record(self, report: HealthReport, cause: str) -> int | None:
        """Store the report; the new transition's id if something changed, else None."""
        [transition_id] = await self.record_many([report], cause)
        return transition_id

    async def observe_many(self, reports: Sequence[HealthReport], cause: str) -> None:
        """Store a chunk of reports (a fleet refresh), a few statements per chunk."""
        await self.record_many(reports, cause)

    async def record_many(self, reports: Sequence[HealthReport], cause: str) -> list[int | None]:
        """`record` for each report, in order; the same rows, alerts and grouping."""
        ids: list[int | None] = []
        for batch in _distinct_runs(reports):
            ids.extend(await self._record_batch(batch, cause))
        return ids

    async def _record_batch(self, reports: Sequence[HealthReport], cause: str) -> list[int | None]:
        stored_cause = transition_cause(cause)
        plans = [_Planned(report) for report in reports]
        # The kind and space are the catalog's, looked up in the writing transaction.
        records = [
            ReportRecord(
                plan.report.node_id,
                plan.report.node_kind.value,
                None,
                plan.report.can_send_message.value,
                render_health_status(plan.report),
                plan.report.error_codes(),
                plan.report.fetched_at,
                stored_cause,
                alerts=plan,
                next_due_at=plan.report.fetched_at + self._interval,
                from_catalog=True,
            )
            for plan in plans
        ]
        ids = await self._history.record_many(records)
        alerted = False
        for plan, transition_id in zip(plans, ids, strict=True):
            transition = plan.transition
            if transition_id is None or transition is None:
                continue
            # A first sighting is routine (a new install sees its whole fleet); a change is news.
            (log.debug if transition.before is None else log.info)(
                "health transition",
                node_id=transition.node_id,
                node_kind=transition.node_kind,
                space_id=transition.space_id,
                after=transition.after,
                cause=cause,
                transition_id=transition_id,
                alerts=len(plan.alerts),
            )
            if plan.alerts:
                await self._group(transition_id)
                alerted = True
        if alerted and self._on_alerts is not None:
            self._on_alerts()
        return ids

    async def _group(self, transition_id: int) -> None:
        if self._window <= 0:
            return
        try:
            await self._flaps.fold(transition_id, self._clock(), flap_policy(self._window))
        except StorageError as exc:
            # The alerts are committed already; only the grouping is lost.
            log.warning("cannot group alerts", transition_id=transition_id, error=str(exc))


def _distinct_runs(reports: Sequence[HealthReport]) -> list[Sequence[HealthReport]]:
    """Consecutive runs with no node twice: a node's alerts are grouped after each of its
    writes, in order, as they would be report by report."""
    runs: list[Sequence[HealthReport]] = []
    start, seen = 0, set[str]()
    for index, report in enumerate(reports):
        if report.node_id in seen:
            runs.append(reports[start:index])
            start, seen = index, set()
        seen.add(report.node_id)
    if start < len(reports):
        runs.append(reports[start:])
    return runs
