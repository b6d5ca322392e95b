"""Backends are chosen by URL; a wrong URL fails loudly without echoing credentials."""

from __future__ import annotations

import pytest

from wahealth.backends import create_rate_limiter
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.ratelimit.redis import RedisRateLimiter


async def test_memory_url_gives_a_working_in_process_limiter() -> None:
    limiter = create_rate_limiter("memory://")
    assert isinstance(limiter, MemoryRateLimiter)
    assert [(await limiter.acquire("acct", 1)).allowed for _ in range(2)] == [True, False]
    await limiter.aclose()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache.example:6380/1"])
async def test_redis_urls_give_a_redis_limiter_without_connecting(url: str) -> None:
    limiter = create_rate_limiter(url)
    assert isinstance(limiter, RedisRateLimiter)
    await limiter.aclose()


@pytest.mark.parametrize(
    "url", ["", "memcached://cache:11211", "sqlite+aiosqlite:///x.db", "localhost:6379"]
)
def test_other_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported rate limiter URL scheme"):
        create_rate_limiter(url)


def test_the_error_does_not_echo_a_password() -> None:
    with pytest.raises(ValueError, match="unsupported") as error:
        create_rate_limiter("http://admin:hunter2@cache:6379")
    assert "hunter2" not in str(error.value)
