"""A Redis that is down, silent or confused: the Redis limiter raises BackendUnavailable.

No Redis server is needed: port 1 on loopback refuses at once, and the silent and confused
servers are small asyncio servers on a kernel-chosen port. The gateway's answer to this
error (fail closed) is tested end to end in tests/gateway/test_backend_outage.py.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import RedisError
from tests._redis import REFUSING_URL, fake_redis

from wahealth.backends import create_rate_limiter
from wahealth.core.ports import BackendUnavailable
from wahealth.ratelimit.redis import RedisRateLimiter


async def test_a_refused_connection_is_backend_unavailable() -> None:
    limiter = RedisRateLimiter.from_url(REFUSING_URL)
    try:
        with pytest.raises(BackendUnavailable) as info:
            await limiter.acquire("demo", 5)
    finally:
        await limiter.aclose()

    assert isinstance(info.value.__cause__, RedisError | OSError)
    assert "hunter2" not in str(info.value)
    assert "Redis did not answer" in str(info.value)


async def test_a_limiter_built_from_configuration_raises_it_too() -> None:
    limiter = create_rate_limiter(REFUSING_URL)
    try:
        with pytest.raises(BackendUnavailable):
            await limiter.acquire("demo", 5)
    finally:
        await limiter.aclose()


async def test_a_redis_that_never_answers_is_backend_unavailable() -> None:
    async with fake_redis(reply=None) as url:
        limiter = RedisRateLimiter.from_url(url, timeout_seconds=0.05)
        try:
            with pytest.raises(BackendUnavailable) as info:
                await asyncio.wait_for(limiter.acquire("demo", 5), timeout=10)
        finally:
            await limiter.aclose()

    assert "TimeoutError" in str(info.value)


async def test_a_server_that_is_not_redis_is_backend_unavailable() -> None:
    async with fake_redis(b"HTTP/1.1 400 Bad Request\r\n\r\n") as url:
        limiter = RedisRateLimiter.from_url(url)
        try:
            with pytest.raises(BackendUnavailable):
                await asyncio.wait_for(limiter.acquire("demo", 5), timeout=10)
        finally:
            await limiter.aclose()


async def test_a_bad_limit_is_still_a_value_error_not_an_outage() -> None:
    limiter = RedisRateLimiter.from_url(REFUSING_URL)
    try:
        with pytest.raises(ValueError, match="at least 1"):
            await limiter.acquire("demo", 0)
    finally:
        await limiter.aclose()


async def test_the_fast_failing_client_still_limits_on_a_live_redis(
    redis_url: str, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter.from_url(redis_url, prefix=redis_prefix)
    try:
        decisions = [await limiter.acquire("recovers", 1) for _ in range(2)]
    finally:
        await limiter.aclose()

    assert [d.allowed for d in decisions] == [True, False]
