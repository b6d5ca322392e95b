"""The rate limiter port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request is admitted; if not, how long until one would be (seconds)."""

    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    """Admits at most `limit` requests per key in any sliding one-second window."""

    async def acquire(self, key: str, limit: int) -> Decision: ...

    async def aclose(self) -> None: ...
