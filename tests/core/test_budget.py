"""The in-process Meta budget: at most the limit in any window, counted per call."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wahealth.core.budget import WINDOW_SECONDS, MemoryCallBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_batch_is_all_or_none_or_partial_and_frees_a_window_later() -> None:
    clock = Clock()
    budget = MemoryCallBudget(10, clock=clock)
    assert budget.spend_now(7).calls == 7
    refused = budget.spend_now(5)
    assert refused.calls == 0
    assert refused.retry_after == WINDOW_SECONDS
    partial = budget.spend_now(5, partial=True)
    assert partial.calls == 3
    assert partial.retry_after == WINDOW_SECONDS
    clock.now += WINDOW_SECONDS - 0.001
    assert budget.spend_now(1).calls == 0
    clock.now += 0.001
    assert budget.spend_now(10).calls == 10


def test_a_wabas_limit_binds_before_the_apps() -> None:
    budget = MemoryCallBudget(10, calls_per_minute_per_waba=3, clock=Clock())
    assert budget.spend_now(3, waba_id="1").calls == 3
    assert budget.spend_now(1, waba_id="1").calls == 0
    assert budget.spend_now(7, waba_id="2", partial=True).calls == 3
    assert budget.spend_now(5, partial=True).calls == 4  # the app has 10 - 6 left


@given(st.lists(st.tuples(st.floats(0, 30), st.integers(0, 8), st.booleans()), max_size=60))
def test_no_window_ever_holds_more_than_the_limit(
    spends: list[tuple[float, int, bool]],
) -> None:
    clock = Clock()
    budget = MemoryCallBudget(20, clock=clock)
    granted: list[tuple[float, int]] = []
    for step, calls, partial in spends:
        clock.now += step
        grant = budget.spend_now(calls, partial=partial)
        assert 0 <= grant.calls <= calls
        granted.append((clock.now, grant.calls))
    for start, _ in granted:
        inside = sum(n for at, n in granted if start <= at < start + WINDOW_SECONDS)
        assert inside <= 20
