"""Kept fields (quality, messaging limits, statuses): seen, recorded as transitions, alerted.

`PropertyTracker.observe` is where every observation goes: storage applies it to
the catalog and records each changed field as a transition with its alerts, in one
transaction (`PropertyRepository.record`); then the alerts are grouped like health
alerts (per node and field) and the sender is woken. Observations come from the
Meta calls wahealth makes anyway, never from calls of their own:

- the catalog sync: each listed number and template (`TrackedCatalog`, cause `sync`);
- the fleet refresh: the batch sub-requests ask each node's kept fields beside
  `health_status` (`FieldsUpstream`), and `PropertySink` takes them out of the
  answers before the health core caches them (a health answer never shows them) and
  records them with the refresh's cause. The stored values are read once per chunk,
  with the node kinds the sub-requests need, and an answer that matches them costs no
  further storage work: an unchanged fleet is one read per chunk;
- Meta webhooks: the values the notification carries, then the one refresh call
  the webhook triggers, which asks the fields too (`WebhookRefresh`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from wahealth.core.lru import BoundedLru
from wahealth.core.ports import UpstreamFailure
from wahealth.domain import HealthReport, NodeKind
from wahealth.domain.changes import field_changes
from wahealth.domain.properties import fields_of, split_properties
from wahealth.domain.records import (
    Acknowledgement,
    PlannedAlert,
    PropertyObservation,
    Silence,
    SilenceScope,
    Subscription,
    Transition,
)
from wahealth.monitor.events import field_alert_document, flap_policy, subscriptions_wanting
from wahealth.monitor.recorder import transition_cause
from wahealth.monitor.refresh_ports import ReportSink
from wahealth.monitor.silencing import suppressed, suppression
from wahealth.storage.catalog import CatalogRepository, ReplaceSummary
from wahealth.storage.errors import StorageError
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.properties import PropertyRepository
from wahealth.storage.silences import SilenceRepository

log = structlog.get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FieldsGraph(Protocol):
    """The Graph client calls that can ask a node's kept fields beside its health."""

    async def health(
        self, node_id: str, *, attempts: int | None = None, kind: NodeKind | None = None
    ) -> HealthReport: ...

    async def batch_health(
        self, node_ids: Sequence[str], *, kinds: Mapping[str, NodeKind] | None = None
    ) -> Mapping[str, HealthReport | Exception]: ...


@dataclass(slots=True)
class _FieldAlerts:
    """Plans the alerts of field transitions; remembers which transitions got any to send."""

    silences: Sequence[Silence] = ()
    acknowledgements: Mapping[str, Acknowledgement] = field(default_factory=dict)
    wabas: Mapping[str, str] = field(default_factory=dict)
    now: datetime = field(default_factory=_utcnow)
    alerted: list[int] = field(default_factory=list)

    def __call__(
        self, transition: Transition, subscriptions: Sequence[Subscription]
    ) -> list[PlannedAlert]:
        wanting = subscriptions_wanting(
            subscriptions,
            transition.before,
            transition.after,
            field=transition.field,
            node_kind=transition.node_kind,
        )
        alerts = [
            PlannedAlert(sub.id, event.value, field_alert_document(event, transition))
            for sub, event in wanting
        ]
        node_id = transition.node_id
        why = suppression(
            transition,
            self.wabas.get(node_id),
            self.silences,
            self.acknowledgements.get(node_id),
            self.now,
        )
        if why is not None:
            return suppressed(alerts, why)
        if alerts:
            self.alerted.append(transition.id)
        return alerts


class PropertyTracker:
    """Records observations of kept fields; a change is a transition with its alerts."""

    def __init__(
        self,
        *,
        properties: PropertyRepository,
        flaps: FlapRepository,
        flap_window_seconds: float,
        on_alerts: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        silences: SilenceRepository | None = None,
    ) -> None:
        self.properties = properties
        self._silences = silences
        self._flaps = flaps
        self._window = flap_window_seconds
        self._on_alerts = on_alerts
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def observe(self, observations: Sequence[PropertyObservation], cause: str) -> list[int]:
        """Apply and record the observations; the ids of the transitions they made."""
        if not observations:
            return []
        planner = _FieldAlerts(now=self._clock())

        async def read_silences() -> None:
            # Only when something is written: a catalog sync of new numbers reads nothing.
            await self._read_silences(planner, [o.node_id for o in observations])

        ids = await self.properties.record(
            observations, transition_cause(cause), alerts=planner, before_write=read_silences
        )
        if ids:
            log.info("kept fields changed", transitions=len(ids), cause=cause)
        for transition_id in planner.alerted:
            await self._group(transition_id)
        if planner.alerted and self._on_alerts is not None:
            self._on_alerts()
        return ids

    async def _read_silences(self, planner: _FieldAlerts, node_ids: Sequence[str]) -> None:
        if self._silences is None:
            return
        now = planner.now
        try:
            silences = [s for s in await self._silences.current(now) if s.active_at(now)]
            acks = await self._silences.acknowledgements(node_ids)
            wabas = {}
            if any(s.scope is SilenceScope.WABA for s in silences):
                wabas = await self._silences.wabas_of(node_ids)
        except StorageError as exc:
            log.warning("cannot read silences", error=str(exc))
            return
        planner.silences, planner.acknowledgements, planner.wabas = silences, acks, wabas

    async def observe_records(self, kind: NodeKind, records: Iterable[Any], cause: str) -> None:
        """Catalog records (from an edge listing) as observations seen now."""
        now = self._clock()
        names = fields_of(kind)
        await self.observe(
            [
                PropertyObservation(record.id, {n: getattr(record, n, None) for n in names}, now)
                for record in records
            ],
            cause,
        )

    async def observe_quietly(
        self, observations: Sequence[PropertyObservation], cause: str
    ) -> None:
        """`observe`, logging a failure: the next observation finds the change again."""
        try:
            await self.observe(observations, cause)
        except Exception:
            log.exception("cannot record kept fields", nodes=len(observations), cause=cause)

    async def _group(self, transition_id: int) -> None:
        if self._window <= 0:
            return
        try:
            await self._flaps.fold(transition_id, self._clock(), flap_policy(self._window))
        except StorageError as exc:
            log.warning("cannot group alerts", transition_id=transition_id, error=str(exc))


