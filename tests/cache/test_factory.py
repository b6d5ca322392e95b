"""Cache and nonce backends are chosen by URL; a wrong URL fails without echoing credentials."""

from __future__ import annotations

import time

import pytest

from wahealth.backends import create_nonce_store, create_report_cache
from wahealth.cache.memory import MemoryNonceStore, MemoryReportCache
from wahealth.cache.redis import RedisNonceStore, RedisReportCache
from wahealth.core.ports import CachedReport


async def test_memory_url_gives_working_in_process_backends() -> None:
    cache = create_report_cache("memory://")
    nonces = create_nonce_store("memory://")
    assert isinstance(cache, MemoryReportCache)
    assert isinstance(nonces, MemoryNonceStore)

    entry = CachedReport("106540352242922", b"{}", fetched_at=time.time())
    await cache.put(entry, retain_seconds=60)
    assert await cache.get("106540352242922") == entry
    assert [await nonces.claim("3c9f0a6e", 60) for _ in range(2)] == [True, False]
    await cache.aclose()
    await nonces.aclose()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache.example:6380/1"])
async def test_redis_urls_give_redis_backends_without_connecting(url: str) -> None:
    cache = create_report_cache(url)
    nonces = create_nonce_store(url)
    assert isinstance(cache, RedisReportCache)
    assert isinstance(nonces, RedisNonceStore)
    await cache.aclose()
    await nonces.aclose()


@pytest.mark.parametrize("url", ["", "memcached://cache:11211", "postgresql+asyncpg://db/x"])
def test_other_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported report cache URL scheme"):
        create_report_cache(url)
    with pytest.raises(ValueError, match="unsupported nonce store URL scheme"):
        create_nonce_store(url)


def test_the_error_does_not_echo_a_password() -> None:
    with pytest.raises(ValueError, match="unsupported") as error:
        create_report_cache("http://admin:hunter2@cache:6379")
    assert "hunter2" not in str(error.value)
