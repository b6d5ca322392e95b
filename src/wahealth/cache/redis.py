"""Report cache and nonce store in Redis, shared by every replica."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

from wahealth.core.ports import BackendUnavailable, CachedReport
from wahealth.redis_client import SOCKET_TIMEOUT_SECONDS, connect

_log = structlog.get_logger(__name__)

# What a Redis call raises when the server is down, unreachable, slow or confused: redis-py's
# own errors (ConnectionError, TimeoutError, ResponseError, ...) and socket-level OSErrors.
_REDIS_FAILURES = (RedisError, OSError)

# A stored report is one string value: a format byte, fetched_at as a big-endian double, then
# Meta's payload bytes untouched. One value means one GET and one atomic SET with its expiry.
# The format byte says whether the report is current (1) or outdated (2: a webhook said the
# node changed); marking one outdated rewrites that byte alone, keeping the expiry.
_FORMAT_V1 = b"\x01"
_FORMAT_OUTDATED = b"\x02"
_MARK_OUTDATED_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SETRANGE', KEYS[1], 0, ARGV[1])
end
return 0
"""
_FETCHED_AT = struct.Struct(">d")
_HEADER_SIZE = len(_FORMAT_V1) + _FETCHED_AT.size


def _unavailable(what: str, exc: Exception) -> BackendUnavailable:
    # The error's type only: redis-py messages name hosts, and a URL may carry a password.
    return BackendUnavailable(f"{what}: Redis did not answer ({type(exc).__name__})")


def _require_bytes_replies(client: redis.Redis) -> None:
    # Payloads are binary-packed; a client that decodes replies to str would corrupt them.
    if client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False")


class RedisReportCache:
    """Last known report per node; Redis drops each one `retain_seconds` after it was fetched.

    `clock` (unix seconds, the clock of `CachedReport.fetched_at`) turns that moment into the
    key's remaining time to live when the entry is stored.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "wahealth:rc:",
        *,
        clock: Callable[[], float] = time.time,
        owns_client: bool = False,
    ) -> None:
        _require_bytes_replies(client)
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "wahealth:rc:",
        *,
        timeout_seconds: float = SOCKET_TIMEOUT_SECONDS,
    ) -> RedisReportCache:
        """A cache with its own client for `url`; `aclose` closes that client."""
        return cls(connect(url, timeout_seconds), prefix, owns_client=True)

    async def get(self, node_id: str) -> CachedReport | None:
        """The report for `node_id` unless missing or past its retention."""
        try:
            stored = await self._client.get(self._prefix + node_id)
        except _REDIS_FAILURES as exc:
            raise _unavailable("report cache read", exc) from exc
        if stored is None:
            return None
        if (
            not isinstance(stored, bytes)
            or len(stored) < _HEADER_SIZE
            or stored[:1] not in (_FORMAT_V1, _FORMAT_OUTDATED)
        ):
            # Written by an incompatible version: treat as a miss; the next put replaces it.
            _log.warning("report_cache.unreadable_entry", node_id=node_id)
            return None
        (fetched_at,) = _FETCHED_AT.unpack_from(stored, len(_FORMAT_V1))
        return CachedReport(
            node_id=node_id,
            payload=stored[_HEADER_SIZE:],
            fetched_at=fetched_at,
            outdated=stored[:1] == _FORMAT_OUTDATED,
        )

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        """Store `entry`, replacing any report for the same node."""
        key = self._prefix + entry.node_id
        remaining_ms = math.ceil((entry.fetched_at + retain_seconds - self._clock()) * 1000)
        try:
            if remaining_ms <= 0:
                await self._client.delete(key)
                return
            value = _FORMAT_V1 + _FETCHED_AT.pack(entry.fetched_at) + entry.payload
            await self._client.set(key, value, px=remaining_ms)
        except _REDIS_FAILURES as exc:
            raise _unavailable("report cache write", exc) from exc

    async def mark_outdated(self, node_id: str) -> None:
        """Keep the report but flag it superseded: it is then served only as stale."""
        try:
            await self._client.eval(_MARK_OUTDATED_LUA, 1, self._prefix + node_id, _FORMAT_OUTDATED)
        except _REDIS_FAILURES as exc:
            raise _unavailable("report cache mark", exc) from exc

    async def delete(self, node_id: str) -> None:
        """Forget the report for `node_id`, if any."""
        try:
            await self._client.delete(self._prefix + node_id)
        except _REDIS_FAILURES as exc:
            raise _unavailable("report cache delete", exc) from exc

    async def aclose(self) -> None:
        """Close the Redis client if this cache created it."""
        if self._owns_client:
            await self._client.aclose()


class RedisNonceStore:
    """Signature nonces seen within their ttl, shared so a replay fails on every replica."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "wahealth:nonce:",
        *,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "wahealth:nonce:",
        *,
        timeout_seconds: float = SOCKET_TIMEOUT_SECONDS,
    ) -> RedisNonceStore:
        """A store with its own client for `url`; `aclose` closes that client."""
        return cls(connect(url, timeout_seconds), prefix, owns_client=True)

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        """True the first time a nonce is seen within its ttl, False after."""
        if ttl_seconds <= 0:
            raise ValueError(f"nonce ttl must be positive, got {ttl_seconds}")
        # SET NX is the check and the write in one atomic step: of two replicas racing on
        # the same nonce, exactly one wins.
        try:
            created = await self._client.set(
                self._prefix + nonce, b"1", nx=True, px=math.ceil(ttl_seconds * 1000)
            )
        except _REDIS_FAILURES as exc:
            raise _unavailable("nonce claim", exc) from exc
        return bool(created)

    async def aclose(self) -> None:
        """Close the Redis client if this store created it."""
        if self._owns_client:
            await self._client.aclose()
