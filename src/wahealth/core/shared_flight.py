"""Coalescing across replicas: one Meta call for a node however many replicas ask at once.

In front of it each process keeps its own single-flight (`SingleFlight`), so one task
per replica gets here. It takes a short lease on the node (`FetchLocks`, in Redis) and
calls Meta, renewing the lease while the call runs; the replicas that find the lease
taken wait for the report it writes to the shared cache, asking again every
`poll_seconds`. Should the holder die, its lease expires within `lease_seconds` and a
waiter takes over; should Redis not answer, each replica calls for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from wahealth.core.ports import BackendUnavailable, CachedReport, FetchLocks, ReportCache

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class SharedFlight:
    """One fetch per node at a time across replicas, through `locks` and the shared `cache`."""

    locks: FetchLocks
    cache: ReportCache
    lease_seconds: float = 2.0
    poll_seconds: float = 0.02
    # A waiter whose holder neither answers nor lets its lease go calls for itself after this.
    max_wait_seconds: float = 15.0
    clock: Callable[[], float] = time.monotonic
    _started: int = field(default=0, init=False)
    _waited: int = field(default=0, init=False)

    @property
    def started_total(self) -> int:
        """Fetches this process made while holding the node's lease."""
        return self._started

    @property
    def waited_total(self) -> int:
        """Fetches this process left to another replica and took from the cache."""
        return self._waited

    async def run(
        self, node_id: str, seen: CachedReport | None, fetch: Callable[[], Awaitable[T]]
    ) -> T | CachedReport:
        """`fetch()`'s result, or the newer cache entry another replica's fetch wrote.

        `seen` is what the cache held when the caller decided to fetch: only an entry
        fetched after it, and not outdated, counts as the other replica's answer.
        """
        deadline = self.clock() + self.max_wait_seconds
        while True:
            try:
                token = await self.locks.acquire(node_id, self.lease_seconds)
            except BackendUnavailable as exc:
                log.warning("fetch locks unavailable; fetching alone", error=str(exc))
                return await fetch()
            if token is not None:
                self._started += 1
                return await self._holding(node_id, token, fetch)
            if self.clock() >= deadline:
                log.warning("another replica's fetch did not finish; fetching", node_id=node_id)
                return await fetch()
            await asyncio.sleep(self.poll_seconds)
            entry = await self._newer(node_id, seen)
            if entry is not None:
                self._waited += 1
                return entry

    async def _holding(self, node_id: str, token: str, fetch: Callable[[], Awaitable[T]]) -> T:
        renewal = asyncio.create_task(self._renew(node_id, token))
        try:
            return await fetch()
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            try:
                await self.locks.release(node_id, token)
            except BackendUnavailable as exc:
                # The lease then ends by itself within `lease_seconds`.
                log.warning("cannot release a fetch lease", node_id=node_id, error=str(exc))

    async def _renew(self, node_id: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.locks.renew(node_id, token, self.lease_seconds):
                    return
            except BackendUnavailable:
                return

    async def _newer(self, node_id: str, seen: CachedReport | None) -> CachedReport | None:
        try:
            entry = await self.cache.get(node_id)
        except BackendUnavailable:
            return None
        if entry is None or entry.outdated:
            return None
        if seen is not None and entry.fetched_at <= seen.fetched_at:
            return None
        return entry
