"""In-process report cache and nonce store, for a single replica."""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from wahealth.core.ports import CachedReport

# Expired nonces dropped per claim. Each claim adds at most one, so a few per call keeps the
# store bounded by the nonces still inside their ttl, without ever scanning all of them.
_NONCE_EXPIRIES_PER_CLAIM = 4


@dataclass(frozen=True, slots=True, eq=False)
class _Stored(CachedReport):
    """A cached report and when it leaves the cache (one object per entry, no tuple).

    It equals the `CachedReport` it was stored from: the expiry is the cache's own.
    """

    expires_at: float = 0.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CachedReport):
            return NotImplemented
        return (self.node_id, self.payload, self.fetched_at, self.outdated) == (
            other.node_id,
            other.payload,
            other.fetched_at,
            other.outdated,
        )

    __hash__ = CachedReport.__hash__


class MemoryReportCache:
    """Last known report per node, least recently used evicted beyond either bound.

    Bounds: at most `max_entries` entries (default 100,000) and at most `max_bytes` bytes
    (default 128 MiB), counting each entry as its payload plus `ENTRY_OVERHEAD_BYTES` for
    the node id, the entry and its slot. Payloads are stored as right-sized copies: a JSON
    encoder may hand back bytes inside a much larger allocation (orjson: 4 KiB for a
    400-byte document), which would otherwise be what the cache really holds.

    An entry expires `retain_seconds` after it was fetched (not after it was stored), so an
    old report put late does not live longer than a fresh one. `clock` is unix seconds, the
    same clock as `CachedReport.fetched_at`.
    """

    ENTRY_OVERHEAD_BYTES = 256

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
        max_bytes: int = 128 * 2**20,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self._clock = clock
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        # A plain dict in least-recently-used order (a hit is moved to the end): lighter per
        # entry than an OrderedDict, which matters at a fleet of 100,000 nodes.
        self._entries: dict[str, _Stored] = {}

    @property
    def size_bytes(self) -> int:
        """What the entries count against `max_bytes`."""
        return self._bytes

    @property
    def size(self) -> int:
        """How many entries are held, expired ones included until touched or evicted."""
        return len(self._entries)

    async def get(self, node_id: str) -> CachedReport | None:
        """The report for `node_id` unless missing or past its retention."""
        return self.get_now(node_id)

    def get_now(self, node_id: str) -> CachedReport | None:
        """`get`, answered without awaiting (it never does I/O)."""
        entries = self._entries
        stored = entries.pop(node_id, None)
        if stored is None:
            return None
        if self._clock() >= stored.expires_at:
            self._bytes -= _cost(stored)
            return None
        entries[node_id] = stored
        return stored

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        """Store `entry`, replacing any report for the same node."""
        expires_at = entry.fetched_at + retain_seconds
        self._drop(entry.node_id)
        if self._clock() >= expires_at:
            return
        compact = _Stored(
            entry.node_id,
            bytes(memoryview(entry.payload)),
            entry.fetched_at,
            entry.outdated,
            expires_at=expires_at,
        )
        entries = self._entries
        entries[entry.node_id] = compact
        self._bytes += _cost(compact)
        while len(entries) > self._max_entries or (
            self._bytes > self._max_bytes and len(entries) > 1
        ):
            evicted = entries.pop(next(iter(entries)))
            self._bytes -= _cost(evicted)

    async def mark_outdated(self, node_id: str) -> None:
        """Keep the report but flag it superseded: it is then served only as stale."""
        stored = self._entries.get(node_id)
        if stored is not None:
            self._entries[node_id] = dataclasses.replace(stored, outdated=True)

    async def delete(self, node_id: str) -> None:
        """Forget the report for `node_id`, if any."""
        self._drop(node_id)

    async def aclose(self) -> None:
        """Drop every entry; nothing else to release."""
        self._entries.clear()
        self._bytes = 0

    def _drop(self, node_id: str) -> None:
        stored = self._entries.pop(node_id, None)
        if stored is not None:
            self._bytes -= _cost(stored)


def _cost(entry: CachedReport) -> int:
    return len(entry.payload) + MemoryReportCache.ENTRY_OVERHEAD_BYTES


class MemoryNonceStore:
    """Signature nonces seen within their ttl; each can be claimed once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires_at: dict[str, float] = {}
        # Expiry order for cleanup. A nonce claimed again after expiring leaves an outdated
        # entry behind, recognised because its time no longer matches `_expires_at`.
        self._expiry_heap: list[tuple[float, str]] = []

    @property
    def size(self) -> int:
        """How many nonces are remembered, expired ones included until cleaned up."""
        return len(self._expires_at)

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        """True the first time a nonce is seen within its ttl, False after."""
        return self.claim_now(nonce, ttl_seconds)

    def claim_now(self, nonce: str, ttl_seconds: float) -> bool:
        """`claim`, answered without awaiting (it never does I/O)."""
        if ttl_seconds <= 0:
            raise ValueError(f"nonce ttl must be positive, got {ttl_seconds}")
        now = self._clock()
        self._drop_expired(now)
        expires_at = self._expires_at.get(nonce)
        if expires_at is not None and now < expires_at:
            return False
        expires_at = now + ttl_seconds
        self._expires_at[nonce] = expires_at
        heapq.heappush(self._expiry_heap, (expires_at, nonce))
        return True

    def _drop_expired(self, now: float) -> None:
        heap = self._expiry_heap
        for _ in range(_NONCE_EXPIRIES_PER_CLAIM):
            if not heap or heap[0][0] > now:
                return
            expires_at, nonce = heapq.heappop(heap)
            if self._expires_at.get(nonce) == expires_at:
                del self._expires_at[nonce]

    async def aclose(self) -> None:
        """Forget every nonce; nothing else to release."""
        self._expires_at.clear()
        self._expiry_heap.clear()
