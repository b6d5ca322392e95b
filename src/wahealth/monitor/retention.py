"""Retention: prune old history and finished alerts in the background.

A thin cancellable loop around `step`; what is old is decided by the pure `cutoffs`.
Folded flap groups are outbox rows, so they go with the alerts. Nonces and webhook
digests expire on their own in the nonce store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from wahealth.domain.records import AlertState
from wahealth.settings import RetentionSettings
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.purge import Purge

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these moments are deleted."""

    history: datetime
    delivered_alerts: datetime
    dead_alerts: datetime


def cutoffs(now: datetime, settings: RetentionSettings) -> Cutoffs:
    """The cut-offs at `now` for the configured ages."""
    return Cutoffs(
        history=now - timedelta(days=settings.history_days),
        delivered_alerts=now - timedelta(days=settings.delivered_alerts_days),
        dead_alerts=now - timedelta(days=settings.dead_alerts_days),
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Retention:
    """Prunes history and finished alerts on a schedule."""

    settings: RetentionSettings
    health: HealthRepository
    outbox: OutboxRepository
    clock: Callable[[], datetime] = _utcnow
    # Spaces and accounts deleted longer ago than history is kept are purged (None: never).
    purge: Purge | None = None

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
            # Kept as long as delivered ones: they are the record of what a silence held back.
            "suppressed_alerts": await self.outbox.prune_alerts(
                AlertState.SUPPRESSED, at.delivered_alerts, batch=batch
            ),
            "history": await self.health.prune_transitions(at.history, batch=batch),
        }
        if self.purge is not None:
            purged = await self.purge.purge_deleted_before(at.history)
            if purged:
                log.info("deleted tenants purged", purged=purged)
            deleted["purged_tenants"] = len(purged)
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
