"""The in-memory report cache and nonce store, checked on a fake clock."""

from __future__ import annotations

import orjson
import pytest

from wahealth.cache.memory import MemoryNonceStore, MemoryReportCache
from wahealth.core.ports import CachedReport

FETCHED_AT = 1_700_000_000.0
PAYLOAD = b'{"health_status":{"can_send_message":"AVAILABLE","entities":[]},"id":"106540352242922"}'


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def report(node_id: str = "106540352242922", fetched_at: float = FETCHED_AT) -> CachedReport:
    return CachedReport(node_id=node_id, payload=PAYLOAD, fetched_at=fetched_at)


async def test_a_stored_report_comes_back_unchanged() -> None:
    cache = MemoryReportCache(clock=FakeClock(FETCHED_AT))
    await cache.put(report(), retain_seconds=3600)

    assert await cache.get("106540352242922") == report()
    assert await cache.get("105154286024403") is None


async def test_a_report_expires_retain_seconds_after_it_was_fetched() -> None:
    clock = FakeClock(FETCHED_AT + 30)
    cache = MemoryReportCache(clock=clock)
    await cache.put(report(), retain_seconds=60)

    clock.now = FETCHED_AT + 59.999
    assert await cache.get("106540352242922") == report()
    clock.now = FETCHED_AT + 60
    assert await cache.get("106540352242922") is None


async def test_a_report_already_past_retention_is_not_stored_and_clears_the_old_one() -> None:
    cache = MemoryReportCache(clock=FakeClock(FETCHED_AT + 100))
    await cache.put(report(fetched_at=FETCHED_AT + 90), retain_seconds=60)

    await cache.put(report(fetched_at=FETCHED_AT), retain_seconds=60)

    assert await cache.get("106540352242922") is None
    assert cache.size == 0


async def test_put_replaces_and_delete_forgets() -> None:
    cache = MemoryReportCache(clock=FakeClock(FETCHED_AT))
    await cache.put(report(), retain_seconds=60)
    newer = CachedReport("106540352242922", b'{"id":"106540352242922"}', FETCHED_AT + 1)
    await cache.put(newer, retain_seconds=60)
    assert await cache.get("106540352242922") == newer

    await cache.delete("106540352242922")
    await cache.delete("106540352242922")

    assert await cache.get("106540352242922") is None


async def test_least_recently_used_reports_are_evicted_beyond_max_entries() -> None:
    cache = MemoryReportCache(clock=FakeClock(FETCHED_AT), max_entries=2)
    await cache.put(report("phone-1"), retain_seconds=60)
    await cache.put(report("phone-2"), retain_seconds=60)
    assert await cache.get("phone-1") is not None

    await cache.put(report("phone-3"), retain_seconds=60)

    assert await cache.get("phone-2") is None
    assert await cache.get("phone-1") is not None
    assert await cache.get("phone-3") is not None
    assert cache.size == 2


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryReportCache(max_entries=0)


async def test_a_nonce_can_be_claimed_once_within_its_ttl() -> None:
    clock = FakeClock(500.0)
    nonces = MemoryNonceStore(clock=clock)

    assert await nonces.claim("3c9f0a6e", ttl_seconds=900)
    clock.now += 899.9
    assert not await nonces.claim("3c9f0a6e", ttl_seconds=900)
    assert await nonces.claim("5d1b2c7f", ttl_seconds=900)

    clock.now = 500.0 + 900
    assert await nonces.claim("3c9f0a6e", ttl_seconds=900)
    assert not await nonces.claim("3c9f0a6e", ttl_seconds=900)


async def test_expired_nonces_are_cleaned_up_so_memory_stays_bounded() -> None:
    clock = FakeClock(500.0)
    nonces = MemoryNonceStore(clock=clock)
    for n in range(1000):
        await nonces.claim(f"old-{n}", ttl_seconds=1)
    # A nonce re-claimed after expiring must survive the cleanup of its first claim.
    clock.now += 2
    assert await nonces.claim("old-0", ttl_seconds=60)

    for n in range(300):
        await nonces.claim(f"new-{n}", ttl_seconds=60)

    assert nonces.size == 301
    assert not await nonces.claim("old-0", ttl_seconds=60)


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_a_non_positive_ttl_is_rejected(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        await MemoryNonceStore().claim("3c9f0a6e", ttl_seconds=ttl)


async def test_least_recently_used_reports_are_evicted_beyond_max_bytes() -> None:
    cost = 100 + MemoryReportCache.ENTRY_OVERHEAD_BYTES
    cache = MemoryReportCache(clock=lambda: FETCHED_AT, max_bytes=3 * cost)
    for node_id in ("a", "b", "c"):
        await cache.put(CachedReport(node_id, b"x" * 100, FETCHED_AT), 60)
    assert cache.size_bytes == 3 * cost
    assert await cache.get("a") is not None  # now the most recently used
    await cache.put(CachedReport("d", b"y" * 100, FETCHED_AT), 60)
    assert [await cache.get(n) is not None for n in "abcd"] == [True, False, True, True]
    await cache.put(CachedReport("a", b"z" * 10, FETCHED_AT), 60)  # a replacement is re-counted
    await cache.delete("c")
    assert cache.size_bytes == 10 + MemoryReportCache.ENTRY_OVERHEAD_BYTES + cost


async def test_a_payload_is_kept_as_a_right_sized_copy() -> None:
    payload = orjson.dumps({"health_status": {"can_send_message": "AVAILABLE"}})
    cache = MemoryReportCache(clock=lambda: FETCHED_AT)
    await cache.put(CachedReport("a", payload, FETCHED_AT), 60)
    got = await cache.get("a")
    assert got is not None
    assert got.payload == payload
    assert got.payload is not payload


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryReportCache(max_bytes=0)
