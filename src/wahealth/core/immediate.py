"""Ports a cache hit can use without awaiting: the in-process backends offer them.

An in-process cache, limiter or nonce store never does I/O, yet every `await` through
the layers of a request costs more than the lookup itself. A backend that can answer at
once also offers these synchronous twins; the hot path uses them when present and takes
the ordinary async path otherwise (Redis, or anything not answerable right away). Each
twin does exactly what its async method does, so both paths count and remember alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast, runtime_checkable

from wahealth.core.ports import CachedReport, Decision, RateLimiter


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


class ObservedLimiter:
    """A RateLimiter telling `asked(key)` before, and `decided(decision)` after, each decision.

    What metrics and the access log wrap the limiter in; `observed_limiter` keeps the
    wrapped limiter's synchronous twin, so observing never costs the hot path its lane.
    """

    def __init__(
        self,
        inner: RateLimiter,
        *,
        asked: Callable[[str], None] | None = None,
        decided: Callable[[Decision], None] | None = None,
    ) -> None:
        self._inner = inner
        self._asked = asked
        self._decided = decided

    async def acquire(self, key: str, limit: int, cost: int = 1) -> Decision:
        if self._asked is not None:
            self._asked(key)
        decision = await self._inner.acquire(key, limit, cost)
        if self._decided is not None:
            self._decided(decision)
        return decision

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ObservedImmediateLimiter(ObservedLimiter):
    def __init__(
        self,
        inner: ImmediateRateLimiter,
        *,
        asked: Callable[[str], None] | None = None,
        decided: Callable[[Decision], None] | None = None,
    ) -> None:
        super().__init__(cast(RateLimiter, inner), asked=asked, decided=decided)
        self._now = inner.acquire_now

    def acquire_now(self, key: str, limit: int, cost: int = 1) -> Decision:
        if self._asked is not None:
            self._asked(key)
        decision = self._now(key, limit, cost)
        if self._decided is not None:
            self._decided(decision)
        return decision


def observed_limiter(
    inner: RateLimiter,
    *,
    asked: Callable[[str], None] | None = None,
    decided: Callable[[Decision], None] | None = None,
) -> ObservedLimiter:
    """`inner` observed as `ObservedLimiter` says, deciding at once when `inner` does."""
    immediate = immediate_limiter(inner)
    if immediate is not None:
        return _ObservedImmediateLimiter(immediate, asked=asked, decided=decided)
    return ObservedLimiter(inner, asked=asked, decided=decided)
