"""Shared fixtures.

Redis: the cache and rate limiter tests need a Redis server; they are skipped without
one, and each test gets a key prefix of its own, cleaned up afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from hypothesis import settings

# No test asserts wall-clock speed: hypothesis's per-example deadline would, and it fails
# on a loaded machine.
settings.register_profile("wahealth", deadline=None)
settings.load_profile("wahealth")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("WAHEALTH_TEST_REDIS_URL")
    if not url:
        pytest.skip("WAHEALTH_TEST_REDIS_URL is not set; the Redis backend needs a Redis server")
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
