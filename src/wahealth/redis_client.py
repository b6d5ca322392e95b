"""The Redis client of a process: one per URL, shared by the cache, the limiter and nonces."""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# Connect and read timeouts of every client: a report cache hit must stay cheap and a dead
# Redis must not hold requests, so half a second, then the port's `BackendUnavailable`.
SOCKET_TIMEOUT_SECONDS = 0.5


def connect(url: str, timeout_seconds: float = SOCKET_TIMEOUT_SECONDS) -> redis.Redis:
    """A client for `url` that gives up fast rather than hold a request on a dead Redis.

    Each attempt is bounded by `timeout_seconds`, with one immediate retry because a pooled
    connection may have gone stale (Redis restarted). Options in the URL's query string win.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), retries=1),
    )
