"""HealthService: stale-while-revalidate, observers off the answer path, outdated marks,
back-off and the query deadline, against a fake upstream, an in-memory cache and fake clocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from wahealth.cache.memory import MemoryReportCache
from wahealth.core.backoff import Backoff
from wahealth.core.errors import UpstreamUnavailable
from wahealth.core.health import Freshness, HealthService
from wahealth.core.ports import UpstreamFailure
from wahealth.domain import Entity, HealthReport, ReportSource

NODE = "106540352242922"
START = 1_800_000_000.0
TTL = 60.0
SWR = 30.0
# Generous for the tests that never expect it to pass: a hang fails the test, not the run.
PATIENCE = 10.0


class Clock:
    """Unix seconds, moved only by the test (the cache, the service and the back-off)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeUpstream:
    """Counts calls; answers at once unless `gate` is closed, fails while `failing`."""

    def __init__(self, clock: Clock, status: str = "AVAILABLE") -> None:
        self.clock = clock
        self.status = status
        self.calls = 0
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.finished = asyncio.Event()

    async def health(self, node_id: str, *, attempts: int | None = None) -> HealthReport:
        self.calls += 1
        self.entered.set()
        self.finished.clear()
        try:
            await self.gate.wait()
            await asyncio.sleep(0)  # a real client always yields at least once
            if self.failing:
                raise UpstreamFailure("Meta answered 500")
            return report(node_id, self.status, self.clock.now)
        finally:
            self.finished.set()

    async def batch_health(
        self, node_ids: Sequence[str]
    ) -> dict[str, HealthReport | Exception]:  # pragma: no cover - not used here
        raise NotImplementedError


class SlowObserver:
    """An observer (the monitor's recorder) whose storage write blocks until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.seen: list[tuple[HealthReport, str]] = []

    async def __call__(self, report: HealthReport, cause: str) -> None:
        self.started.set()
        await self.release.wait()
        self.seen.append((report, cause))


def report(node_id: str, status: str, fetched_at: float) -> HealthReport:
    return HealthReport(
        node_id=node_id,
        entities=(
            Entity("PHONE_NUMBER", node_id, status),
            Entity("WABA", "102290129340398", "AVAILABLE"),
        ),
        fetched_at=datetime.fromtimestamp(fetched_at, UTC),
    )


def fetched(answer: HealthReport) -> float:
    return answer.fetched_at.timestamp()


def service(
    upstream: FakeUpstream,
    clock: Clock,
    *,
    deadline: float = 3.0,
    observers: tuple[SlowObserver | FirstWriteSlow, ...] = (),
) -> HealthService:
    return HealthService(
        upstream=upstream,
        cache=MemoryReportCache(clock=clock),
        freshness=Freshness(
            ttl_seconds=TTL, stale_while_revalidate_seconds=SWR, query_deadline_seconds=deadline
        ),
        observers=observers,
        # jitter 1.0: the first back-off lasts exactly base_seconds.
        backoff=Backoff(base_seconds=1.0, clock=clock, jitter=lambda: 1.0),
        clock=clock,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def upstream(clock: Clock) -> FakeUpstream:
    return FakeUpstream(clock)


# --- stale-while-revalidate ---------------------------------------------------------------


async def test_inside_the_ttl_the_cache_answers_without_a_call(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    first = await health.get(NODE)
    assert first.source is ReportSource.UPSTREAM
    assert upstream.calls == 1
    for _ in range(10):
        clock.advance(TTL / 11)
        answer = await health.get(NODE)
        assert answer.source is ReportSource.CACHE
        assert fetched(answer) == START
    await health.drain()
    assert upstream.calls == 1


async def test_inside_the_swr_window_cache_answers_and_one_refresh_runs(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    await health.get(NODE)
    clock.advance(TTL + SWR / 2)
    upstream.gate.clear()  # the refresh stays in flight while the 20 queries arrive
    answers = await asyncio.gather(*(health.get(NODE) for _ in range(20)))
    assert {a.source for a in answers} == {ReportSource.CACHE}
    assert {fetched(a) for a in answers} == {START}  # the old report, served at once
    await asyncio.wait_for(upstream.entered.wait(), PATIENCE)
    upstream.gate.set()
    await asyncio.wait_for(health.drain(), PATIENCE)
    assert upstream.calls == 2  # the first fetch and exactly one background refresh
    # The refreshed report answers from now on, from the cache.
    after = await health.get(NODE)
    assert after.source is ReportSource.CACHE
    assert fetched(after) == START + TTL + SWR / 2
    await health.drain()
    assert upstream.calls == 2


async def test_sequential_queries_in_the_swr_window_start_one_refresh(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    await health.get(NODE)
    clock.advance(TTL + 1)
    upstream.gate.clear()
    for _ in range(20):
        answer = await health.get(NODE)
        assert answer.source is ReportSource.CACHE
        assert fetched(answer) == START
        await asyncio.sleep(0)
    upstream.gate.set()
    await asyncio.wait_for(health.drain(), PATIENCE)
    assert upstream.calls == 2


async def test_after_the_swr_window_the_query_refetches(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    await health.get(NODE)
    clock.advance(TTL + SWR + 1)
    answer = await health.get(NODE)
    assert answer.source is ReportSource.UPSTREAM
    assert fetched(answer) == START + TTL + SWR + 1
    assert upstream.calls == 2
    await health.drain()


# --- observers never delay the answer -------------------------------------------------------


async def test_a_slow_observer_does_not_delay_the_answer(
    clock: Clock, upstream: FakeUpstream
) -> None:
    observer = SlowObserver()
    health = service(upstream, clock, observers=(observer,))
    answer = await asyncio.wait_for(health.get(NODE), PATIENCE)
    assert answer.source is ReportSource.UPSTREAM
    # The observer got the report and is still blocked on its write: the answer did not wait.
    await asyncio.wait_for(observer.started.wait(), PATIENCE)
    assert observer.seen == []
    draining = asyncio.ensure_future(health.drain())
    await asyncio.sleep(0.01)
    assert not draining.done()  # drain waits for the observer
    observer.release.set()
    await asyncio.wait_for(draining, PATIENCE)
    assert [(r.node_id, cause) for r, cause in observer.seen] == [(NODE, "query")]
    assert observer.seen[0][0] == answer


class FirstWriteSlow:
    """An observer whose first write takes longer than the next: without ordering, the second
    report would be stored before the first (and the first, older, then ignored)."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def __call__(self, report: HealthReport, cause: str) -> None:
        if not self.stored and report.can_send_message.value == "AVAILABLE":
            await asyncio.sleep(0.05)
        self.stored.append(report.can_send_message.value)


