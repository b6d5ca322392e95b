"""Retention: prune old history, finished alerts and webhook digests in the background.

A thin cancellable loop around `step`; what is old is decided by the pure `cutoffs`.
Folded flap groups are outbox rows, so they go with the alerts. Tables added later
(webhook digests) register a prune hook: an async callable taking a cut-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from wahealth.settings import RetentionSettings
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import AlertState, OutboxRepository

log = structlog.get_logger(__name__)

PruneHook = Callable[[datetime], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these moments are deleted."""

    history: datetime
    delivered_alerts: datetime
    dead_alerts: datetime
    webhook_digests: datetime


def cutoffs(now: datetime, settings: RetentionSettings) -> Cutoffs:
    """The cut-offs at `now` for the configured ages."""
    return Cutoffs(
        history=now - timedelta(days=settings.history_days),
        delivered_alerts=now - timedelta(days=settings.delivered_alerts_days),
        dead_alerts=now - timedelta(days=settings.dead_alerts_days),
        webhook_digests=now - timedelta(days=settings.webhook_digests_days),
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Retention:
    """Prunes on a schedule; `hooks` prune further tables (e.g. webhook digests) by cut-off."""

    settings: RetentionSettings
    health: HealthRepository
    outbox: OutboxRepository
    hooks: Mapping[str, PruneHook] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utcnow

    async def step(self) -> dict[str, int]:
        """One pruning pass; rows deleted per kind."""
        at = cutoffs(self.clock(), self.settings)
        batch = self.settings.batch_size
        deleted = {
            # Alerts first: a transition with a pending alert is kept, a finished one is not.
            "delivered_alerts": await self.outbox.prune_alerts(
                AlertState.DELIVERED, at.delivered_alerts, batch=batch
            ),
            "dead_alerts": await self.outbox.prune_alerts(
                AlertState.DEAD, at.dead_alerts, batch=batch
            ),
            "history": await self.health.prune_transitions(at.history, batch=batch),
        }
        for name, hook in self.hooks.items():
            deleted[name] = await hook(at.webhook_digests)
        if any(deleted.values()):
            log.info("retention pruned", **deleted)
        return deleted

    async def run(self, stop: asyncio.Event) -> None:
        """Prune every `interval_seconds` until `stop` is set."""
        while not stop.is_set():
            try:
                await self.step()
            except Exception:  # a failed pass must not end the loop
                log.exception("retention pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.interval_seconds)
