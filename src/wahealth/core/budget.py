"""The Meta call budget of one process: at most `calls_per_minute` calls in any 60 s.

Implements the core's `MetaBudget` port in memory, for a single process (the default);
`ratelimit.budget` keeps the same budget in Redis, shared by every replica. Spent by
every upstream call: queries, revalidations, webhook-triggered refreshes and the fleet
refresh. A query that finds it spent answers stale (`BudgetSpent`); the refresh waits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from wahealth.core.ports import BudgetGrant, UpstreamThrottled

# A call reaches Meta a moment after it is counted here: each is counted a second longer
# than Meta's minute, so no 60 s at Meta holds more than the limit either.
WINDOW_SECONDS = 61.0


class BudgetSpent(UpstreamThrottled):
    """Our own Meta call budget has no call left now: nothing was asked of Meta."""

    retry_after: float

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"the Meta call budget is spent; a call fits in {retry_after:.1f}s")
        self.retry_after = max(retry_after, 0.001)


def check_limits(calls_per_minute: int, calls_per_minute_per_waba: int | None) -> None:
    """Refuse a budget that allows no call (per app, or per WABA when it is set)."""
    if calls_per_minute < 1:
        raise ValueError("calls_per_minute must be at least 1")
    if calls_per_minute_per_waba is not None and calls_per_minute_per_waba < 1:
        raise ValueError("calls_per_minute_per_waba must be at least 1")


class _Window:
    """A sliding log of (moment, calls) within the last `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.spends: deque[tuple[float, int]] = deque()
        self.total = 0

    def prune(self, now: float) -> None:
        while self.spends and self.spends[0][0] <= now - self.window:
            self.total -= self.spends.popleft()[1]

    def frees_in(self, now: float, needed: int) -> float:
        """Seconds until `needed` more calls fit."""
        freed = self.limit - self.total
        for at, calls in self.spends:
            if freed >= needed:
                break
            freed += calls
            if freed >= needed:
                return max(0.0, at + self.window - now)
        return 0.0 if freed >= needed else self.window


class MemoryCallBudget:
    """The `MetaBudget` of one process, per app and (with `calls_per_minute_per_waba`) per WABA."""

    def __init__(
        self,
        calls_per_minute: int,
        *,
        calls_per_minute_per_waba: int | None = None,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_limits(calls_per_minute, calls_per_minute_per_waba)
        self._calls_per_minute = calls_per_minute
        self._per_waba = calls_per_minute_per_waba
        self._window_seconds = window_seconds
        self._clock = clock
        self._app = _Window(calls_per_minute, window_seconds)
        self._wabas: dict[str, _Window] = {}

    @property
    def calls_per_minute(self) -> int:
        return self._calls_per_minute

    async def spend(
        self, calls: int, *, waba_id: str | None = None, partial: bool = False
    ) -> BudgetGrant:
        """Spend `calls` now (with `partial`, as many as fit), or none."""
        return self.spend_now(calls, waba_id=waba_id, partial=partial)

    def spend_now(
        self, calls: int, *, waba_id: str | None = None, partial: bool = False
    ) -> BudgetGrant:
        """`spend`, synchronously."""
        if calls < 0:
            raise ValueError(f"cannot spend {calls} calls")
        now = self._clock()
        windows = [self._app]
        if waba_id is not None and self._per_waba is not None:
            waba = self._wabas.get(waba_id)
            if waba is None:
                waba = self._wabas[waba_id] = _Window(self._per_waba, self._window_seconds)
            windows.append(waba)
        for window in windows:
            window.prune(now)
        self._forget_idle(now)
        tightest = min(windows, key=lambda w: w.limit - w.total)
        room = max(0, tightest.limit - tightest.total)
        granted = calls if calls <= room else (room if partial else 0)
        if granted:
            for window in windows:
                window.spends.append((now, granted))
                window.total += granted
        # Until the whole of a refused spend fits; else until one more call does.
        needed = calls if granted == 0 and not partial and calls > 0 else 1
        return BudgetGrant(granted, tightest.frees_in(now, needed))

    async def spent(self) -> int:
        """Calls counted in the 60 s ending now."""
        self._app.prune(self._clock())
        return self._app.total

    async def aclose(self) -> None:
        """Nothing to close."""

    def _forget_idle(self, now: float) -> None:
        if len(self._wabas) > 10_000:
            for waba_id, window in list(self._wabas.items()):
                window.prune(now)
                if not window.spends:
                    del self._wabas[waba_id]
