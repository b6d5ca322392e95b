"""A fleet refresher over a running app's own parts, on a clock the test moves."""

from __future__ import annotations

import time

from wahealth.components import Components
from wahealth.monitor.refresh import FleetRefresher, Schedule
from wahealth.storage.health import HealthRepository


class FakeClock:
    """Epoch seconds that move only when told (starting at the real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def refresher_for(
    components: Components,
    clock: FakeClock,
    *,
    budget: int = 600,
    interval: float = 60.0,
    round_seconds: float = 5.0,
    schedule: Schedule | None = None,
) -> FleetRefresher:
    """The refresher the app's monitor would run, with this budget, interval and clock (and
    the SQLite schedule unless given another)."""
    return FleetRefresher(
        upstream=components.graph,
        sink=components.health,
        schedule=schedule or HealthRepository(components.sessions),
        calls_per_minute=budget,
        interval_seconds=interval,
        round_seconds=round_seconds,
        clock=clock,
        sleep=clock.sleep,
    )
