"""Fetch locks in Redis: a short lease per node, so one replica at a time calls Meta for it.

A lease is `SET key token NX PX lease`; its holder renews it while its call runs and
deletes it when done, both only while the key still holds its token (one Lua step each),
so a holder that lost its lease never releases another's. A holder that dies stops
renewing: the lease expires and the next replica to ask takes over.
"""

from __future__ import annotations

import secrets

import redis.asyncio as redis
from redis.exceptions import RedisError

from wahealth.core.ports import BackendUnavailable

_REDIS_FAILURES = (RedisError, OSError)

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisFetchLocks:
    """The core's `FetchLocks` port on one Redis, shared by every replica."""

    def __init__(self, client: redis.Redis, prefix: str = "wahealth:lock:") -> None:
        self._client = client
        self._prefix = prefix
        self._renew = client.register_script(_RENEW_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    async def acquire(self, key: str, lease_seconds: float) -> str | None:
        """A token for the lease if it was free; None when another replica holds it."""
        token = secrets.token_hex(8)
        try:
            taken = await self._client.set(
                self._prefix + key, token, nx=True, px=_milliseconds(lease_seconds)
            )
        except _REDIS_FAILURES as exc:
            raise _unavailable(exc) from exc
        return token if taken else None

    async def renew(self, key: str, token: str, lease_seconds: float) -> bool:
        """Extend the lease if `token` still holds it."""
        try:
            kept = await self._renew(
                keys=[self._prefix + key], args=[token, _milliseconds(lease_seconds)]
            )
        except _REDIS_FAILURES as exc:
            raise _unavailable(exc) from exc
        return bool(kept)

    async def release(self, key: str, token: str) -> None:
        """Delete the lease if `token` still holds it."""
        try:
            await self._release(keys=[self._prefix + key], args=[token])
        except _REDIS_FAILURES as exc:
            raise _unavailable(exc) from exc

    async def aclose(self) -> None:
        """The client is the process's (see `backends.RedisClients`): nothing to close here."""


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _unavailable(exc: BaseException) -> BackendUnavailable:
    # The error's type only: redis-py messages name hosts, a URL may carry a password.
    return BackendUnavailable(f"fetch locks: Redis did not answer ({type(exc).__name__})")
