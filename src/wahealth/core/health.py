"""Get the health of a node: cache first, one upstream call per node at a time, stale on failure.

One call at a time per process (`SingleFlight`) and, with `shared`, across replicas
(`SharedFlight`: a lease in Redis, the others wait for the report in the shared cache).

The cache only saves upstream calls: when its backend is down a read counts as a miss and
a failed write is logged, so queries are still answered from Meta. Four rules keep Meta
unharmed and clients inside their deadlines:

- budget: a query's call is paid from the Meta budget of its node's connection
  (`MetaBudget`, `NodeBudgets`; shared with the refresh loop and, in Redis, with every
  replica; a BSP's node pays none); when it is spent, nobody calls and the query gets
  the last known report marked stale, or "try again" with the budget's wait;

- back-off: after a failure nobody calls upstream for that node until its back-off ends
  (see `Backoff`); queries meanwhile get the last known report marked stale;
- deadline: a query waits at most `Freshness.query_deadline_seconds` for upstream, then
  answers stale (or "try again") while the fetch finishes in the background;
- outdated: a report a Meta webhook superseded is never served as fresh again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from wahealth.core.backoff import Backoff
from wahealth.core.budget import BudgetSpent
from wahealth.core.coalesce import SingleFlight
from wahealth.core.errors import NodeNotFound, UpstreamUnavailable
from wahealth.core.immediate import ImmediateReportCache, immediate_cache
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import (
    BackendUnavailable,
    BatchReportObserver,
    CachedReport,
    HealthUpstream,
    MetaBudget,
    NodeBudgets,
    ReportCache,
    ReportObserver,
    UpstreamFailure,
    UpstreamNotFound,
    UpstreamThrottled,
)
from wahealth.core.shared_flight import SharedFlight
from wahealth.domain import (
    HealthReport,
    MalformedHealthStatus,
    ReportSource,
    parse_health_status,
    wire_form,
)

log = structlog.get_logger(__name__)

# Parsed reports kept per process: a cache hit should cost a dict lookup, not JSON work.
PARSED_MAX_ENTRIES = 50_000
PARSED_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a report is fresh, served while revalidating, kept, and waited for."""

    ttl_seconds: float = 60.0
    stale_while_revalidate_seconds: float = 30.0
    retain_seconds: float = 7 * 24 * 3600.0
    query_deadline_seconds: float = 3.0


