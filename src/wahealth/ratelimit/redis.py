"""Sliding-log rate limiter in Redis, shared by every replica."""

from __future__ import annotations

import itertools
import secrets

import redis.asyncio as redis
from redis.exceptions import RedisError

from wahealth.core.ports import BackendUnavailable, Decision
from wahealth.redis_client import SOCKET_TIMEOUT_SECONDS, connect

WINDOW_MICROSECONDS = 1_000_000

# What a Redis call raises when the server is down, unreachable, slow or confused: redis-py's
# own errors (ConnectionError, TimeoutError, ResponseError, ...) and socket-level OSErrors.
_REDIS_FAILURES = (RedisError, OSError)

# One atomic step per request. The window is judged on the Redis server's clock (TIME), so
# replicas with drifting clocks still agree. Scores are microseconds since the epoch, exact
# in a double. A denied request adds nothing. The key expires one window after the last
# admission, when every member in it would have left the window anyway.
#
# KEYS[1]  sorted set of admitted requests, score = admission time in microseconds
# ARGV[1]  limit; ARGV[2] window in microseconds; ARGV[3] a member tag unique to this call;
#          ARGV[4] cost: how many requests this call counts as (1..limit)
# returns  {1, 0} when admitted, {0, microseconds until enough slots free} when denied
_ACQUIRE_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count + cost <= limit then
  local member = time[1] .. '.' .. time[2] .. ':' .. ARGV[3]
  for i = 1, cost do
    redis.call('ZADD', key, now, member .. ':' .. i)
  end
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  return {1, 0}
end
local first = count + cost - limit - 1
local blocking = redis.call('ZRANGE', key, first, first, 'WITHSCORES')
return {0, tonumber(blocking[2]) + window - now}
"""


class RedisRateLimiter:
    """Admits at most `limit` requests per key in any sliding one-second window, across replicas.

    Each key is a sorted set of admission times, checked and updated by one Lua script
    (sent once, then run by its SHA), so concurrent replicas never over-admit.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "wahealth:rl:",
        *,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client
        self._acquire_script = client.register_script(_ACQUIRE_LUA)
        # Members must be unique even when two calls land in the same microsecond.
        self._instance_tag = secrets.token_hex(6)
        self._sequence = itertools.count()

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "wahealth:rl:",
        *,
        timeout_seconds: float = SOCKET_TIMEOUT_SECONDS,
    ) -> RedisRateLimiter:
        """A limiter with its own client for `url`; `aclose` closes that client.

        Each Redis attempt is bounded by `timeout_seconds`, with one immediate retry because
        a pooled connection may have gone stale. Options in the URL's query string win.
        """
        return cls(connect(url, timeout_seconds), prefix, owns_client=True)

    async def acquire(self, key: str, limit: int, cost: int = 1) -> Decision:
        """Admit and count `cost` requests for `key`, or deny them all without counting any.

        A cost above the limit counts as the limit. Raises `BackendUnavailable` when Redis
        cannot be asked.
        """
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per second, got {limit}")
        if cost < 1:
            raise ValueError(f"a request costs at least 1, got {cost}")
        member_tag = f"{self._instance_tag}:{next(self._sequence)}"
        try:
            allowed, wait_us = await self._acquire_script(
                keys=[self._prefix + key],
                args=[limit, WINDOW_MICROSECONDS, member_tag, min(cost, limit)],
            )
        except _REDIS_FAILURES as exc:
            # The error's type only: redis-py messages name hosts, a URL may carry a password.
            raise BackendUnavailable(
                f"rate limiter: Redis did not answer ({type(exc).__name__})"
            ) from exc
        if allowed:
            return Decision(allowed=True)
        return Decision(allowed=False, retry_after=int(wait_us) / 1_000_000)

    async def aclose(self) -> None:
        """Close the Redis client if this limiter created it."""
        if self._owns_client:
            await self._client.aclose()
