"""Fetch leases in a real Redis: one holder at a time, expiry, renewal and takeover."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from wahealth.cache.locks import RedisFetchLocks
from wahealth.redis_client import connect


async def test_one_holder_at_a_time_across_replicas(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    other_client = connect(redis_url)
    try:
        replicas = [
            RedisFetchLocks(redis_client, redis_prefix),
            RedisFetchLocks(other_client, redis_prefix),
        ]
        tokens = await asyncio.gather(*(replicas[n % 2].acquire("node-1", 5.0) for n in range(20)))
        assert sum(token is not None for token in tokens) == 1
        holder = next(token for token in tokens if token is not None)
        await replicas[1].release("node-1", holder)
        assert await replicas[0].acquire("node-1", 5.0) is not None
    finally:
        await other_client.aclose()


async def test_a_dead_holders_lease_expires_and_another_takes_over(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    locks = RedisFetchLocks(redis_client, redis_prefix)
    dead = await locks.acquire("node-2", 0.3)  # its holder never renews nor releases
    assert dead is not None
    assert await locks.acquire("node-2", 0.3) is None
    await asyncio.sleep(0.4)
    taken = await locks.acquire("node-2", 5.0)
    assert taken is not None
    # The dead holder, come back, can neither renew nor release the new holder's lease.
    assert not await locks.renew("node-2", dead, 5.0)
    await locks.release("node-2", dead)
    assert await locks.acquire("node-2", 5.0) is None
    await locks.release("node-2", taken)
    assert await locks.acquire("node-2", 5.0) is not None


async def test_a_renewed_lease_outlives_its_first_term(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    locks = RedisFetchLocks(redis_client, redis_prefix)
    token = await locks.acquire("node-3", 0.3)
    assert token is not None
    for _ in range(4):
        await asyncio.sleep(0.15)
        assert await locks.renew("node-3", token, 0.3)
    assert await locks.acquire("node-3", 0.3) is None  # 0.6 s on, still held
