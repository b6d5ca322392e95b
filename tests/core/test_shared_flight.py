"""Coalescing across replicas on a real Redis: one fetch per node, takeover from a dead holder."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as redis

from wahealth.cache.locks import RedisFetchLocks
from wahealth.cache.redis import RedisReportCache
from wahealth.core.ports import CachedReport
from wahealth.core.shared_flight import SharedFlight


def _replica(client: redis.Redis, prefix: str, lease: float = 2.0) -> SharedFlight:
    return SharedFlight(
        RedisFetchLocks(client, prefix + "lock:"),
        RedisReportCache(client, prefix + "rc:"),
        lease_seconds=lease,
        max_wait_seconds=10.0,
    )


async def test_concurrent_fetches_on_two_replicas_make_one_call(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    replicas = [_replica(redis_client, redis_prefix), _replica(redis_client, redis_prefix)]
    cache = RedisReportCache(redis_client, redis_prefix + "rc:")
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)  # Meta takes its time; the others wait meanwhile
        await cache.put(CachedReport("n1", b"{}", time.time()), 60.0)
        return "fetched"

    answers = await asyncio.gather(*(replicas[n % 2].run("n1", None, fetch) for n in range(10)))
    assert calls == 1
    assert answers.count("fetched") == 1
    assert all(isinstance(a, CachedReport) for a in answers if a != "fetched")


async def test_a_waiter_takes_over_when_the_holder_dies(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    dead = RedisFetchLocks(redis_client, redis_prefix + "lock:")
    assert await dead.acquire("n2", 0.5) is not None  # taken, then never renewed nor released
    replica = _replica(redis_client, redis_prefix, lease=0.5)
    started = time.monotonic()

    async def fetch() -> str:
        return "fetched by the waiter"

    assert await replica.run("n2", None, fetch) == "fetched by the waiter"
    assert 0.3 < time.monotonic() - started < 5.0
