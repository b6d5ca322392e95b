"""Pick the report cache, nonce store, rate limiter, Meta budget and fetch locks by URL.

`memory://` keeps them in this process (one replica); `redis://…` or `rediss://…` shares
them across replicas. Every backend on the same Redis URL uses the same client (one
connection pool per process), each under its own key prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis.asyncio as redis

from wahealth.cache.locks import RedisFetchLocks
from wahealth.cache.memory import MemoryNonceStore, MemoryReportCache
from wahealth.cache.redis import RedisNonceStore, RedisReportCache
from wahealth.core.budget import MemoryCallBudget
from wahealth.core.ports import FetchLocks, MetaBudget, NonceStore, RateLimiter, ReportCache
from wahealth.core.shared_flight import SharedFlight
from wahealth.ratelimit.budget import RedisCallBudget
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.ratelimit.redis import RedisRateLimiter
from wahealth.redis_client import connect

_REDIS_SCHEMES = frozenset({"redis", "rediss"})
# The lease of a cross-replica fetch, renewed while the call runs: a dead holder's waiters
# take over within this.
SHARED_LEASE_SECONDS = 2.0


def _is_memory(url: str, what: str) -> bool:
    # Only the scheme goes into the error: the rest of a URL may carry a password.
    scheme = urlsplit(url).scheme.lower()
    if scheme != "memory" and scheme not in _REDIS_SCHEMES:
        raise ValueError(
            f"unsupported {what} URL scheme {scheme!r}: use memory://, redis:// or rediss://"
        )
    return scheme == "memory"


def uses_redis(url: str) -> bool:
    """Whether a backend URL names Redis (rather than this process's memory)."""
    return urlsplit(url).scheme.lower() in _REDIS_SCHEMES


@dataclass
class RedisClients:
    """One client per Redis URL, created on first use and closed together."""

    _clients: dict[str, redis.Redis] = field(default_factory=dict)

    def for_url(self, url: str) -> redis.Redis:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = connect(url)
        return client

    @property
    def count(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def create_report_cache(url: str, clients: RedisClients | None = None) -> ReportCache:
    """`memory://` for one replica; `redis://…` or `rediss://…` to share reports across replicas."""
    if _is_memory(url, "report cache"):
        return MemoryReportCache()
    if clients is None:
        return RedisReportCache.from_url(url)
    return RedisReportCache(clients.for_url(url))


def create_nonce_store(url: str, clients: RedisClients | None = None) -> NonceStore:
    """`memory://` for one replica; `redis://…` or `rediss://…` so a replay fails on all of them."""
    if _is_memory(url, "nonce store"):
        return MemoryNonceStore()
    if clients is None:
        return RedisNonceStore.from_url(url)
    return RedisNonceStore(clients.for_url(url))


def create_rate_limiter(url: str, clients: RedisClients | None = None) -> RateLimiter:
    """`memory://` for one replica; `redis://…` or `rediss://…` to share limits across replicas."""
    if _is_memory(url, "rate limiter"):
        return MemoryRateLimiter()
    if clients is None:
        return RedisRateLimiter.from_url(url)
    return RedisRateLimiter(clients.for_url(url))


def create_call_budget(
    url: str,
    clients: RedisClients,
    calls_per_minute: int,
    calls_per_minute_per_waba: int | None = None,
    *,
    app: str = "default",
) -> MetaBudget:
    """The Meta budget of one app (`app` names it in Redis) on the rate limiter's URL: this
    process's, or every replica's in Redis."""
    if _is_memory(url, "rate limiter"):
        return MemoryCallBudget(
            calls_per_minute, calls_per_minute_per_waba=calls_per_minute_per_waba
        )
    return RedisCallBudget(
        clients.for_url(url),
        calls_per_minute,
        calls_per_minute_per_waba=calls_per_minute_per_waba,
        app=app,
    )


def create_fetch_locks(url: str, clients: RedisClients) -> FetchLocks | None:
    """Fetch locks on the report cache's Redis (None with `memory://`: one replica)."""
    if _is_memory(url, "report cache"):
        return None
    return RedisFetchLocks(clients.for_url(url))


def create_shared_flight(
    url: str, clients: RedisClients, cache: ReportCache, call_timeout_seconds: float
) -> SharedFlight | None:
    """Coalescing across replicas through the report cache's Redis (None with `memory://`).

    A waiter gives up on a holder that neither answers nor lets go after one Graph call's
    timeout and a lease.
    """
    locks = create_fetch_locks(url, clients)
    if locks is None:
        return None
    return SharedFlight(
        locks,
        cache,
        lease_seconds=SHARED_LEASE_SECONDS,
        max_wait_seconds=call_timeout_seconds + SHARED_LEASE_SECONDS,
    )
