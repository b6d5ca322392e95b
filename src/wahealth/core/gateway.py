"""What every dialect needs to answer one health query: identity, the limit, the health core."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from wahealth.cache.base import BackendUnavailable as NonceStoreUnavailable
from wahealth.cache.base import NonceStore
from wahealth.core.directory import Directory, Principal
from wahealth.core.errors import ServiceUnavailable, Throttled
from wahealth.core.health import HealthService
from wahealth.ratelimit.base import BackendUnavailable as LimiterUnavailable
from wahealth.ratelimit.base import RateLimiter

log = structlog.get_logger(__name__)

# What a client is told to wait when a backend is down: long enough not to hammer us, short
# enough that callers notice the recovery of a restarted Redis within a second or two.
BACKEND_RETRY_AFTER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class FailClosedNonces:
    """A nonce store whose outage refuses the request (`ServiceUnavailable`).

    Signature checks claim nonces through this, so an unreachable store answers the
    dialect's own "try again" error instead of an internal error, and never admits a
    request whose nonce could not be recorded.
    """

    store: NonceStore

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        """True the first time a nonce is seen within its ttl, False after."""
        try:
            return await self.store.claim(nonce, ttl_seconds)
        except NonceStoreUnavailable as exc:
            log.warning("nonce store unavailable; refusing the request", error=str(exc))
            raise ServiceUnavailable(
                "the replay check is temporarily unavailable",
                retry_after=BACKEND_RETRY_AFTER_SECONDS,
            ) from exc

    async def aclose(self) -> None:
        await self.store.aclose()


@dataclass(slots=True)
class Gateway:
    """The shared services behind the three dialects."""

    directory: Directory
    health: HealthService
    limiter: RateLimiter
    nonces: NonceStore
    signature_max_skew_seconds: int = 900
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    # What signature checks claim nonces through: `nonces`, failing closed.
    replay_guard: NonceStore = field(init=False)

    def __post_init__(self) -> None:
        self.replay_guard = FailClosedNonces(self.nonces)

    async def admit(self, principal: Principal) -> None:
        """Count one request against the principal's account; raise Throttled past its limit.

        Raises ServiceUnavailable when the limiter cannot be asked: an unlimited gateway
        would spend the shared Meta budget, so it fails closed.
        """
        try:
            decision = await self.limiter.acquire(principal.account, principal.qps)
        except LimiterUnavailable as exc:
            log.warning(
                "rate limiter unavailable; refusing the request",
                account=principal.account,
                error=str(exc),
            )
            raise ServiceUnavailable(
                "the rate limiter is temporarily unavailable",
                retry_after=BACKEND_RETRY_AFTER_SECONDS,
            ) from exc
        if not decision.allowed:
            raise Throttled(decision.retry_after)
