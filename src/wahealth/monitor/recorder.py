"""The health core's observer: every report fetched from Meta is recorded here.

`HealthRepository.record` keeps the last state of each node and stores a
transition only when something that matters changed (overall status, an
entity's status, error codes, additional info), with the cause of the fetch
(poll, webhook, query, manual). The alerts for a transition are planned inside
that same transaction, so a change is never stored without its alerts, nor an
alert sent for a change that was rolled back. Then the alerts of a flapping
node are grouped (see `events`) and the sender is woken.

Alerts of a node under an active silence or an acknowledgement are stored as
suppressed (see `silencing`); an acknowledgement ends with its status. Alerts of a
WABA-level change carry a group key and are merged into one (see `events`).

Every report also reschedules its node one interval later: a node the gateway
just fetched for a query is fresh, and the fleet refresh need not spend a call
on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from wahealth.core.ports import BatchReportObserver
from wahealth.domain import HealthReport, wire_form
from wahealth.domain.records import (
    Acknowledgement,
    PlannedAlert,
    Silence,
    Subscription,
    Transition,
    TransitionCause,
)
from wahealth.monitor.events import (
    alert_document,
    flap_policy,
    group_key,
    group_member,
    merge_group,
    subscriptions_wanting,
    waba_level,
    waba_of,
)
from wahealth.monitor.silencing import suppressed, suppression
from wahealth.storage.errors import StorageError
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.health import HealthRepository, ReportRecord
from wahealth.storage.silences import SilenceRepository

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


@dataclass(frozen=True, slots=True)
class _Context:
    """What every planner of one batch needs: silences, acknowledgements, the time."""

    silences: Sequence[Silence]
    acknowledgements: Mapping[str, Acknowledgement]
    now: datetime
    group_wait: timedelta


@dataclass(slots=True)
class _Planned:
    """What the planner of one report saw and chose, read after the write."""

    report: HealthReport
    context: _Context
    transition: Transition | None = None
    alerts: list[PlannedAlert] = field(default_factory=list)
    grouped: bool = False

    def __call__(
        self, transition: Transition, subscriptions: Sequence[Subscription]
    ) -> list[PlannedAlert]:
        self.transition = transition
        context = self.context
        wanting = subscriptions_wanting(subscriptions, transition.before, transition.after)
        alerts = [
            PlannedAlert(sub.id, event.value, alert_document(event, transition, self.report))
            for sub, event in wanting
        ]
        waba_id = waba_of(self.report)
        ack = context.acknowledgements.get(transition.node_id)
        why = suppression(transition, waba_id, context.silences, ack, context.now)
        if why is not None:
            self.alerts = suppressed(alerts, why)
            return self.alerts
        group_waba = waba_level(transition)
        if group_waba is not None and alerts:
            self.grouped = True
            due = transition.occurred_at + context.group_wait
            alerts = [
                PlannedAlert(
                    alert.subscription_id,
                    alert.event,
                    {**alert.payload, "waba_id": group_waba, "nodes": [group_member(transition)]},
                    group_key=group_key(group_waba, alert.event, transition),
                    due_at=due,
                )
                for alert in alerts
            ]
        self.alerts = alerts
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
        silences: SilenceRepository | None = None,
        group_wait_seconds: float = 0.0,
        on_alerts: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        # Nodes are looked up per batch through `history`: no index of the whole catalog.
        self._history = history
        self._flaps = flaps
        self._interval = timedelta(seconds=interval_seconds)
        self._window = flap_window_seconds
        self._silences = silences
        self._group_wait = timedelta(seconds=group_wait_seconds)
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
        context = await self._context(report.node_id for report in reports)
        plans = [_Planned(report, context) for report in reports]
        # One due time per fetch time (a page's reports share theirs): equal times are one
        # object, which storage converts once.
        due = {at: at + self._interval for at in {report.fetched_at for report in reports}}
        # The kind and space are the catalog's, looked up in the writing transaction.
        records = [
            ReportRecord(
                plan.report.node_id,
                plan.report.node_kind.value,
                None,
                plan.report.can_send_message.value,
                wire_form(plan.report),
                plan.report.error_codes(),
                plan.report.fetched_at,
                stored_cause,
                alerts=plan,
                next_due_at=due[plan.report.fetched_at],
                from_catalog=True,
            )
            for plan in plans
        ]
        ids = await self._history.record_many(records)
        await self._drop_acknowledgements(plans, context)
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
            if plan.grouped:
                await self._group_by_waba(transition_id)
                alerted = True
            elif any(alert.state is None for alert in plan.alerts):
                await self._group(transition_id)
                alerted = True
        if alerted and self._on_alerts is not None:
            self._on_alerts()
        return ids

    async def _context(self, node_ids: Iterable[str]) -> _Context:
        now = self._clock()
        if self._silences is None:
            return _Context((), {}, now, self._group_wait)
        try:
            silences = await self._silences.current(now)
            acks = await self._silences.acknowledgements(node_ids)
        except StorageError as exc:
            # Better an alert too many than a change lost: the write below fails alike.
            log.warning("cannot read silences", error=str(exc))
            silences, acks = [], {}
        return _Context(silences, acks, now, self._group_wait)

    async def _drop_acknowledgements(self, plans: Sequence[_Planned], context: _Context) -> None:
        """An acknowledgement ends with the status it acknowledged."""
        if self._silences is None or not context.acknowledgements:
            return
        changed = [
            plan.transition.node_id
            for plan in plans
            if plan.transition is not None
            and plan.transition.field is None
            and plan.transition.node_id in context.acknowledgements
            and plan.transition.after != context.acknowledgements[plan.transition.node_id].status
        ]
        try:
            await self._silences.clear_acknowledgements(changed)
        except StorageError as exc:
            log.warning("cannot drop acknowledgements", error=str(exc))

    async def _group_by_waba(self, transition_id: int) -> None:
        try:
            await self._flaps.group(transition_id, merge_group)
        except StorageError as exc:
            # The alerts are committed already; they go out one per node.
            log.warning("cannot group alerts", transition_id=transition_id, error=str(exc))

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
