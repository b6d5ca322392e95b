"""Per-node back-off and upstream-wide pauses, shared by queries and the fleet refresh.

After an upstream failure for a node, nobody calls upstream for that node until its
back-off ends (exponential with jitter, capped); queries get the last known report,
marked stale, or "try again in N seconds". When the upstream throttles the whole app
(Meta's 4/80007 family), every call pauses for as long as Meta asked. So with Meta
failing, one node costs at most one upstream call per back-off period, whatever the
query rate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wahealth.core.lru import BoundedLru
from wahealth.core.ports import UpstreamFailure, UpstreamThrottled

# How long a throttle pauses calls when the upstream gave no estimate: Meta's
# "wait a minute" for its rate limits.
DEFAULT_THROTTLE_PAUSE_SECONDS = 60.0


@dataclass
class Backoff:
    """When each node (and the upstream as a whole) may be called again."""

    base_seconds: float = 1.0
    max_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random
    _nodes: BoundedLru[str, tuple[float, int]] = field(
        default_factory=lambda: BoundedLru(100_000, 32 * 1024 * 1024)
    )
    _wabas: BoundedLru[str, float] = field(
        default_factory=lambda: BoundedLru(100_000, 16 * 1024 * 1024)
    )
    _paused_until: float = 0.0

    def wait(self, node_id: str, waba_id: str | None = None) -> float:
        """Seconds until `node_id` (of `waba_id`, when known) may be called upstream; 0: now."""
        now = self.clock()
        wait = self._paused_until - now
        entry = self._nodes.get(node_id)
        if entry is not None:
            wait = max(wait, entry[0] - now)
        if waba_id is not None:
            waba_until = self._wabas.get(waba_id)
            if waba_until is not None:
                wait = max(wait, waba_until - now)
        return max(0.0, wait)

    def failed(self, node_id: str, exc: UpstreamFailure, waba_id: str | None = None) -> float:
        """Record a failure; returns the seconds until the next call for the node.

        A WABA's throttle (Meta's 80007 family) pauses every node of `waba_id`; an app's
        throttle pauses every call.
        """
        now = self.clock()
        entry = self._nodes.get(node_id)
        failures = 1 if entry is None else entry[1] + 1
        delay = min(self.max_seconds, self.base_seconds * 2 ** (failures - 1))
        delay = delay / 2 + delay / 2 * float(self.jitter())  # "equal jitter": never zero
        if isinstance(exc, UpstreamThrottled):
            pause = exc.retry_after or DEFAULT_THROTTLE_PAUSE_SECONDS
            delay = max(delay, pause)
            if not exc.per_waba:
                self._paused_until = max(self._paused_until, now + pause)
            elif waba_id is not None:
                self._wabas.put(waba_id, now + pause, len(waba_id))
        elif exc.retry_after:
            delay = max(delay, exc.retry_after)
        self._nodes.put(node_id, (now + delay, failures), len(node_id))
        return float(delay)

    def succeeded(self, node_id: str) -> None:
        self._nodes.pop(node_id)

    def pause(self, seconds: float) -> None:
        """Pause every upstream call for `seconds` (an app-wide throttle seen elsewhere)."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    @property
    def paused_for(self) -> float:
        """Seconds left of an upstream-wide pause; 0 when none."""
        return max(0.0, self._paused_until - self.clock())
