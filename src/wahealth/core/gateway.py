"""What every dialect needs to answer one health query: identity, the limit, the health core."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wahealth.cache.base import NonceStore
from wahealth.core.directory import Directory, Principal
from wahealth.core.errors import Throttled
from wahealth.core.health import HealthService
from wahealth.ratelimit.base import RateLimiter


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

    async def admit(self, principal: Principal) -> None:
        """Count one request against the principal's account; raise Throttled past its limit."""
        decision = await self.limiter.acquire(principal.account, principal.qps)
        if not decision.allowed:
            raise Throttled(decision.retry_after)
