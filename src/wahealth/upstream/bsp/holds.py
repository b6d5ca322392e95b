"""Per-credential holds: after a BSP says "not now" (with a wait), nobody asks it before then."""

from __future__ import annotations

import time
from collections.abc import Callable

from wahealth.core.ports import UpstreamThrottled

# A BSP's wait longer than this is not believed: ask again after it.
MAX_HOLD_SECONDS = 300.0


class BspThrottled(UpstreamThrottled):
    """A BSP throttled us (or is holding us off): back off for `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Holds:
    """When each credential may be used again (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def check(self, key: str, what: str) -> None:
        """Raise `BspThrottled` while `key` is held."""
        until = self._until.get(key)
        if until is None:
            return
        left = until - self._clock()
        if left <= 0:
            del self._until[key]
            return
        raise BspThrottled(f"{what} asked us to wait; {left:.1f} s left", retry_after=left)

    def hold(self, key: str, seconds: float | None) -> None:
        if seconds is None or seconds <= 0:
            return
        until = self._clock() + min(seconds, MAX_HOLD_SECONDS)
        self._until[key] = max(until, self._until.get(key, 0.0))
