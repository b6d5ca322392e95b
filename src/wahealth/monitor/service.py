"""The monitor as the app sees it: its parts, built in order, and one start and stop.

It owns the fleet refresh, the transition recorder, the alert sender, the
alerts of ended silences, the retention pruning and the Meta webhook ingest; it
serves no HTTP (the adapters in `wahealth.web` do).
Transitions and alerts are recorded whenever the health core fetches a report,
whether or not the loops run; `monitor.enabled` only decides whether this
process refreshes the fleet and delivers alerts. On PostgreSQL every replica may:
the refresh claims its due nodes (`storage.schedule`) and the sender its alerts,
under one replica id, so each node is refreshed and each alert sent once. The Meta
call budget is the one the health core spends too (in Redis: every replica's).

The recorder is built before the health core (which reports to it), the tracker of
kept fields before the catalog sync (which reports to it), and the rest after them,
so nothing needs wiring after it is built:

    tracker = build_tracker(settings, sessions, sender)
    sync = CatalogSync(graph, TrackedCatalog(catalog, tracker))
    recorder = build_recorder(settings, sessions, sender)
    health = HealthService(..., observers=(recorder.observe,))
    monitor = Monitor.build(settings, sessions, secretbox, sender, health, graph, budget, tracker)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from wahealth.auth.secretbox import SecretBox
from wahealth.core.health import HealthService
from wahealth.core.ports import MetaBudget
from wahealth.monitor.connections import ConnectionWatch
from wahealth.monitor.meta_webhooks import MetaWebhookIngest
from wahealth.monitor.outbox import OutboxSender
from wahealth.monitor.properties import (
    FieldsGraph,
    FieldsUpstream,
    PropertySink,
    PropertyTracker,
    WebhookRefresh,
    snapshots,
)
from wahealth.monitor.recorder import TransitionRecorder
from wahealth.monitor.refresh import FleetRefresher
from wahealth.monitor.retention import Retention
from wahealth.monitor.silencing import SilenceWatch
from wahealth.monitor.subscriptions import apply_subscriptions
from wahealth.settings import Settings
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.engine import is_sqlite
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.properties import PropertyRepository
from wahealth.storage.purge import Purge
from wahealth.storage.schedule import ClaimedSchedule
from wahealth.storage.silences import SilenceRepository

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10.0
ROUND_SECONDS = 5.0


def build_sender(settings: Settings, sessions: Any, secretbox: SecretBox) -> OutboxSender:
    """The alert sender (its outbox is written in each transition's transaction)."""
    alerts = settings.alerts
    return OutboxSender(
        OutboxRepository(sessions),
        secretbox,
        allow_private_targets=alerts.allow_private_targets,
        max_attempts=alerts.max_attempts,
        smtp=alerts.smtp,
        lease_seconds=settings.monitor.outbox_lease_seconds,
    )


def build_recorder(settings: Settings, sessions: Any, sender: OutboxSender) -> TransitionRecorder:
    """The transition recorder the health core reports every fetched report to."""
    return TransitionRecorder(
        history=HealthRepository(sessions),
        flaps=FlapRepository(sessions),
        interval_seconds=settings.monitor.interval_seconds,
        flap_window_seconds=settings.alerts.flap_window_seconds,
        silences=SilenceRepository(sessions),
        group_wait_seconds=settings.alerts.group_wait_seconds,
        on_alerts=sender.wake,
    )


def build_tracker(settings: Settings, sessions: Any, sender: OutboxSender) -> PropertyTracker:
    """The tracker of kept fields the catalog sync, the refresh and webhooks report to."""
    return PropertyTracker(
        properties=PropertyRepository(sessions),
        flaps=FlapRepository(sessions),
        flap_window_seconds=settings.alerts.flap_window_seconds,
        on_alerts=sender.wake,
        silences=SilenceRepository(sessions),
    )


def fleet_schedule(
    settings: Settings, sessions: Any, replica_id: str
) -> HealthRepository | ClaimedSchedule:
    """The refresh's schedule: claimed per replica on PostgreSQL, plain on SQLite (one
    writer, one process refreshing)."""
    if is_sqlite(settings.storage.url):
        return HealthRepository(sessions)
    lease = timedelta(seconds=settings.monitor.schedule_lease_seconds)
    return ClaimedSchedule(sessions, by=replica_id, lease=lease)


@dataclass
class Monitor:
    """Fleet refresh, alert delivery and Meta webhook ingestion, started and stopped together."""

    settings: Settings
    secretbox: SecretBox
    outbox: OutboxRepository
    history: HealthRepository
    refresher: FleetRefresher
    sender: OutboxSender
    webhooks: MetaWebhookIngest
    retention: Retention
    tracker: PropertyTracker
    silence_watch: SilenceWatch
    connection_watch: ConnectionWatch | None = None
    _stop: asyncio.Event | None = field(init=False, default=None)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessions: Any,
        secretbox: SecretBox,
        sender: OutboxSender,
        health: HealthService,
        graph: FieldsGraph,
        budget: MetaBudget,
        tracker: PropertyTracker,
        connection_watch: ConnectionWatch | None = None,
    ) -> Monitor:
        monitor = settings.monitor
        history = HealthRepository(sessions)
        # The refresh's calls ask each node's kept fields too; the sink records them.
        stored = snapshots()
        sink = PropertySink(health, tracker, stored)
        refresher = FleetRefresher(
            upstream=FieldsUpstream(graph, tracker.properties, stored),
            sink=sink,
            schedule=fleet_schedule(settings, sessions, sender.replica_id),
            calls_per_minute=monitor.meta_calls_per_minute,
            interval_seconds=monitor.interval_seconds,
            # Rounds rarer than the interval would leave nodes stale for no reason.
            round_seconds=min(ROUND_SECONDS, monitor.interval_seconds),
            budget=budget,
        )
        webhooks = MetaWebhookIngest(
            catalog=CatalogRepository(sessions),
            refresh=WebhookRefresh(graph, health, sink, tracker),
            mark_outdated=health.mark_outdated,
            budget=budget,
            min_refresh_interval_seconds=settings.meta_webhooks.min_refresh_interval_seconds,
            observe=tracker.observe,
        )
        outbox = OutboxRepository(sessions)
        return cls(
            settings=settings,
            secretbox=secretbox,
            outbox=outbox,
            history=history,
            refresher=refresher,
            sender=sender,
            webhooks=webhooks,
            retention=Retention(settings.retention, history, outbox, purge=Purge(sessions)),
            tracker=tracker,
            silence_watch=SilenceWatch(
                SilenceRepository(sessions),
                poll_seconds=settings.alerts.silence_poll_seconds,
                on_alerts=sender.wake,
            ),
            connection_watch=connection_watch,
        )

    async def start(self) -> None:
        """Apply the configured subscriptions; start the loops if `monitor.enabled`."""
        try:
            await apply_subscriptions(self.settings, self.outbox, self.secretbox)
        except BaseException:
            await self.sender.aclose()
            raise
        if not self.settings.monitor.enabled:
            log.debug("monitor loops disabled: no fleet refresh or alert delivery here")
            return
        stop = self._stop = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self.refresher.run(stop), name="wahealth-fleet-refresh"),
            asyncio.create_task(self.sender.run(stop), name="wahealth-alert-delivery"),
            asyncio.create_task(self.silence_watch.run(stop), name="wahealth-silence-ends"),
        ]
        if self.connection_watch is not None:
            self._tasks.append(
                asyncio.create_task(self.connection_watch.run(stop), name="wahealth-connections")
            )
        if self.settings.retention.enabled:
            self._tasks.append(
                asyncio.create_task(self.retention.run(stop), name="wahealth-retention")
            )

    async def stop(self) -> None:
        """Stop the loops; nothing in flight is lost (the outbox is persisted)."""
        if self._stop is not None:
            self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            # Refreshes a webhook asked for finish, so their transitions are recorded.
            await asyncio.wait_for(self.webhooks.drain(), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("webhook refreshes still running at stop; the next poll covers them")
        await self.webhooks.aclose()
        await self.sender.aclose()
