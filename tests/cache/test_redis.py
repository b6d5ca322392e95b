"""The Redis report cache and nonce store against a real Redis server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as redis

from wahealth.cache.redis import RedisNonceStore, RedisReportCache
from wahealth.core.ports import CachedReport

# Not valid UTF-8 on purpose: the payload is stored as bytes, untouched.
PAYLOAD = b'{"health_status":{"can_send_message":"BLOCKED"},"id":"2632273056924580"}\xff\x00'


async def until_none(fetch: Callable[[], Awaitable[object]], attempts: int = 50) -> bool:
    """Poll for at most about a second until `fetch()` returns None."""
    for _ in range(attempts):
        if await fetch() is None:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_stored_report_comes_back_byte_for_byte(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    cache = RedisReportCache(redis_client, prefix=redis_prefix)
    entry = CachedReport("2632273056924580", PAYLOAD, fetched_at=time.time())

    await cache.put(entry, retain_seconds=3600)

    assert await cache.get("2632273056924580") == entry
    assert await cache.get("106540352242922") is None


async def test_redis_drops_a_report_retain_seconds_after_it_was_fetched(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    cache = RedisReportCache(redis_client, prefix=redis_prefix)
    now = time.time()
    await cache.put(CachedReport("fresh", PAYLOAD, fetched_at=now), retain_seconds=60)
    await cache.put(CachedReport("older", PAYLOAD, fetched_at=now - 50), retain_seconds=60)

    assert 59_000 < await redis_client.pttl(redis_prefix + "fresh") <= 60_000
    assert 9_000 < await redis_client.pttl(redis_prefix + "older") <= 10_000


async def test_a_report_is_gone_once_its_retention_ends(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    cache = RedisReportCache(redis_client, prefix=redis_prefix)
    await cache.put(CachedReport("phone", PAYLOAD, fetched_at=time.time() - 0.9), retain_seconds=1)
    assert await cache.get("phone") is not None

    assert await until_none(lambda: cache.get("phone"))


async def test_a_report_already_past_retention_clears_the_old_one(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    cache = RedisReportCache(redis_client, prefix=redis_prefix)
    await cache.put(CachedReport("phone", PAYLOAD, fetched_at=time.time()), retain_seconds=60)

    await cache.put(CachedReport("phone", PAYLOAD, fetched_at=time.time() - 120), retain_seconds=60)

    assert await cache.get("phone") is None


async def test_delete_forgets_a_report(redis_client: redis.Redis, redis_prefix: str) -> None:
    cache = RedisReportCache(redis_client, prefix=redis_prefix)
    await cache.put(CachedReport("phone", PAYLOAD, fetched_at=time.time()), retain_seconds=60)

    await cache.delete("phone")

    assert await cache.get("phone") is None
    assert await redis_client.exists(redis_prefix + "phone") == 0


async def test_an_unreadable_value_is_a_miss(redis_client: redis.Redis, redis_prefix: str) -> None:
    await redis_client.set(redis_prefix + "phone", b'{"written": "by something else"}')

    assert await RedisReportCache(redis_client, prefix=redis_prefix).get("phone") is None


async def test_a_client_that_decodes_replies_is_refused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisReportCache(client)
    finally:
        await client.aclose()


async def test_a_nonce_is_claimed_once_across_replicas(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    first = RedisNonceStore(redis_client, prefix=redis_prefix)
    second = RedisNonceStore.from_url(redis_url, prefix=redis_prefix)
    try:
        claims = await asyncio.gather(
            *((first, second)[n % 2].claim("3c9f0a6e", ttl_seconds=900) for n in range(10))
        )
        assert claims.count(True) == 1
        assert await second.claim("5d1b2c7f", ttl_seconds=900)
    finally:
        await second.aclose()
    assert 899_000 < await redis_client.pttl(redis_prefix + "3c9f0a6e") <= 900_000


async def test_a_nonce_can_be_claimed_again_after_its_ttl(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    nonces = RedisNonceStore(redis_client, prefix=redis_prefix)
    assert await nonces.claim("3c9f0a6e", ttl_seconds=0.05)
    assert not await nonces.claim("3c9f0a6e", ttl_seconds=0.05)

    assert await until_none(lambda: redis_client.get(redis_prefix + "3c9f0a6e"))

    assert await nonces.claim("3c9f0a6e", ttl_seconds=0.05)
