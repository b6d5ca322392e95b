"""The in-memory limiter honours the sliding-window contract, checked on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wahealth.core.ports import Decision
from wahealth.ratelimit.memory import MemoryRateLimiter

T = TypeVar("T")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that must finish without ever suspending.

    That `acquire` never suspends is what makes it safe for concurrent tasks on one loop.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise AssertionError("acquire suspended inside its critical section")


def acquire(limiter: MemoryRateLimiter, key: str, limit: int) -> Decision:
    return run_now(limiter.acquire(key, limit))


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=6),
    arrivals=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=0.7, allow_nan=False),
            st.sampled_from(["acct-a", "acct-b", "acct-c"]),
        ),
        min_size=1,
        max_size=250,
    ),
)
def test_any_arrivals_admit_at_most_limit_per_window_and_deny_only_when_full(
    limit: int, arrivals: list[tuple[float, str]]
) -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    admitted: dict[str, list[float]] = {"acct-a": [], "acct-b": [], "acct-c": []}

    for gap, key in arrivals:
        clock.now += gap
        decision = acquire(limiter, key, limit)
        in_window = [t for t in admitted[key][-limit:] if clock.now - t < 1.0]
        if decision.allowed:
            admitted[key].append(clock.now)
        else:
            # Denied only when the window really is full, and told when the oldest leaves it.
            assert len(in_window) == limit
            assert 0.0 < decision.retry_after <= 1.0
            assert decision.retry_after == pytest.approx(1.0 - (clock.now - in_window[0]))

    for times in admitted.values():
        for first, last in zip(times, times[limit:], strict=False):
            assert last - first >= 1.0, f"{limit + 1} admitted within {last - first}s"


@pytest.mark.parametrize("limit", [1, 5, 100])
def test_client_sending_evenly_at_ninety_percent_is_never_throttled(limit: int) -> None:
    start = 12_345.678
    clock = FakeClock(start)
    limiter = MemoryRateLimiter(clock=clock)
    interval = 1.0 / (0.9 * limit)

    for n in range(int(20 * 0.9 * limit)):
        clock.now = start + n * interval
        assert acquire(limiter, "acct", limit).allowed, f"request {n} throttled"


def test_burst_of_twice_the_limit_admits_exactly_the_limit() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)

    decisions = [acquire(limiter, "acct", 5) for _ in range(10)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 5
    assert all(d.retry_after == pytest.approx(1.0) for d in decisions[5:])


def test_denied_requests_are_not_counted() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(5):
        acquire(limiter, "acct", 5)
    for _ in range(100):
        clock.now += 0.009
        assert not acquire(limiter, "acct", 5).allowed

    # The five admitted at the start have left; the hundred denials left no trace.
    clock.now = 1001.0
    assert [acquire(limiter, "acct", 5).allowed for _ in range(6)] == [True] * 5 + [False]


def test_no_double_admission_across_a_second_boundary() -> None:
    """A fixed window would admit 2x the limit around t=1.0; a sliding one must not."""
    clock = FakeClock(0.75)
    limiter = MemoryRateLimiter(clock=clock)
    assert all(acquire(limiter, "acct", 3).allowed for _ in range(3))

    clock.now = 1.25
    late = acquire(limiter, "acct", 3)
    assert late == Decision(allowed=False, retry_after=0.5)

    clock.now = 1.75
    assert all(acquire(limiter, "acct", 3).allowed for _ in range(3))


def test_retry_after_is_when_the_oldest_request_leaves_the_window() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    for at in (0.0, 0.2, 0.4):
        clock.now = at
        assert acquire(limiter, "acct", 3).allowed

    clock.now = 0.5
    assert acquire(limiter, "acct", 3).retry_after == pytest.approx(0.5)

    # Waiting exactly that long is enough; the next one then waits for the request at 0.2.
    clock.now = 1.0
    assert acquire(limiter, "acct", 3).allowed
    clock.now = 1.1
    assert acquire(limiter, "acct", 3).retry_after == pytest.approx(0.1)


def test_keys_are_limited_independently() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    assert all(acquire(limiter, "acct-a", 2).allowed for _ in range(2))
    assert not acquire(limiter, "acct-a", 2).allowed

    assert all(acquire(limiter, "acct-b", 2).allowed for _ in range(2))


def test_lowering_the_limit_takes_effect_at_once() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    for at in (0.0, 0.1, 0.2, 0.3):
        clock.now = at
        assert acquire(limiter, "acct", 10).allowed

    clock.now = 0.5
    # Three of the four must leave before one more fits under the new limit of 2.
    decision = acquire(limiter, "acct", 2)
    assert not decision.allowed
    assert decision.retry_after == pytest.approx(0.7)


def test_idle_keys_are_dropped_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for n in range(1000):
        acquire(limiter, f"once-{n}", 5)
    assert limiter.tracked_keys == 1000

    clock.now += 1.0
    for _ in range(300):
        acquire(limiter, "busy", 1000)

    assert limiter.tracked_keys == 1


def test_a_dropped_key_starts_afresh() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    acquire(limiter, "acct", 1)
    clock.now += 5.0
    for n in range(10):
        acquire(limiter, f"other-{n}", 1)

    assert acquire(limiter, "acct", 1).allowed
    assert not acquire(limiter, "acct", 1).allowed


async def test_concurrent_tasks_cannot_overshoot_the_limit() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())

    decisions = await asyncio.gather(*(limiter.acquire("acct", 7) for _ in range(100)))

    assert sum(d.allowed for d in decisions) == 7


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_rejected(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        acquire(MemoryRateLimiter(), "acct", limit)
