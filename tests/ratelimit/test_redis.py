"""The Redis limiter honours the sliding-window contract across replicas, in real time."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis

from wahealth.ratelimit.redis import RedisRateLimiter

# Admission is judged on the Redis server's clock and recorded here on the client's; allow
# for the two clocks ticking at slightly different rates over a test of a second or two.
CLOCK_TOLERANCE = 0.01


async def test_paced_requests_from_two_replicas_keep_the_window(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    limit = 5
    first = RedisRateLimiter(redis_client, prefix=redis_prefix)
    second = RedisRateLimiter.from_url(redis_url, prefix=redis_prefix)
    # (sent, received, allowed, retry_after) per request, in order: one request at a time.
    records: list[tuple[float, float, bool, float]] = []
    try:
        for n in range(40):
            limiter = first if n % 2 == 0 else second
            sent = time.monotonic()
            decision = await limiter.acquire("acct", limit)
            received = time.monotonic()
            records.append((sent, received, decision.allowed, decision.retry_after))
            await asyncio.sleep(0.0375)
    finally:
        await second.aclose()

    assert all(allowed for _, _, allowed, _ in records[:limit])
    admitted: list[tuple[float, float]] = []
    for sent, received, allowed, retry_after in records:
        if allowed:
            admitted.append((sent, received))
            continue
        assert 0.0 < retry_after <= 1.0
        # Denied only when `limit` admissions could have happened in the second before it.
        recent = [r for _, r in admitted if r > sent - 1.0 - CLOCK_TOLERANCE]
        assert len(recent) >= limit
    # The server admitted each request between its send and its receipt, so this bounds
    # from above the span of any `limit + 1` consecutive admissions.
    for (sent, _), (_, received) in zip(admitted, admitted[limit:], strict=False):
        assert received - sent >= 1.0 - CLOCK_TOLERANCE

    # Once a denial's retry_after has passed, a slot is free: the first request sent after
    # that, if no request in between took the slot, is admitted.
    checked = 0
    for index, (_, received, allowed, retry_after) in enumerate(records):
        free_at = received + retry_after + CLOCK_TOLERANCE
        later = records[index + 1 :]
        first_after = next((n for n, r in enumerate(later) if r[0] >= free_at), None)
        if allowed or first_after is None:
            continue
        assert any(r[2] for r in later[: first_after + 1])
        checked += 1
    assert checked > 0


async def test_a_concurrent_burst_on_two_replicas_admits_the_limit_once(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    limit = 5
    first = RedisRateLimiter(redis_client, prefix=redis_prefix)
    second = RedisRateLimiter.from_url(redis_url, prefix=redis_prefix)
    try:
        started = time.monotonic()
        decisions = await asyncio.gather(
            *((first, second)[n % 2].acquire("acct", limit) for n in range(4 * limit))
        )
        elapsed = time.monotonic() - started
    finally:
        await second.aclose()

    if elapsed >= 1.0:
        pytest.skip("the burst took over a second, so it did not fall in one window")
    assert sum(d.allowed for d in decisions) == limit
    assert all(0.0 < d.retry_after <= 1.0 for d in decisions if not d.allowed)
    # Denied requests left no trace in the stored log.
    assert await redis_client.zcard(redis_prefix + "acct") == limit


async def test_keys_are_independent_and_expire_after_one_window(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    assert [(await limiter.acquire("acct-a", 2)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.acquire("acct-b", 2)).allowed

    ttl_ms = await redis_client.pttl(redis_prefix + "acct-a")
    assert 0 < ttl_ms <= 1000


async def test_a_limit_below_one_is_rejected(redis_client: redis.Redis, redis_prefix: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await RedisRateLimiter(redis_client, prefix=redis_prefix).acquire("acct", 0)
