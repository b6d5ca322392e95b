"""A Redis that is down, silent or confused: the cache ports raise their own BackendUnavailable,
and the health core answers from upstream anyway.

No Redis server is needed: port 1 on loopback refuses at once, and the silent and confused
servers are small asyncio servers on a kernel-chosen port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import structlog
from redis.exceptions import RedisError
from tests._redis import REFUSING_URL, fake_redis

from wahealth.backends import create_nonce_store, create_report_cache
from wahealth.cache.memory import MemoryReportCache
from wahealth.cache.redis import RedisNonceStore, RedisReportCache
from wahealth.core.health import HealthService
from wahealth.core.ports import BackendUnavailable, CachedReport
from wahealth.domain import HealthReport, ReportSource, parse_health_status

# Stored for a day below: the suite may reach these tests minutes after collecting them.
ENTRY = CachedReport("106540352242922", b'{"health_status":{}}', fetched_at=time.time())

Operation = Callable[[RedisReportCache, RedisNonceStore], Awaitable[object]]
OPERATIONS: dict[str, Operation] = {
    "report-get": lambda cache, _: cache.get("106540352242922"),
    "report-put": lambda cache, _: cache.put(ENTRY, retain_seconds=86_400),
    "report-expired-put": lambda cache, _: cache.put(ENTRY, retain_seconds=-1),
    "report-delete": lambda cache, _: cache.delete("106540352242922"),
    "nonce-claim": lambda _, nonces: nonces.claim("cams:key:nonce", ttl_seconds=60),
}


@asynccontextmanager
async def backends(
    url: str, timeout_seconds: float = 0.5
) -> AsyncIterator[tuple[RedisReportCache, RedisNonceStore]]:
    cache = RedisReportCache.from_url(url, timeout_seconds=timeout_seconds)
    nonces = RedisNonceStore.from_url(url, timeout_seconds=timeout_seconds)
    try:
        yield cache, nonces
    finally:
        await cache.aclose()
        await nonces.aclose()


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_refused_connection_is_backend_unavailable(operation: str) -> None:
    async with backends(REFUSING_URL) as (cache, nonces):
        with pytest.raises(BackendUnavailable) as info:
            await OPERATIONS[operation](cache, nonces)

    assert isinstance(info.value.__cause__, RedisError | OSError)
    # The URL's password never reaches an error message (or a log line built from it).
    assert "hunter2" not in str(info.value)
    assert "Redis did not answer" in str(info.value)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_redis_that_never_answers_is_backend_unavailable(operation: str) -> None:
    async with fake_redis(reply=None) as url, backends(url, timeout_seconds=0.05) as pair:
        with pytest.raises(BackendUnavailable) as info:
            await asyncio.wait_for(OPERATIONS[operation](*pair), timeout=10)

    assert "TimeoutError" in str(info.value)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_server_that_is_not_redis_is_backend_unavailable(operation: str) -> None:
    reply = b"HTTP/1.1 400 Bad Request\r\n\r\n"
    async with fake_redis(reply) as url, backends(url) as pair:
        with pytest.raises(BackendUnavailable):
            await asyncio.wait_for(OPERATIONS[operation](*pair), timeout=10)


async def test_backends_built_from_configuration_raise_it_too() -> None:
    cache = create_report_cache(REFUSING_URL)
    nonces = create_nonce_store(REFUSING_URL)
    try:
        with pytest.raises(BackendUnavailable):
            await cache.get("106540352242922")
        with pytest.raises(BackendUnavailable):
            await nonces.claim("cams:key:nonce", ttl_seconds=60)
    finally:
        await cache.aclose()
        await nonces.aclose()


# --- the health core over a failing cache ---------------------------------------------------

PHONE = "106540352242922"


def _report(node_id: str) -> HealthReport:
    return parse_health_status(
        {"health_status": {"can_send_message": "AVAILABLE", "entities": []}, "id": node_id},
        fetched_at=datetime.now(UTC),
        source=ReportSource.UPSTREAM,
        node_id=node_id,
    )


class CountingUpstream:
    """Answers every node AVAILABLE after `delay` seconds, counting the calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self._delay = delay

    async def health(self, node_id: str, *, attempts: int | None = None) -> HealthReport:
        self.calls += 1
        await asyncio.sleep(self._delay)
        return _report(node_id)

    async def batch_health(self, node_ids: Sequence[str]) -> Mapping[str, HealthReport | Exception]:
        return {node_id: await self.health(node_id) for node_id in node_ids}


