"""The monitor as the app sees it: one object with an observer, routes, start and stop.

It owns the fleet refresh, the transition recorder, the alert sender and the
Meta webhook ingest. Transitions and alerts are recorded whenever the health
core fetches a report, whether or not the loops run; `monitor.enabled` only
decides whether this process refreshes the fleet and delivers alerts (run
them on one replica: the call budget is per process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.routing import BaseRoute

from wahealth.auth.secretbox import SecretBox
from wahealth.core.catalog_sync import CatalogSync
from wahealth.core.directory import Directory, Principal
from wahealth.core.health import HealthService
from wahealth.domain import HealthReport
from wahealth.monitor.meta_webhooks import MetaWebhookIngest
from wahealth.monitor.outbox import OutboxSender
from wahealth.monitor.recorder import TransitionRecorder
from wahealth.monitor.refresh import FleetRefresher
from wahealth.monitor.subscriptions import apply_subscriptions
from wahealth.settings import Settings
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import OutboxRepository
from wahealth.upstream.graph import GraphClient
from wahealth.web.history import history_routes

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10.0
ROUND_SECONDS = 5.0


@dataclass
class Monitor:
    """Fleet refresh, transitions, alert delivery and Meta webhook ingestion."""

    settings: Settings
    health: HealthService
    graph: GraphClient
    sessions: Any  # async_sessionmaker
    secretbox: SecretBox
    directory: Directory
    catalog_sync: CatalogSync
    clock: Callable[[], float] = time.time
    # Counts history API calls against the account's rate (the gateway's admit).
    admit: Callable[[Principal], Awaitable[None]] | None = None
    history: HealthRepository = field(init=False)
    outbox: OutboxRepository = field(init=False)
    recorder: TransitionRecorder = field(init=False)
    refresher: FleetRefresher = field(init=False)
    sender: OutboxSender = field(init=False)
    webhooks: MetaWebhookIngest = field(init=False)
    _stop: asyncio.Event | None = field(init=False, default=None)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        monitor, alerts = self.settings.monitor, self.settings.alerts
        self.history = HealthRepository(self.sessions)
        self.outbox = OutboxRepository(self.sessions)
        self.sender = OutboxSender(
            self.outbox,
            self.secretbox,
            allow_private_targets=alerts.allow_private_targets,
            max_attempts=alerts.max_attempts,
        )
        self.recorder = TransitionRecorder(
            history=self.history,
            catalog=CatalogRepository(self.sessions),
            flaps=FlapRepository(self.sessions),
            interval_seconds=monitor.interval_seconds,
            flap_window_seconds=alerts.flap_window_seconds,
            on_alerts=self.sender.wake,
        )
        self.refresher = FleetRefresher(
            upstream=self.graph,
            sink=self.health,
            schedule=self.history,
            calls_per_minute=monitor.meta_calls_per_minute,
            interval_seconds=monitor.interval_seconds,
            # Rounds rarer than the interval would leave nodes stale for no reason.
            round_seconds=min(ROUND_SECONDS, monitor.interval_seconds),
            clock=self.clock,
        )
        webhooks = self.settings.meta_webhooks
        self.webhooks = MetaWebhookIngest(
            verify_token=webhooks.verify_token,
            app_secret=webhooks.app_secret,
            catalog=CatalogRepository(self.sessions),
            refresh=self._refresh_for_webhook,
        )

    async def observe(self, report: HealthReport, cause: str) -> None:
        """Called with every report fetched from upstream (records transitions)."""
        await self.recorder.observe(report, cause)

    def routes(self) -> list[BaseRoute]:
        """HTTP routes the monitor serves (history API, Meta webhooks)."""
        return [*history_routes(self.directory, self.history, self.admit), *self.webhooks.routes()]

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
        ]

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
        await self.webhooks.aclose()
        await self.sender.aclose()

    async def _refresh_for_webhook(self, node_id: str, cause: str) -> object:
        return await self.health.refresh(node_id, cause=cause)
