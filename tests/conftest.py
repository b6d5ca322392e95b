"""Shared fixtures.

Redis: the cache and rate limiter tests need a Redis server; they are skipped without
one, and each test gets a key prefix of its own, cleaned up afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis as redis_sync
import redis.asyncio as redis
from hypothesis import settings

# No test asserts wall-clock speed: hypothesis's per-example deadline would, and it fails
# on a loaded machine.
settings.register_profile("wahealth", deadline=None)
settings.load_profile("wahealth")


@pytest.fixture
def redis_url() -> str:
    """The test Redis database, emptied first: a served gateway's cache entries and Meta
    budget from an earlier test (same node ids, same keys) must not answer for this one."""
    url = os.environ.get("WAHEALTH_TEST_REDIS_URL")
    if not url:
        pytest.skip("WAHEALTH_TEST_REDIS_URL is not set; the Redis backend needs a Redis server")
    client = redis_sync.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: redis.Redis) -> AsyncIterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"wahealth:test:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
    if keys:
        await redis_client.delete(*keys)
