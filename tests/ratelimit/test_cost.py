"""A request that costs more than one: counted as that many, refused whole, never past the limit."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from wahealth.core.ports import RateLimiter
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.ratelimit.redis import RedisRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_cost_counts_that_many_requests() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)

    bulk = await limiter.acquire("acct", 5, cost=3)
    one = await limiter.acquire("acct", 5)
    refused = await limiter.acquire("acct", 5, cost=2)
    last = await limiter.acquire("acct", 5)
    full = await limiter.acquire("acct", 5)

    assert [bulk.allowed, one.allowed, refused.allowed, last.allowed] == [True, True, False, True]
    assert refused.retry_after == pytest.approx(1.0)
    assert not full.allowed


async def test_a_refused_cost_waits_for_enough_slots() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(4):
        assert (await limiter.acquire("acct", 4)).allowed
        clock.now += 0.1

    # Three slots must free: the third oldest admission (at 100.2) leaves at 101.2.
    refused = await limiter.acquire("acct", 4, cost=3)
    clock.now = 101.2
    admitted = await limiter.acquire("acct", 4, cost=3)

    assert not refused.allowed
    assert refused.retry_after == pytest.approx(101.2 - 100.4)
    assert admitted.allowed


async def test_a_cost_above_the_limit_counts_as_the_limit() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)

    first = await limiter.acquire("acct", 5, cost=50)
    second = await limiter.acquire("acct", 5)
    clock.now += 1.0
    later = await limiter.acquire("acct", 5, cost=50)

    assert first.allowed
    assert not second.allowed
    assert later.allowed


@pytest.mark.parametrize("cost", [0, -1])
async def test_a_cost_below_one_is_a_bug(cost: int) -> None:
    with pytest.raises(ValueError, match="costs at least 1"):
        await MemoryRateLimiter().acquire("acct", 5, cost=cost)


async def test_redis_counts_a_cost_as_that_many(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter: RateLimiter = RedisRateLimiter(redis_client, prefix=redis_prefix)

    bulk = await limiter.acquire("acct", 5, cost=4)
    refused = await limiter.acquire("acct", 5, cost=2)
    one = await limiter.acquire("acct", 5)
    full = await limiter.acquire("acct", 5)
    capped = await limiter.acquire("other", 5, cost=50)
    after_cap = await limiter.acquire("other", 5)

    assert [bulk.allowed, refused.allowed, one.allowed, full.allowed] == [True, False, True, False]
    assert 0 < refused.retry_after <= 1.0
    assert capped.allowed
    assert not after_cap.allowed
    assert await redis_client.zcard(redis_prefix + "acct") == 5
