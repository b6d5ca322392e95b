"""Fetching a stream of chunks: a few batch calls in flight, each chunk stored on arrival.

`ChunkFetcher.fetch` takes the node ids to refresh a chunk at a time (one
`batch_health` call each), keeps `FETCH_CONCURRENCY` chunks in flight and stores each
chunk's reports through the sink as soon as it arrives, while the next requests are
out. It sorts every node into refreshed, failed (with why), throttled or deferred; after an
app-level throttle (not a WABA's 80007/80008) it sends no further chunk and says how
long Meta asked to wait. Each chunk is paid from the shared Meta budget before it goes
out: nodes the budget has no call for are deferred (not sent, not failed), and no
further chunk is sent. With a budget per Meta app (`NodeBudgets`), each chunk is paid
connection by connection: a connection whose budget is spent has its nodes deferred while
the other connections' nodes go on (and further chunks too), and BSP nodes pay nothing.
Scheduling (pauses, retries) is the refresher's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

import structlog

from wahealth.core.ports import BackendUnavailable, MetaBudget, NodeBudgets
from wahealth.domain import HealthReport
from wahealth.monitor.refresh_ports import BatchUpstream, ReportSink
from wahealth.upstream.errors import WABA_RATE_LIMIT_CODES, ConnectionPaused, GraphRateLimited

log = structlog.get_logger(__name__)

FETCH_CONCURRENCY = 4  # chunks in flight at once


@dataclass
class RoundOutcome:
    """What one fetch did: nodes refreshed, nodes failed (with why), nodes throttled."""

    refreshed: list[str] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)
    throttled: list[str] = field(default_factory=list)
    pause_seconds: float | None = None
    # Not sent: the shared Meta budget had no call for them; it has one again after this.
    deferred: list[str] = field(default_factory=list)
    budget_wait_seconds: float | None = None


_Fetched = tuple[Sequence[str], Mapping[str, HealthReport | Exception]]


def app_throttle(result: object) -> TypeGuard[GraphRateLimited]:
    """Whether a node's result is Meta throttling the whole app (not one WABA)."""
    return isinstance(result, GraphRateLimited) and result.code not in WABA_RATE_LIMIT_CODES