class TrackedCatalog:
    """The catalog writer of the catalog sync: each synced record is an observation first."""

    def __init__(self, catalog: CatalogRepository, tracker: PropertyTracker) -> None:
        self._catalog = catalog
        self._tracker = tracker

    async def replace_phone_numbers(self, waba_id: str, records: Sequence[Any]) -> ReplaceSummary:
        await self._tracker.observe_records(NodeKind.PHONE_NUMBER, records, "sync")
        return await self._catalog.replace_phone_numbers(waba_id, records)

    async def replace_templates(self, waba_id: str, records: Sequence[Any]) -> ReplaceSummary:
        await self._tracker.observe_records(NodeKind.MESSAGE_TEMPLATE, records, "sync")
        return await self._catalog.replace_templates(waba_id, records)


# Stored values read for chunks in flight, per node, until the chunk's answers come back.
Snapshots = BoundedLru[str, dict[str, str | None]]
SNAPSHOT_MAX_NODES = 20_000  # a few rounds in flight; a node whose fetch failed ages out
_SNAPSHOT_ENTRY_BYTES = 600


def snapshots() -> Snapshots:
    return BoundedLru(SNAPSHOT_MAX_NODES, SNAPSHOT_MAX_NODES * _SNAPSHOT_ENTRY_BYTES)


class FieldsUpstream:
    """The fleet refresh's upstream: each catalog node is asked its kept fields too."""

    def __init__(
        self, graph: FieldsGraph, properties: PropertyRepository, stored: Snapshots
    ) -> None:
        self._graph = graph
        self._properties = properties
        self._stored = stored

    def meta_calls(self, node_ids: Sequence[str]) -> int:
        """How many of these nodes Meta is asked for (the rest go to BSP upstreams)."""
        counted = getattr(self._graph, "meta_calls", None)
        return int(counted(node_ids)) if callable(counted) else len(node_ids)

    async def batch_health(self, node_ids: Sequence[str]) -> Mapping[str, HealthReport | Exception]:
        try:
            snapshot = await self._properties.snapshot(node_ids)
        except StorageError as exc:  # health first: the fields wait for the next round
            log.warning("cannot read the kept fields; refreshing health only", error=str(exc))
            snapshot = {}
        for node_id, (_, values) in snapshot.items():
            self._stored.put(node_id, values, _SNAPSHOT_ENTRY_BYTES)
        kinds = {node_id: kind for node_id, (kind, _) in snapshot.items()}
        return await self._graph.batch_health(node_ids, kinds=kinds)


class PropertySink:
    """The fleet refresh's sink: kept fields out of the reports, health to the health core."""

    def __init__(
        self, health: ReportSink, tracker: PropertyTracker, stored: Snapshots | None = None
    ) -> None:
        self._health = health
        self._tracker = tracker
        self._stored = stored

    async def accept(self, report: HealthReport, *, cause: str) -> None:
        [bare], observations = self._split([report])
        await self._health.accept(bare, cause=cause)
        await self._tracker.observe_quietly(observations, cause)

    async def accept_many(self, reports: Sequence[HealthReport], *, cause: str) -> None:
        bare, observations = self._split(reports)
        await self._health.accept_many(bare, cause=cause)
        await self._tracker.observe_quietly(observations, cause)

    def _split(
        self, reports: Sequence[HealthReport]
    ) -> tuple[list[HealthReport], list[PropertyObservation]]:
        """The bare reports, and the observations that may change something: those equal
        to the values read before the fetch are dropped here."""
        bare, observations = [], []
        for report in reports:
            health, values = split_properties(report)
            bare.append(health)
            stored = self._stored.pop(report.node_id) if self._stored is not None else None
            if values and (stored is None or field_changes(stored, values)[0]):
                observations.append(PropertyObservation(report.node_id, values, report.fetched_at))
        return bare, observations

    def failed(self, node_id: str, error: Exception) -> None:
        self._health.failed(node_id, error)


class HealthRefresh(Protocol):
    async def refresh(self, node_id: str, *, cause: str = ...) -> HealthReport: ...


class WebhookRefresh:
    """A webhook's refresh of one node: health and kept fields in one Graph call."""

    def __init__(
        self,
        graph: FieldsGraph,
        health: HealthRefresh,
        sink: PropertySink,
        tracker: PropertyTracker,
    ) -> None:
        self._graph = graph
        self._health = health
        self._sink = sink
        self._tracker = tracker

    async def __call__(self, node_id: str, cause: str) -> None:
        kind = (await self._tracker.properties.kinds([node_id])).get(node_id)
        if kind is None:  # a WABA: health only, coalesced with any fetch in flight
            await self._health.refresh(node_id, cause=cause)
            return
        try:
            report = await self._graph.health(node_id, kind=kind)
        except UpstreamFailure as exc:
            self._sink.failed(node_id, exc)
            raise
        await self._sink.accept(report, cause=cause)