class BrokenCache(MemoryReportCache):
    """A report cache whose reads and/or writes fail the way a dead backend's do."""

    def __init__(self, *, reads_fail: bool, writes_fail: bool) -> None:
        super().__init__()
        self.reads_fail = reads_fail
        self.writes_fail = writes_fail

    async def get(self, node_id: str) -> CachedReport | None:
        if self.reads_fail:
            raise BackendUnavailable("report cache read: Redis did not answer (ConnectionError)")
        return await super().get(node_id)

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        if self.writes_fail:
            raise BackendUnavailable("report cache write: Redis did not answer (ConnectionError)")
        await super().put(entry, retain_seconds)


async def test_a_failed_cache_read_is_a_miss_answered_from_upstream() -> None:
    upstream = CountingUpstream()
    health = HealthService(upstream=upstream, cache=BrokenCache(reads_fail=True, writes_fail=False))

    with structlog.testing.capture_logs() as logs:
        first = await health.get(PHONE)
        second = await health.get(PHONE)

    assert first.node_id == second.node_id == PHONE
    assert first.source is second.source is ReportSource.UPSTREAM
    assert upstream.calls == 2  # every read failed, so each query asked upstream
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["report cache unavailable; asking upstream"] * 2
    assert warnings[0]["node_id"] == PHONE


async def test_concurrent_misses_from_a_failed_read_are_coalesced() -> None:
    upstream = CountingUpstream(delay=0.05)
    health = HealthService(upstream=upstream, cache=BrokenCache(reads_fail=True, writes_fail=True))

    reports = await asyncio.gather(*(health.get(PHONE) for _ in range(10)))

    assert {r.node_id for r in reports} == {PHONE}
    assert upstream.calls == 1


async def test_a_failed_cache_write_still_answers_and_is_logged() -> None:
    upstream = CountingUpstream()
    cache = BrokenCache(reads_fail=False, writes_fail=True)
    health = HealthService(upstream=upstream, cache=cache)

    with structlog.testing.capture_logs() as logs:
        report = await health.get(PHONE)

    assert report.node_id == PHONE
    assert report.source is ReportSource.UPSTREAM
    assert cache.size == 0
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("report cache write failed", "warning")
    ]

    cache.writes_fail = False  # the backend is back: the next answer is stored again
    await health.get(PHONE)
    assert await cache.get(PHONE) is not None
    assert upstream.calls == 2


async def test_a_batch_refresh_survives_a_failed_cache_write() -> None:
    upstream = CountingUpstream()
    seen: list[str] = []

    async def observer(report: HealthReport, cause: str) -> None:
        seen.append(f"{report.node_id}:{cause}")

    health = HealthService(
        upstream=upstream,
        cache=BrokenCache(reads_fail=True, writes_fail=True),
        observers=(observer,),
    )
    await health.accept(_report(PHONE), cause="poll")
    refreshed = await health.refresh(PHONE)

    assert refreshed.node_id == PHONE
    assert seen == [f"{PHONE}:poll", f"{PHONE}:poll"]


async def test_the_fast_failing_clients_still_work_on_a_live_redis(
    redis_url: str, redis_prefix: str
) -> None:
    cache = RedisReportCache.from_url(redis_url, prefix=redis_prefix)
    nonces = RedisNonceStore.from_url(redis_url, prefix=redis_prefix)
    try:
        await cache.put(ENTRY, retain_seconds=86_400)
        assert await cache.get(ENTRY.node_id) == ENTRY
        assert [await nonces.claim("n", ttl_seconds=60) for _ in range(2)] == [True, False]
    finally:
        await cache.aclose()
        await nonces.aclose()
