"""The Meta call budget of this process: `calls_per_minute`, as a token bucket.

Spent by every upstream call made on our own initiative (webhook-triggered refreshes,
the fleet refresh); a spender that finds it empty leaves the work to a later poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CallBudget:
    """At most `calls_per_minute` calls per minute, with bursts of up to a minute's worth."""

    def __init__(self, calls_per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1")
        self.calls_per_minute = calls_per_minute
        self._clock = clock
        self._tokens = float(calls_per_minute)
        self._at = clock()

    @property
    def available(self) -> float:
        """Calls that could be made now."""
        self._refill()
        return self._tokens

    def try_spend(self, calls: int) -> bool:
        """Spend `calls` if that many are available now; False (nothing spent) otherwise."""
        self._refill()
        if self._tokens < calls:
            return False
        self._tokens -= calls
        return True

    def _refill(self) -> None:
        now = self._clock()
        rate = self.calls_per_minute / 60.0
        self._tokens = min(float(self.calls_per_minute), self._tokens + (now - self._at) * rate)
        self._at = now
