"""The fleet refresh: a thin loop around `step`, which fetches one planned round of due nodes.

Each round asks storage for the oldest due nodes the budget allows (see
`planner`), fetches them with Graph batch requests (50 nodes per HTTP request,
each node one call as Meta counts them) and hands each chunk's reports to the
health core's `accept_many`, which writes the same cache the gateway reads and
tells the observers (the recorder stores transitions and reschedules the nodes,
one storage transaction per chunk).

Failures never overwrite a report: the node keeps its last one, and is
retried later, after a doubling delay. A WABA-level throttle (80007/80008)
postpones that WABA's nodes; an app-level throttle pauses the whole loop for
Meta's `retry_after`. On PostgreSQL every replica runs this loop over one shared
schedule: each round claims its due nodes (see `storage.schedule`), so a node is
refreshed by one replica per interval. Besides this process's own plan (no more than
`calls_per_minute` in any 60 s), every chunk is paid from the shared Meta budget
(`MetaBudget`: in Redis, one for every replica and for queries too); when it has no
call left the nodes stay due and the loop waits until it has.

A round's due nodes come from one query, a page at a time (see `rounds`), and are fetched
in chunks of `FETCH_CHUNK_NODES`, a few chunks in flight, each chunk's reports stored as
soon as it arrives (see `chunk_fetch`): a big round neither waits for one batch request at
a time nor holds every report at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from wahealth.core.lru import BoundedLru
from wahealth.core.ports import BackendUnavailable, MetaBudget, NodeBudgets
from wahealth.domain.records import DueNode
from wahealth.monitor.chunk_fetch import ChunkFetcher, RoundOutcome
from wahealth.monitor.planner import (
    BudgetShortfall,
    Spend,
    allowance,
    budget_frees_in,
    budget_shortfall,
    prune,
    retry_delay,
    round_quota,
)
from wahealth.monitor.refresh_ports import BatchUpstream, ReportSink, Schedule
from wahealth.monitor.rounds import RoundChunks, chunked
from wahealth.upstream.errors import ConnectionPaused, GraphAuthError, GraphRateLimited

__all__ = ["BatchUpstream", "FleetRefresher", "RefreshSummary", "ReportSink", "Schedule"]

log = structlog.get_logger(__name__)

DEFAULT_PAUSE_SECONDS = 60.0
MANUAL_ROUND_NODES = 500  # progress moves at least this often in a one-off refresh
MAX_THROTTLES_PER_NODE = 3
FETCH_CHUNK_NODES = 250  # nodes per `batch_health` call: 5 Graph batch requests
STEP_PAGE_NODES = 2_000  # due nodes handed out by storage at a time within a round
FAILURES_MAX_NODES = 100_000
FAILURES_MAX_BYTES = 32 * 2**20


@dataclass
class RefreshSummary:
    """The result of a one-off refresh of many nodes."""

    refreshed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    calls: int = 0


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


class FleetRefresher:
    """Keeps every catalog node fresh within `calls_per_minute` Graph calls."""

    def __init__(
        self,
        *,
        upstream: BatchUpstream,
        sink: ReportSink,
        schedule: Schedule,
        calls_per_minute: int,
        interval_seconds: float,
        round_seconds: float = 5.0,
        default_pause_seconds: float = DEFAULT_PAUSE_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        budget: MetaBudget | None = None,
    ) -> None:
        if calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1")
        self._schedule = schedule
        self._budget = budget
        self.calls_per_minute = calls_per_minute
        self.interval_seconds = interval_seconds
        self.round_seconds = round_seconds
        self._default_pause = default_pause_seconds
        self._clock = clock
        self._sleep = sleep
        self._ledger: tuple[Spend, ...] = ()
        # Consecutive failures per failing node, for the doubling delay; one forgotten past
        # the bounds starts again from one failure.
        self._failures: BoundedLru[str, int] = BoundedLru(FAILURES_MAX_NODES, FAILURES_MAX_BYTES)
        self._fetcher = ChunkFetcher(
            upstream,
            sink,
            spend=self._spend,
            succeeded=self._succeeded,
            default_pause_seconds=default_pause_seconds,
            budget=budget,
        )
        self._paused_until = 0.0
        self._shortfall: BudgetShortfall | None = None
        self.calls_spent = 0
        # When a round last finished (epoch seconds; None: none yet): /metrics shows its age.
        self.last_round_at: float | None = None

    @property
    def paused_until(self) -> float:
        """Epoch seconds until which an app-level throttle keeps the loop idle."""
        return self._paused_until

    @property
    def budget_shortfall(self) -> BudgetShortfall | None:
        """What the budget lacks to refresh every node once per interval, as of the last
        `check_budget` (None: it suffices, or nodes were not counted yet)."""
        return self._shortfall

    async def check_budget(self) -> BudgetShortfall | None:
        """Count the nodes and compare the calls they need per minute with the budget."""
        nodes = await self._schedule.count_nodes()
        self._shortfall = budget_shortfall(nodes, self.interval_seconds, self.calls_per_minute)
        return self._shortfall

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh round after round until `stop` is set."""
        log.info(
            "fleet refresh started",
            calls_per_minute=self.calls_per_minute,
            interval_seconds=self.interval_seconds,
        )
        try:
            shortfall = await self.check_budget()
        except Exception:  # counting is advice; the loop must run regardless
            log.exception("cannot count the nodes to refresh")
            shortfall = None
        if shortfall is not None:
            log.warning(
                "the Meta call budget cannot refresh every node once per interval",
                nodes=shortfall.nodes,
                interval_seconds=shortfall.interval_seconds,
                required_calls_per_minute=shortfall.required_calls_per_minute,
                configured_calls_per_minute=shortfall.configured_calls_per_minute,
                pass_seconds=round(shortfall.pass_seconds),
            )
        while not stop.is_set():
            try:
                wait = await self.step()
            except Exception:  # a failed round must not end the loop
                log.exception("fleet refresh round failed")
                wait = self.round_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.0))

    async def step(self) -> float:
        """Fetch one round of due nodes; returns the seconds to wait before the next."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        self._ledger = prune(self._ledger, now)
        room = min(
            allowance(self._ledger, now, self.calls_per_minute),
            round_quota(self.calls_per_minute, self.round_seconds),
        )
        if room == 0:
            return max(
                self.round_seconds, budget_frees_in(self._ledger, now, self.calls_per_minute)
            )
        room, shared_wait = await self._shared_room(room)
        if room == 0:
            return shared_wait
        # Due nodes are read by one query per round and handed out a page at a time: a
        # round of 80,000 is neither held at once nor sorted once per page.
        round_ = RoundChunks(
            self._schedule,
            now=now,
            room=room,
            ledger=self._ledger,
            calls_per_minute=self.calls_per_minute,
            round_seconds=self.round_seconds,
            chunk_nodes=FETCH_CHUNK_NODES,
            page_nodes=STEP_PAGE_NODES,
        )

        async def stored(outcome: RoundOutcome, node_ids: Sequence[str]) -> None:
            await self._reschedule(outcome, node_ids, round_.due, self._clock())
            # Recorded (a report sets its next due time) or rescheduled: let go of the claims.
            await self._schedule.release([round_.due[n] for n in node_ids if n in round_.due])
            round_.done(node_ids)

        try:
            totals = await self._fetch(round_.chunks(), cause="poll", stored=stored)
        except GraphAuthError as exc:
            await self._release_rest(round_)
            # Every report is kept; nothing is rescheduled, so all are due once it is fixed.
            log.error("fleet refresh paused: Meta refused the access token", error=str(exc))
            pause = max(self.interval_seconds, self._default_pause)
            self._pause(pause)
            return pause
        except BaseException:
            await self._release_rest(round_)
            raise
        # Nodes never sent (after an app-level throttle) are due again, for any replica.
        await self._release_rest(round_)
        self.last_round_at = self._clock()
        # The plan's wait runs from the round's start: a round that took longer than that
        # (a big fleet) is followed by the next at once; the budget is checked there again.
        wait = max(0.0, round_.wait - (self.last_round_at - now))
        if totals.pause_seconds is not None:
            wait = totals.pause_seconds
        elif totals.budget_wait_seconds is not None:
            wait = max(wait, totals.budget_wait_seconds)
        if totals.refreshed or totals.failed:
            log.info(
                "fleet refresh round",
                refreshed=len(totals.refreshed),
                failed=len(totals.failed),
                throttled=len(totals.throttled),
            )
        return wait

    async def refresh_all(
        self,
        node_ids: Sequence[str],
        *,
        cause: str = "manual",
        progress: Callable[[int], None] | None = None,
    ) -> RefreshSummary:
        """Refresh these nodes once, within the budget (waiting for it as needed).

        Raises GraphAuthError when Meta refuses the token.
        """
        queue = list(dict.fromkeys(node_ids))
        summary = RefreshSummary()
        throttles: dict[str, int] = {}
        spent_before = self.calls_spent
        while queue:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            self._ledger = prune(self._ledger, now)
            room = min(allowance(self._ledger, now, self.calls_per_minute), MANUAL_ROUND_NODES)
            if room == 0:
                frees = budget_frees_in(self._ledger, now, self.calls_per_minute)
                await self._sleep(max(frees, 0.001))
                continue
            room, shared_wait = await self._shared_room(room)
            if room == 0:
                await self._sleep(shared_wait)
                continue
            chunk, queue = queue[:room], queue[room:]
            outcome = await self._fetch(chunked(chunk, FETCH_CHUNK_NODES), cause=cause)
            done = {*outcome.refreshed, *outcome.failed, *outcome.throttled, *outcome.deferred}
            unsent = [node_id for node_id in chunk if node_id not in done]
            if outcome.pause_seconds is None and outcome.deferred:
                # Never sent because the budget ran out: they wait for it, like the deferred.
                outcome.deferred.extend(unsent)
            else:
                # Never sent after an app-level throttle: throttled like the rest, in time.
                outcome.throttled.extend(unsent)
            deferred = set(outcome.deferred)
            summary.refreshed += len(outcome.refreshed)
            for node_id, error in outcome.failed.items():
                summary.failed[node_id] = f"{type(error).__name__}: {error}"
            retry = []
            for node_id in outcome.throttled:
                throttles[node_id] = throttles.get(node_id, 0) + 1
                if throttles[node_id] < MAX_THROTTLES_PER_NODE:
                    retry.append(node_id)
                else:
                    summary.failed[node_id] = "rate limited by Meta"
            queue = retry + outcome.deferred + queue
            if progress is not None:
                progress(len(chunk) - len(retry) - len(deferred))
            if outcome.budget_wait_seconds is not None:
                await self._sleep(outcome.budget_wait_seconds)
        summary.calls = self.calls_spent - spent_before
        return summary

    async def _fetch(
        self,
        chunks: AsyncGenerator[Sequence[str]],
        *,
        cause: str,
        stored: Callable[[RoundOutcome, Sequence[str]], Awaitable[None]] | None = None,
    ) -> RoundOutcome:
        """Fetch and store the chunks (see `ChunkFetcher`); pause after an app throttle."""
        outcome = await self._fetcher.fetch(chunks, cause=cause, stored=stored)
        if outcome.pause_seconds is not None:
            log.warning("Meta throttled the fleet refresh", pause_seconds=outcome.pause_seconds)
            self._pause(outcome.pause_seconds)
        return outcome

    async def _reschedule(
        self,
        outcome: RoundOutcome,
        node_ids: Sequence[str],
        due: Mapping[str, DueNode],
        now: float,
    ) -> None:
        """Push the chunk's failed nodes out: throttled WABAs by Meta's wait, others by a
        doubling delay."""
        for node_id in node_ids:
            error = outcome.failed.get(node_id)
            if error is None:
                continue
            if isinstance(error, GraphRateLimited):
                delay = error.retry_after or self.interval_seconds
            elif isinstance(error, ConnectionPaused):
                # Looked at again each interval: the connection's check may have resumed it.
                delay = self.interval_seconds
            else:
                failures = (self._failures.get(node_id) or 0) + 1
                self._failures.put(node_id, failures, len(node_id))
                delay = retry_delay(failures, self.interval_seconds)
            ref = due.get(node_id)
            rescheduled = await self._schedule.set_next_due(
                node_id,
                _utc(now + delay),
                checked_at=_utc(now),
                node_kind=ref.kind.value if ref is not None else "UNKNOWN",
                space_id=ref.space_id if ref is not None else None,
                held=ref.claim if ref is not None else None,
            )
            if not rescheduled:
                log.info("node refresh failed; another replica has it now", node_id=node_id)
                continue
            log.info(
                "node refresh failed; retrying later",
                node_id=node_id,
                retry_in=round(delay, 1),
                error=type(error).__name__,
            )

    async def _shared_room(self, room: int) -> tuple[int, float]:
        """`room` as far as the shared budget has calls left, and, at 0, when it has one.
        With a budget per Meta app, each chunk is paid per connection instead."""
        if self._budget is None or isinstance(self._budget, NodeBudgets):
            return room, 0.0
        try:
            left = self._budget.calls_per_minute - await self._budget.spent()
            if left > 0:
                return min(room, left), 0.0
            grant = await self._budget.spend(0)
        except BackendUnavailable as exc:
            log.warning("Meta call budget unavailable; the refresh waits", error=str(exc))
            return 0, self.round_seconds
        return 0, max(grant.retry_after, 0.1)

    async def _release_rest(self, round_: RoundChunks) -> None:
        """Let go of the round's claimed nodes not stored: due again for every replica
        (if this fails, their leases run out instead)."""
        rest, round_.due = list(round_.due.values()), {}
        if not rest:
            return
        try:
            await self._schedule.release(rest)
        except Exception:  # the claims expire on their own; the round's outcome stands
            log.exception("cannot let go of claimed nodes", nodes=len(rest))

    def _succeeded(self, node_id: str) -> None:
        self._failures.pop(node_id)

    def _spend(self, calls: int) -> None:
        self._ledger = (*self._ledger, Spend(self._clock(), calls))
        self.calls_spent += calls

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)
