"""The emulator's model of Meta's call budgets: fixed windows, counted per scope.

Meta's real accounting (rolling windows, CPU time, business use cases) is not
public in detail; this model is simple enough to reason about in tests:

- the app budget (`app_calls_per_window`) counts every admitted Graph call;
- each WABA's budget (`calls_per_window`) counts admitted calls on that WABA,
  its phone numbers and its templates;
- a window opens at the first call in a scope and lasts `window_seconds`;
- a refused call is not counted (it was never served).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from wahealth.upstream.emulator.scenario import RateLimitSpec

_APP_SCOPE = "\x00app"


@dataclass(frozen=True, slots=True)
class Throttle:
    """Why a call was refused: the app's (code 4) or a WABA's (code 80007) budget is spent."""

    scope: Literal["app", "waba"]
    regain_seconds: float

    @property
    def code(self) -> int:
        return 4 if self.scope == "app" else 80007

    @property
    def regain_minutes(self) -> int:
        """Meta's `estimated_time_to_regain_access` is in whole minutes."""
        return max(1, math.ceil(self.regain_seconds / 60))


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 0


class CallBudget:
    """Admits or refuses Graph calls according to a `RateLimitSpec`."""

    def __init__(self, spec: RateLimitSpec, clock: Callable[[], float]) -> None:
        self.spec = spec
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(self, waba_id: str | None) -> Throttle | None:
        """Count one call against the app and (if any) its WABA, or say why it is refused."""
        now = self._clock()
        app_window = self._window(_APP_SCOPE, now)
        app_limit = self.spec.app_calls_per_window
        if app_limit is not None and app_window.count >= app_limit:
            return Throttle("app", self._remaining(app_window, now))
        waba_window = self._window(waba_id, now) if waba_id is not None else None
        waba_limit = self.spec.calls_per_window
        if waba_window is not None and waba_limit is not None and waba_window.count >= waba_limit:
            return Throttle("waba", self._remaining(waba_window, now))
        app_window.count += 1
        if waba_window is not None:
            waba_window.count += 1
        return None

    def app_usage_percent(self) -> int | None:
        """How much of the app budget is used, in percent, or None when unlimited."""
        return self._percent(_APP_SCOPE, self.spec.app_calls_per_window)

    def waba_usage_percent(self, waba_id: str) -> int | None:
        """How much of a WABA's budget is used, in percent, or None when unlimited."""
        return self._percent(waba_id, self.spec.calls_per_window)

    def reset(self) -> None:
        self._windows.clear()

    def _percent(self, scope: str, limit: int | None) -> int | None:
        if limit is None:
            return None
        window = self._windows.get(scope)
        count = self._window(scope, self._clock()).count if window is not None else 0
        return min(100, count * 100 // limit)

    def _window(self, scope: str, now: float) -> _Window:
        window = self._windows.get(scope)
        if window is None or now - window.started >= self.spec.window_seconds:
            window = _Window(started=now)
            self._windows[scope] = window
        return window

    def _remaining(self, window: _Window, now: float) -> float:
        return max(0.0, window.started + self.spec.window_seconds - now)