async def test_query_reports_are_told_to_observers_in_the_order_they_were_fetched(
    clock: Clock, upstream: FakeUpstream
) -> None:
    observer = FirstWriteSlow()
    health = service(upstream, clock, observers=(observer,))
    assert (await health.get(NODE)).source is ReportSource.UPSTREAM
    clock.advance(TTL + SWR + 1)  # expired: the next query fetches again
    upstream.status = "BLOCKED"
    assert (await health.get(NODE)).can_send_message.value == "BLOCKED"
    await asyncio.wait_for(health.drain(), PATIENCE)
    assert observer.stored == ["AVAILABLE", "BLOCKED"]


# --- outdated reports -----------------------------------------------------------------------


async def test_an_outdated_report_is_refetched_inside_the_ttl(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    await health.get(NODE)
    clock.advance(1)
    await health.mark_outdated(NODE)
    upstream.status = "BLOCKED"
    answer = await health.get(NODE)
    assert upstream.calls == 2
    assert answer.source is ReportSource.UPSTREAM
    assert answer.can_send_message.value == "BLOCKED"
    await health.drain()


async def test_an_outdated_report_with_upstream_failing_is_served_stale(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    await health.get(NODE)
    clock.advance(1)
    await health.mark_outdated(NODE)
    upstream.failing = True
    answer = await health.get(NODE)
    assert upstream.calls == 2
    assert answer.source is ReportSource.STALE
    assert fetched(answer) == START
    # Still outdated: never served as fresh again, even inside its ttl.
    again = await health.get(NODE)
    assert again.source is ReportSource.STALE
    await health.drain()


# --- back-off -------------------------------------------------------------------------------


async def test_with_upstream_failing_queries_back_off(clock: Clock, upstream: FakeUpstream) -> None:
    health = service(upstream, clock)
    await health.get(NODE)
    clock.advance(TTL + SWR + 1)  # the report is too old to serve as fresh
    upstream.failing = True
    for _ in range(50):
        answer = await health.get(NODE)
        assert answer.source is ReportSource.STALE
        assert fetched(answer) == START
    assert upstream.calls == 2  # the first fetch, then one failed call for all 50 queries
    clock.advance(1.01)  # the back-off (1 s for a first failure) is over
    for _ in range(50):
        answer = await health.get(NODE)
        assert answer.source is ReportSource.STALE
    assert upstream.calls == 3
    await health.drain()


async def test_with_nothing_cached_queries_back_off_with_retry_after(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock)
    upstream.failing = True
    for _ in range(50):
        with pytest.raises(UpstreamUnavailable) as caught:
            await health.get(NODE)
        assert caught.value.retry_after >= 1
    assert upstream.calls == 1
    clock.advance(1.01)
    with pytest.raises(UpstreamUnavailable):
        await health.get(NODE)
    assert upstream.calls == 2
    upstream.failing = False
    clock.advance(2.01)  # the second back-off (2 s) is over
    answer = await health.get(NODE)
    assert answer.source is ReportSource.UPSTREAM
    assert upstream.calls == 3
    await health.drain()


# --- query deadline -------------------------------------------------------------------------


async def test_past_the_deadline_the_stale_report_is_answered(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock, deadline=0.2)
    await health.get(NODE)
    clock.advance(TTL + SWR + 1)
    upstream.gate.clear()  # Meta is slow: this call answers only when the test says so
    answer = await asyncio.wait_for(health.get(NODE), PATIENCE)
    assert answer.source is ReportSource.STALE
    assert fetched(answer) == START
    assert upstream.entered.is_set()
    assert not upstream.finished.is_set()  # answered before the upstream finished
    # The fetch goes on and lands in the cache for the next query.
    upstream.gate.set()
    await asyncio.wait_for(upstream.finished.wait(), PATIENCE)
    for _ in range(100):
        if not health.flight.in_flight(NODE):
            break
        await asyncio.sleep(0.01)
    answer = await health.get(NODE)
    assert answer.source is ReportSource.CACHE
    assert fetched(answer) == START + TTL + SWR + 1
    assert upstream.calls == 2
    await health.drain()


async def test_past_the_deadline_with_nothing_cached_is_unavailable(
    clock: Clock, upstream: FakeUpstream
) -> None:
    health = service(upstream, clock, deadline=0.2)
    upstream.gate.clear()
    with pytest.raises(UpstreamUnavailable) as caught:
        await asyncio.wait_for(health.get(NODE), PATIENCE)
    assert caught.value.retry_after >= 1
    assert upstream.entered.is_set()
    assert not upstream.finished.is_set()
    upstream.gate.set()
    await asyncio.wait_for(upstream.finished.wait(), PATIENCE)
    await asyncio.sleep(0.01)
    await health.drain()
