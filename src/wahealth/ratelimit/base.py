"""The rate limiter port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BackendUnavailable(Exception):
    """The limiter's backend (e.g. Redis) did not answer; whether to admit is unknown.

    Callers decide what an unknown answer means; the gateway refuses the request rather
    than run unlimited and spend the upstream budget.
    """


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request is admitted; if not, how long until one would be (seconds)."""

    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    """Admits at most `limit` requests per key in any sliding one-second window."""

    async def acquire(self, key: str, limit: int) -> Decision:
        """Admit and count one request for `key`, or deny it; `BackendUnavailable` if unknown."""
        ...

    async def aclose(self) -> None: ...
