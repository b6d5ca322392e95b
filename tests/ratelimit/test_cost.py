"""A request may cost more than one: both limiters count `cost` at once, or nothing."""

from __future__ import annotations

import pytest
import redis.asyncio as redis
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.ratelimit.test_memory import FakeClock, run_now

from wahealth.core.ports import Decision
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.ratelimit.redis import RedisRateLimiter


def acquire(limiter: MemoryRateLimiter, limit: int, cost: int = 1) -> Decision:
    return run_now(limiter.acquire("acct", limit, cost))


def test_a_cost_takes_that_many_slots_of_the_window() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    assert acquire(limiter, 5, 3).allowed
    assert acquire(limiter, 5, 2).allowed
    assert not acquire(limiter, 5, 1).allowed


def test_a_refused_cost_counts_nothing_and_says_when_it_fits() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    assert acquire(limiter, 5, 2).allowed  # t = 0.0: two slots
    clock.now += 0.2
    assert acquire(limiter, 5, 2).allowed  # t = 0.2: four
    clock.now += 0.2
    refused = acquire(limiter, 5, 3)  # t = 0.4: needs the first two to leave (at 1.0)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.6)
    assert acquire(limiter, 5, 1).allowed  # the refusal took nothing: one slot is still free
    clock.now += 0.6
    assert acquire(limiter, 5, 2).allowed  # t = 1.0: the first two left


def test_the_first_request_of_a_key_may_cost_the_whole_limit() -> None:
    limiter = MemoryRateLimiter(FakeClock())
    assert acquire(limiter, 5, 5).allowed
    assert not acquire(limiter, 5).allowed


@pytest.mark.parametrize(("limit", "cost"), [(5, 0), (5, 6), (5, -1), (0, 1)])
def test_a_cost_outside_one_to_the_limit_is_refused(limit: int, cost: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        acquire(MemoryRateLimiter(FakeClock()), limit, cost)


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=8),
    arrivals=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=0.6, allow_nan=False), st.integers(1, 8)),
        min_size=1,
        max_size=120,
    ),
)
def test_costs_never_exceed_the_limit_in_any_window(
    limit: int, arrivals: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    admitted: list[tuple[float, int]] = []
    for gap, wanted in arrivals:
        clock.now += gap
        cost = min(wanted, limit)
        in_window = sum(c for t, c in admitted if clock.now - t < 1.0)
        decision = acquire(limiter, limit, cost)
        assert decision.allowed is (in_window + cost <= limit)
        if decision.allowed:
            admitted.append((clock.now, cost))
        else:
            assert 0 < decision.retry_after <= 1.0


async def test_redis_counts_a_cost_at_once_or_nothing(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    assert (await limiter.acquire("acct", 5, 3)).allowed
    refused = await limiter.acquire("acct", 5, 3)
    assert not refused.allowed
    assert 0 < refused.retry_after <= 1.0
    assert (await limiter.acquire("acct", 5, 2)).allowed  # the refusal took nothing
    assert not (await limiter.acquire("acct", 5)).allowed
    assert await redis_client.zcard(f"{redis_prefix}acct") == 5


async def test_redis_refuses_a_cost_outside_one_to_the_limit(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    for cost in (0, 6):
        with pytest.raises(ValueError, match="must be"):
            await limiter.acquire("acct", 5, cost)
