"""In-process sliding-log rate limiter, for a single replica."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from wahealth.core.ports import Decision

WINDOW_SECONDS = 1.0

_ADMITTED = Decision(allowed=True)

# Idle keys dropped per call. Each call creates at most one key, so dropping up to a few
# keeps the map bounded by the keys active in the last window without ever scanning it all.
_EVICTIONS_PER_CALL = 4


class MemoryRateLimiter:
    """Admits at most `limit` requests per key in any sliding one-second window.

    A sliding log: each key keeps the timestamps of its admitted requests inside the current
    window. A fixed window would admit twice the limit across a boundary; this does not.
    `acquire` never awaits, so concurrent tasks on one event loop cannot interleave inside it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Ordered by most recent admission, oldest first, so idle keys sit at the front.
        self._logs: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def tracked_keys(self) -> int:
        """How many keys currently hold state (for metrics and memory accounting)."""
        return len(self._logs)

    async def acquire(self, key: str, limit: int, cost: int = 1) -> Decision:
        """Admit and count `cost` requests for `key`, or deny them all without counting any.

        A cost above the limit counts as the limit: a bulk call is never inadmissible.
        """
        return self.acquire_now(key, limit, cost)

    def acquire_now(self, key: str, limit: int, cost: int = 1) -> Decision:
        """`acquire`, answered without awaiting (it never does I/O).

        A cost above the limit counts as the limit: a bulk call is never inadmissible.
        """
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per second, got {limit}")
        if cost < 1:
            raise ValueError(f"a request costs at least 1, got {cost}")
        cost = min(cost, limit)
        now = self._clock()
        self._drop_idle_keys(now)
        log = self._logs.get(key)
        if log is None:
            self._logs[key] = deque((now,) * cost)
            return _ADMITTED
        # `now - t >= window` is the one comparison used everywhere, so float rounding
        # cannot make the admission check and the eviction disagree.
        while log and now - log[0] >= WINDOW_SECONDS:
            log.popleft()
        if len(log) + cost <= limit:
            if cost == 1:
                log.append(now)
            else:
                log.extend((now,) * cost)
            self._logs.move_to_end(key)
            return _ADMITTED
        # The request that must leave the window before `cost` more fit. It is the oldest one
        # for a cost of 1, unless the limit was lowered while the log was fuller than it.
        blocking = log[len(log) + cost - limit - 1]
        return Decision(allowed=False, retry_after=WINDOW_SECONDS - (now - blocking))

    def _drop_idle_keys(self, now: float) -> None:
        logs = self._logs
        for _ in range(_EVICTIONS_PER_CALL):
            if not logs:
                return
            key = next(iter(logs))
            log = logs[key]
            if log and now - log[-1] < WINDOW_SECONDS:
                return
            del logs[key]

    async def aclose(self) -> None:
        """Forget all state; nothing else to release."""
        self._logs.clear()