@dataclass(slots=True)
class HealthService:
    """The one health core every dialect calls."""

    upstream: HealthUpstream
    cache: ReportCache
    freshness: Freshness = field(default_factory=Freshness)
    observers: tuple[ReportObserver, ...] = ()
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.time
    flight: SingleFlight[str, HealthReport] = field(default_factory=SingleFlight)
    # Meta's call budget, which a query's call spends (None: unlimited).
    budget: MetaBudget | None = None
    # Coalescing across replicas, behind `flight` (None: this process alone).
    shared: SharedFlight | None = None
    _parsed: BoundedLru[tuple[str, float, ReportSource], HealthReport] = field(
        default_factory=lambda: BoundedLru(PARSED_MAX_ENTRIES, PARSED_MAX_BYTES)
    )
    # The newest (cache entry, parsed report) per node; the report is shared with `_parsed`.
    _latest: BoundedLru[str, tuple[CachedReport, HealthReport]] = field(
        default_factory=lambda: BoundedLru(PARSED_MAX_ENTRIES, PARSED_MAX_BYTES)
    )
    _background: set[asyncio.Task[object]] = field(default_factory=set)
    # Observers are told in the order reports were fetched (the lock is FIFO): a query's
    # write spawned first is stored first, so a later report never lands before it.
    _in_order: asyncio.Lock = field(default_factory=asyncio.Lock)
    _immediate: ImmediateReportCache | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._immediate = immediate_cache(self.cache)

    def get_now(self, node_id: str) -> HealthReport | None:
        """The node's fresh cached report, when the cache answers at once; else None.

        None asks nothing of anyone: the caller then awaits `get`, which also covers the
        stale, outdated, revalidating and missing cases.
        """
        cache = self._immediate
        if cache is None:
            return None
        cached = cache.get_now(node_id)
        if (
            cached is None
            or cached.outdated
            or self.clock() - cached.fetched_at >= self.freshness.ttl_seconds
        ):
            return None
        return self._from_cache(cached, ReportSource.CACHE)

    async def get(
        self, node_id: str, *, cause: str = "query", waba_id: str | None = None
    ) -> HealthReport:
        """The node's report: fresh from cache, else from upstream, else stale, else an error.

        `waba_id`, when known, lets a WABA's throttle pause the WABA's other nodes too.
        """
        cached = await self._cached(node_id)
        if cached is not None and not cached.outdated:
            age = self.clock() - cached.fetched_at
            if age < self.freshness.ttl_seconds:
                return self._from_cache(cached, ReportSource.CACHE)
            if age < self.freshness.ttl_seconds + self.freshness.stale_while_revalidate_seconds:
                self._revalidate(node_id, cause, cached)
                return self._from_cache(cached, ReportSource.CACHE)
        wait = self.backoff.wait(node_id, waba_id)
        if wait > 0 and not self.flight.in_flight(node_id):
            return self._stale_or_unavailable(node_id, cached, wait, "Meta failed moments ago")
        fetch = self.flight.join(
            node_id, lambda: self._query_fetch(node_id, cause, cached, waba_id)
        )
        try:
            return await asyncio.wait_for(
                asyncio.shield(fetch), self.freshness.query_deadline_seconds
            )
        except TimeoutError:
            # The fetch goes on in its own task; the next query may find its answer.
            return self._stale_or_unavailable(
                node_id, cached, self.freshness.query_deadline_seconds, "Meta is slow"
            )
        except UpstreamNotFound as exc:
            raise NodeNotFound(f"node {node_id} does not exist at Meta") from exc
        except BudgetSpent as exc:
            return self._stale_or_unavailable(
                node_id, cached, exc.retry_after, "the Meta call budget is spent"
            )
        except UpstreamFailure as exc:
            why = (
                "Meta throttled the calls" if isinstance(exc, UpstreamThrottled) else "Meta failed"
            )
            return self._stale_or_unavailable(
                node_id, cached, self.backoff.wait(node_id, waba_id), why
            )

    async def refresh(self, node_id: str, *, cause: str = "poll") -> HealthReport:
        """Fetch from upstream now (coalesced with any fetch in flight), bypassing freshness."""
        return await self.flight.run(node_id, lambda: self._fetch(node_id, cause))

    async def mark_outdated(self, node_id: str) -> None:
        """The node changed upstream (a webhook said so): never serve its report as fresh."""
        try:
            await self.cache.mark_outdated(node_id)
        except BackendUnavailable as exc:
            log.warning("cannot mark report outdated", node_id=node_id, error=str(exc))

    async def accept(self, report: HealthReport, *, cause: str) -> None:
        """Store a report fetched elsewhere (a batch refresh) and tell observers."""
        self.backoff.succeeded(report.node_id)
        await self._store(report)
        await self._notify(report, cause)

    async def accept_many(self, reports: Sequence[HealthReport], *, cause: str) -> None:
        """`accept` for a chunk of reports: cache writes, then each observer told once.

        An observer that takes batches (`BatchReportObserver`) gets the whole chunk in
        one call, and, should that fail, each report alone, so one bad report costs
        only itself; any other observer is called report by report.
        """
        for report in reports:
            self.backoff.succeeded(report.node_id)
            await self._store(report)
        async with self._in_order:
            for observer in self.observers:
                if not isinstance(observer, BatchReportObserver):
                    for report in reports:
                        await self._tell(observer, report, cause)
                    continue
                try:
                    await observer.observe_many(reports, cause)
                except Exception:
                    log.exception("report observer failed on a batch; retrying one by one")
                    for report in reports:
                        await self._tell(observer, report, cause)

    def failed(self, node_id: str, error: Exception) -> None:
        """A fetch made elsewhere (a batch refresh) failed: queries back off from the node."""
        if isinstance(error, UpstreamFailure) and not isinstance(error, UpstreamNotFound):
            self.backoff.failed(node_id, error)

    async def drain(self) -> None:
        """Wait for background work (revalidations, observers of query fetches)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def aclose(self) -> None:
        """Let observers finish (transitions are durable), then stop what is left."""
        try:
            await asyncio.wait_for(self.drain(), timeout=5.0)
        except TimeoutError:
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _cached(self, node_id: str) -> CachedReport | None:
        try:
            return await self.cache.get(node_id)
        except BackendUnavailable as exc:
            log.warning(
                "report cache unavailable; asking upstream", node_id=node_id, error=str(exc)
            )
            return None

    def _stale_or_unavailable(
        self, node_id: str, cached: CachedReport | None, retry_after: float, why: str
    ) -> HealthReport:
        if cached is not None:
            log.info("serving stale report", node_id=node_id, why=why)
            return self._from_cache(cached, ReportSource.STALE)
        raise UpstreamUnavailable(
            f"Meta did not answer for node {node_id} ({why}) and no earlier report is known",
            retry_after=max(1.0, retry_after),
        )

    async def _query_fetch(
        self, node_id: str, cause: str, seen: CachedReport | None, waba_id: str | None
    ) -> HealthReport:
        """A query's fetch: one per node across replicas when `shared` is set."""
        if self.shared is None:
            return await self._fetch(node_id, cause, query=True, waba_id=waba_id)
        got = await self.shared.run(
            node_id, seen, lambda: self._fetch(node_id, cause, query=True, waba_id=waba_id)
        )
        if isinstance(got, CachedReport):
            return self._from_cache(got, ReportSource.CACHE)
        return got

    async def _spend(self, node_id: str, waba_id: str | None) -> None:
        """One call from the node's Meta budget (its connection's), or `BudgetSpent`."""
        budget = self.budget
        try:
            if isinstance(budget, NodeBudgets):
                groups = await budget.budgets_of([node_id])
                budget = groups[0][0] if groups else budget
            if budget is None:
                return
            grant = await budget.spend(1, waba_id=waba_id)
        except BackendUnavailable as exc:
            # A budget that cannot be asked is spent: Meta is protected first.
            log.warning("Meta call budget unavailable", error=str(exc))
            raise BudgetSpent(1.0) from exc
        if grant.calls < 1:
            raise BudgetSpent(grant.retry_after)

    async def _fetch(
        self, node_id: str, cause: str, *, query: bool = False, waba_id: str | None = None
    ) -> HealthReport:
        if query:
            await self._spend(node_id, waba_id)  # raised before any call: no back-off for it
        try:
            # A query tries once: its back-off, not a retry loop, decides when to call again.
            report = await self.upstream.health(node_id, attempts=1 if query else None)
        except UpstreamNotFound:
            raise
        except UpstreamFailure as exc:
            delay = self.backoff.failed(node_id, exc, waba_id)
            log.warning(
                "upstream failed; backing off",
                node_id=node_id,
                error=type(exc).__name__,
                seconds=round(delay, 3),
            )
            raise
        except MalformedHealthStatus as exc:
            failure = UpstreamFailure(f"unexpected health_status for {node_id}: {exc}")
            self.backoff.failed(node_id, failure, waba_id)
            raise failure from exc
        self.backoff.succeeded(node_id)
        await self._store(report)
        if query:
            # The answer never waits for the monitor's storage write; the write stays
            # durable because the next refresh compares against what is stored.
            self._spawn(self._notify(report, cause))
        else:
            await self._notify(report, cause)
        return report

    async def _store(self, report: HealthReport) -> None:
        payload = orjson.dumps(wire_form(report))
        entry = CachedReport(report.node_id, payload, report.fetched_at.timestamp())
        try:
            await self.cache.put(entry, self.freshness.retain_seconds)
        except BackendUnavailable as exc:
            # The report in hand is still the right answer; only the next query pays for it.
            log.warning("report cache write failed", node_id=report.node_id, error=str(exc))

    async def _notify(self, report: HealthReport, cause: str) -> None:
        async with self._in_order:
            for observer in self.observers:
                await self._tell(observer, report, cause)

    @staticmethod
    async def _tell(observer: ReportObserver, report: HealthReport, cause: str) -> None:
        try:
            await observer(report, cause)
        except Exception:
            log.exception("report observer failed", node_id=report.node_id)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _revalidate(self, node_id: str, cause: str, seen: CachedReport) -> None:
        if self.flight.in_flight(node_id) or self.backoff.wait(node_id) > 0:
            return
        self._spawn(self._revalidate_quietly(node_id, cause, seen))

    async def _revalidate_quietly(self, node_id: str, cause: str, seen: CachedReport) -> None:
        try:
            await self.flight.run(node_id, lambda: self._query_fetch(node_id, cause, seen, None))
        except UpstreamFailure as exc:
            log.warning("background revalidation failed", node_id=node_id, error=type(exc).__name__)

    def _from_cache(self, entry: CachedReport, source: ReportSource) -> HealthReport:
        # An in-process cache hands back the very entry it holds: recognise it by identity
        # before building a key (the hot path of a cache hit).
        if source is ReportSource.CACHE:
            latest = self._latest.get(entry.node_id)
            if latest is not None and latest[0] is entry:
                return latest[1]
        key = (entry.node_id, entry.fetched_at, source)
        report = self._parsed.get(key)
        if report is None:
            report = parse_health_status(
                orjson.loads(entry.payload),
                fetched_at=datetime.fromtimestamp(entry.fetched_at, UTC),
                source=source,
                node_id=entry.node_id,
            )
            self._parsed.put(key, report, 2 * len(entry.payload) + len(entry.node_id))
        if source is ReportSource.CACHE:
            self._latest.put(entry.node_id, (entry, report), len(entry.node_id) + 100)
        return report
