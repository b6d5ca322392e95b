"""Counting wrappers around the cache and the limiter, for the metrics.

Each wrapper keeps the synchronous twin of the part it wraps (`core.immediate`) when that
part has one, so metrics never push the hot path back onto the awaiting one.
"""

from __future__ import annotations

from typing import cast

from wahealth.core.immediate import (
    ImmediateReportCache,
    ObservedLimiter,
    immediate_cache,
    observed_limiter,
)
from wahealth.core.ports import CachedReport, Decision, RateLimiter, ReportCache
from wahealth.metrics.instruments import Instruments, mark_throttled


class InstrumentedCache:
    """A ReportCache that counts hits, misses and errors of the cache it wraps."""

    def __init__(self, inner: ReportCache, instruments: Instruments) -> None:
        self._inner = inner
        self._instruments = instruments
        self._lookups = instruments.cache_lookups

    async def get(self, node_id: str) -> CachedReport | None:
        try:
            entry = await self._inner.get(node_id)
        except Exception as exc:
            self._lookups["error"] += 1
            self._instruments.count_cache_error("get", exc)
            raise
        return self._counted(entry)

    def _counted(self, entry: CachedReport | None) -> CachedReport | None:
        self._lookups["miss" if entry is None else "hit"] += 1
        return entry

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        try:
            await self._inner.put(entry, retain_seconds)
        except Exception as exc:
            self._instruments.count_cache_error("put", exc)
            raise

    async def mark_outdated(self, node_id: str) -> None:
        try:
            await self._inner.mark_outdated(node_id)
        except Exception as exc:
            self._instruments.count_cache_error("mark_outdated", exc)
            raise

    async def delete(self, node_id: str) -> None:
        try:
            await self._inner.delete(node_id)
        except Exception as exc:
            self._instruments.count_cache_error("delete", exc)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class InstrumentedImmediateCache(InstrumentedCache):
    """An InstrumentedCache over a cache that answers at once, with the same counting."""

    def __init__(self, inner: ImmediateReportCache, instruments: Instruments) -> None:
        super().__init__(cast(ReportCache, inner), instruments)
        self._now = inner.get_now

    def get_now(self, node_id: str) -> CachedReport | None:
        return self._counted(self._now(node_id))


def instrumented_cache(inner: ReportCache, instruments: Instruments) -> InstrumentedCache:
    """The counting wrapper for `inner`, answering at once when `inner` does."""
    immediate = immediate_cache(inner)
    if immediate is not None:
        return InstrumentedImmediateCache(immediate, instruments)
    return InstrumentedCache(inner, instruments)


def _mark_refused(decision: Decision) -> None:
    if not decision.allowed:
        mark_throttled()


def instrumented_limiter(inner: RateLimiter) -> ObservedLimiter:
    """`inner`, marking each refused request so it is counted under its dialect."""
    return observed_limiter(inner, decided=_mark_refused)
