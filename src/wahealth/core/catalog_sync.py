"""Keep the catalog (phone numbers, templates per WABA) in step with Meta.

The `phone_numbers` edge brings each number's health too (`PhoneNumberRecord.health`):
once a WABA's numbers are written, their reports go to the health core as fetched by
the sync, so a new fleet is known and fetched in one pass, a page call per hundred
numbers, and the refresh finds them scheduled rather than due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import structlog

from wahealth.core.ports import CatalogUpstream, CatalogWriter, SyncedHealth

log = structlog.get_logger(__name__)

# WABAs fetched at once by `sync_all`: the catalog pages of several WABAs are in flight
# together, while their writes go one at a time (one writer is all SQLite allows anyway).
SYNC_CONCURRENCY = 8


class CatalogSync:
    """Copies `/{waba}/phone_numbers` and `/{waba}/message_templates` into storage."""

    def __init__(
        self,
        upstream: CatalogUpstream,
        writer: CatalogWriter,
        health: SyncedHealth | None = None,
    ):
        self._upstream = upstream
        self._writer = writer
        self._health = health
        self._writes = asyncio.Lock()

    async def sync_waba(self, waba_id: str) -> tuple[int, int]:
        """Sync one WABA; returns (phone numbers, templates) seen."""
        numbers = await self._upstream.phone_numbers(waba_id)
        templates = await self._upstream.message_templates(waba_id)
        async with self._writes:
            await self._writer.replace_phone_numbers(waba_id, numbers)
            await self._writer.replace_templates(waba_id, templates)
            reports = [r.health for r in numbers if getattr(r, "health", None) is not None]
            if reports and self._health is not None:
                # After the catalog: the stored reports take the kind and space from it.
                await self._health.accept_many(reports, cause="sync")
        log.info(
            "catalog synced", waba_id=waba_id, phone_numbers=len(numbers), templates=len(templates)
        )
        return len(numbers), len(templates)

    async def sync_all(
        self, waba_ids: Iterable[str], progress: Callable[[str], None] | None = None
    ) -> dict[str, tuple[int, int] | Exception]:
        """Sync every WABA, carrying on past failures; returns each WABA's outcome.

        Up to `SYNC_CONCURRENCY` WABAs are fetched at once; the outcome keeps the given order.
        """
        ordered = list(dict.fromkeys(waba_ids))
        outcome: dict[str, tuple[int, int] | Exception] = {}
        pending = iter(ordered)

        async def worker() -> None:
            for waba_id in pending:
                try:
                    outcome[waba_id] = await self.sync_waba(waba_id)
                except Exception as exc:  # noqa: BLE001 — one WABA's failure must not stop the rest
                    log.warning("catalog sync failed", waba_id=waba_id, error=repr(exc))
                    outcome[waba_id] = exc
                if progress is not None:
                    progress(waba_id)

        await asyncio.gather(*(worker() for _ in range(min(SYNC_CONCURRENCY, len(ordered)))))
        return {waba_id: outcome[waba_id] for waba_id in ordered}
