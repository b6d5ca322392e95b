"""Get the health of a node: cache first, one upstream call per node at a time, stale on failure.

The cache only saves upstream calls: when its backend is down a read counts as a miss and
a failed write is logged, so queries are still answered from Meta.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import structlog

from wahealth.cache.base import BackendUnavailable as CacheUnavailable
from wahealth.cache.base import CachedReport, ReportCache
from wahealth.cache.coalesce import SingleFlight
from wahealth.core.errors import NodeNotFound, UpstreamUnavailable
from wahealth.core.ports import HealthUpstream, ReportObserver
from wahealth.domain import (
    HealthReport,
    MalformedHealthStatus,
    ReportSource,
    parse_health_status,
    render_health_status,
)
from wahealth.upstream.errors import GraphError, GraphNotFound, GraphRateLimited

log = structlog.get_logger(__name__)

_PARSED_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a report is fresh, served while revalidating, and kept for stale answers."""

    ttl_seconds: float = 60.0
    stale_while_revalidate_seconds: float = 30.0
    retain_seconds: float = 7 * 24 * 3600.0


@dataclass(slots=True)
class HealthService:
    """The one health core every dialect calls."""

    upstream: HealthUpstream
    cache: ReportCache
    freshness: Freshness = field(default_factory=Freshness)
    observers: list[ReportObserver] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    _flight: SingleFlight[str, HealthReport] = field(default_factory=SingleFlight)
    _parsed: OrderedDict[tuple[str, float, ReportSource], HealthReport] = field(
        default_factory=OrderedDict
    )
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    async def get(self, node_id: str, *, cause: str = "query") -> HealthReport:
        """The node's report: fresh from cache, else from upstream, else stale, else an error."""
        try:
            cached = await self.cache.get(node_id)
        except CacheUnavailable as exc:
            log.warning(
                "report cache unavailable; asking upstream", node_id=node_id, error=str(exc)
            )
            cached = None
        if cached is not None:
            age = self.clock() - cached.fetched_at
            if age < self.freshness.ttl_seconds:
                return self._from_cache(cached, ReportSource.CACHE)
            if age < self.freshness.ttl_seconds + self.freshness.stale_while_revalidate_seconds:
                self._revalidate(node_id, cause)
                return self._from_cache(cached, ReportSource.CACHE)
        try:
            return await self._flight.run(node_id, lambda: self._fetch(node_id, cause))
        except GraphNotFound as exc:
            raise NodeNotFound(f"node {node_id} does not exist at Meta") from exc
        except (GraphError, MalformedHealthStatus) as exc:
            if cached is not None:
                log.warning("serving stale report", node_id=node_id, error=type(exc).__name__)
                return self._from_cache(cached, ReportSource.STALE)
            retry_after = exc.retry_after if isinstance(exc, GraphRateLimited) else None
            raise UpstreamUnavailable(
                f"Meta did not answer for node {node_id} and no earlier report is known",
                retry_after=retry_after,
            ) from exc

    async def refresh(self, node_id: str, *, cause: str = "poll") -> HealthReport:
        """Fetch from upstream now (coalesced with any fetch in flight), bypassing freshness."""
        return await self._flight.run(node_id, lambda: self._fetch(node_id, cause))

    async def accept(self, report: HealthReport, *, cause: str) -> None:
        """Store a report fetched elsewhere (a batch refresh) and tell observers."""
        await self._store(report)
        await self._notify(report, cause)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _fetch(self, node_id: str, cause: str) -> HealthReport:
        report = await self.upstream.health(node_id)
        await self._store(report)
        await self._notify(report, cause)
        return report

    async def _store(self, report: HealthReport) -> None:
        payload = orjson.dumps(render_health_status(report))
        entry = CachedReport(report.node_id, payload, report.fetched_at.timestamp())
        try:
            await self.cache.put(entry, self.freshness.retain_seconds)
        except CacheUnavailable as exc:
            # The report in hand is still the right answer; only the next query pays for it.
            log.warning("report cache write failed", node_id=report.node_id, error=str(exc))

    async def _notify(self, report: HealthReport, cause: str) -> None:
        for observer in self.observers:
            try:
                await observer(report, cause)
            except Exception:
                log.exception("report observer failed", node_id=report.node_id)

    def _revalidate(self, node_id: str, cause: str) -> None:
        if self._flight.in_flight(node_id):
            return
        task = asyncio.create_task(self._revalidate_quietly(node_id, cause))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _revalidate_quietly(self, node_id: str, cause: str) -> None:
        try:
            await self.refresh(node_id, cause=cause)
        except (GraphError, MalformedHealthStatus) as exc:
            log.warning("background revalidation failed", node_id=node_id, error=type(exc).__name__)

    def _from_cache(self, entry: CachedReport, source: ReportSource) -> HealthReport:
        # Parse each cached payload once: a cache hit should cost a dict lookup, not JSON work.
        key = (entry.node_id, entry.fetched_at, source)
        report = self._parsed.get(key)
        if report is None:
            report = parse_health_status(
                orjson.loads(entry.payload),
                fetched_at=datetime.fromtimestamp(entry.fetched_at, UTC),
                source=source,
                node_id=entry.node_id,
            )
            self._parsed[key] = report
            if len(self._parsed) > _PARSED_MAX:
                self._parsed.popitem(last=False)
        return report