class ChunkFetcher:
    """Fetches chunks through `upstream` and stores their reports through `sink`."""

    def __init__(
        self,
        upstream: BatchUpstream,
        sink: ReportSink,
        *,
        spend: Callable[[int], None],
        succeeded: Callable[[str], None],
        default_pause_seconds: float,
        budget: MetaBudget | None = None,
    ) -> None:
        self._budget = budget
        self._paid_any = False  # whether a budget had calls for some node in this fetch
        self._upstream = upstream
        self._sink = sink
        self._spend = spend  # told the calls of each chunk once its request has ended
        self._succeeded = succeeded  # told each node refreshed and stored
        self._default_pause = default_pause_seconds

    async def fetch(
        self,
        chunks: AsyncGenerator[Sequence[str]],
        *,
        cause: str,
        stored: Callable[[RoundOutcome, Sequence[str]], Awaitable[None]] | None = None,
    ) -> RoundOutcome:
        """Fetch and store chunk after chunk, `FETCH_CONCURRENCY` in flight; `stored` is told
        of each chunk once its reports are stored. A refused token (GraphAuthError) is
        raised: nothing can succeed."""
        outcome = RoundOutcome()
        in_flight: deque[asyncio.Task[_Fetched]] = deque()
        exhausted = False
        per_app = isinstance(self._budget, NodeBudgets)
        self._paid_any = False

        async def top_up() -> None:
            nonlocal exhausted
            # No new chunk after an app-level throttle: Meta would refuse it too; nor, with
            # one budget, after it ran out (with one per app, the others' nodes go on).
            while (
                not exhausted
                and len(in_flight) < FETCH_CONCURRENCY
                and not outcome.throttled
                and not (outcome.deferred and not per_app)
            ):
                chunk = await anext(chunks, None)
                if chunk is None:
                    exhausted = True
                    return
                paid = await self._pay(chunk, outcome)
                if paid:
                    in_flight.append(asyncio.create_task(self._fetch_chunk(paid)))

        try:
            await top_up()
            while in_flight:
                chunk_ids, results = await in_flight.popleft()
                if not any(map(app_throttle, results.values())):
                    await top_up()  # the next requests go out while this chunk is stored
                await self._store(chunk_ids, results, outcome, cause)
                if stored is not None:
                    await stored(outcome, chunk_ids)
                await top_up()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            await chunks.aclose()
        if per_app and self._paid_any:
            # Some app had calls: the round goes on at its pace; the deferred stay due.
            outcome.budget_wait_seconds = None
        return outcome

    async def _pay(self, chunk: Sequence[str], outcome: RoundOutcome) -> Sequence[str]:
        """The chunk's nodes the Meta budget has calls for; the rest are deferred."""
        if self._budget is None:
            return chunk
        if not isinstance(self._budget, NodeBudgets):
            return await self._pay_from(self._budget, chunk, outcome)
        try:
            groups = await self._budget.budgets_of(chunk)
        except BackendUnavailable as exc:
            log.warning("Meta call budget unavailable; the refresh waits", error=str(exc))
            groups = [(self._budget, chunk)]
        paid: set[str] = set()
        for budget, members in groups:
            paid.update(
                members if budget is None else await self._pay_from(budget, members, outcome)
            )
        return [node_id for node_id in chunk if node_id in paid]

    async def _pay_from(
        self, budget: MetaBudget, members: Sequence[str], outcome: RoundOutcome
    ) -> Sequence[str]:
        """The members this budget has calls for; the rest are deferred."""
        try:
            grant = await budget.spend(len(members), partial=True)
            granted, wait = grant.calls, grant.retry_after
        except BackendUnavailable as exc:
            log.warning("Meta call budget unavailable; the refresh waits", error=str(exc))
            granted, wait = 0, 1.0
        if granted < len(members):
            outcome.deferred.extend(members[granted:])
            wait = max(wait, 0.1)
            earlier = outcome.budget_wait_seconds
            outcome.budget_wait_seconds = wait if earlier is None else min(earlier, wait)
        if granted:
            self._paid_any = True
        return members[:granted]

    async def _fetch_chunk(self, node_ids: Sequence[str]) -> _Fetched:
        # Only the nodes sent to Meta count against its budget (BSP upstreams keep their own).
        counted = getattr(self._upstream, "meta_calls", None)
        calls = counted(node_ids) if callable(counted) else len(node_ids)
        unsent = 0
        try:
            results = await self._upstream.batch_health(node_ids)
            # A paused connection's nodes were not sent: they cost no call.
            unsent = sum(isinstance(r, ConnectionPaused) for r in results.values())
            return node_ids, results
        finally:
            # Counted when the request ends: until then a call may still reach Meta.
            self._spend(calls - unsent)

    async def _store(
        self,
        node_ids: Sequence[str],
        results: Mapping[str, HealthReport | Exception],
        outcome: RoundOutcome,
        cause: str,
    ) -> None:
        reports = [r for r in (results.get(n) for n in node_ids) if isinstance(r, HealthReport)]
        await self._accept(reports, outcome, cause)
        for node_id in node_ids:
            result = results.get(node_id)
            if isinstance(result, HealthReport):
                if node_id not in outcome.failed:
                    outcome.refreshed.append(node_id)
                    self._succeeded(node_id)
            elif app_throttle(result):
                self._sink.failed(node_id, result)
                outcome.throttled.append(node_id)
                wait = result.retry_after if result.retry_after else self._default_pause
                outcome.pause_seconds = max(outcome.pause_seconds or 0.0, wait)
            else:
                error = result or LookupError(f"no answer for node {node_id}")
                # Queries for this node back off too, rather than call a failing Meta.
                self._sink.failed(node_id, error)
                outcome.failed[node_id] = error

    async def _accept(
        self, reports: Sequence[HealthReport], outcome: RoundOutcome, cause: str
    ) -> None:
        """Store a chunk's reports in one go, or one by one if that fails (failures kept)."""
        try:
            await self._sink.accept_many(reports, cause=cause)
        except Exception as exc:  # noqa: BLE001 — retried one by one below
            log.warning("cannot store a chunk of refreshed reports", error=repr(exc))
            for report in reports:
                try:
                    await self._sink.accept(report, cause=cause)
                except Exception as exc:  # noqa: BLE001 — one node's error is not the round's
                    log.warning("cannot store a report", node_id=report.node_id, error=repr(exc))
                    outcome.failed[report.node_id] = exc
