"""Ports a cache hit can use without awaiting: the in-process backends offer them.

An in-process cache, limiter or nonce store never does I/O, yet every `await` through
the layers of a request costs more than the lookup itself. A backend that can answer at
once also offers these synchronous twins; the hot path uses them when present and takes
the ordinary async path otherwise (Redis, or anything not answerable right away). Each
twin does exactly what its async method does, so both paths count and remember alike.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from wahealth.core.ports import CachedReport, Decision


@runtime_checkable
class ImmediateReportCache(Protocol):
    def get_now(self, node_id: str) -> CachedReport | None:
        """What `get` would return (None: no usable entry)."""
        ...


@runtime_checkable
class ImmediateRateLimiter(Protocol):
    def acquire_now(self, key: str, limit: int, cost: int = 1) -> Decision:
        """What `acquire` would decide, counted the same way."""
        ...


@runtime_checkable
class ImmediateNonceStore(Protocol):
    def claim_now(self, nonce: str, ttl_seconds: float) -> bool:
        """What `claim` would answer, remembered the same way."""
        ...


def immediate_cache(cache: object) -> ImmediateReportCache | None:
    return cache if isinstance(cache, ImmediateReportCache) else None


def immediate_limiter(limiter: object) -> ImmediateRateLimiter | None:
    return limiter if isinstance(limiter, ImmediateRateLimiter) else None


def immediate_nonces(store: object) -> ImmediateNonceStore | None:
    return store if isinstance(store, ImmediateNonceStore) else None
