"""The fleet-refresh planner: the budget holds in every 60 s, oldest first, nobody starves."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from wahealth.monitor.planner import (
    WINDOW_SECONDS,
    Candidate,
    Spend,
    budget_frees_in,
    calls_in_window,
    oldest_due,
    plan_round,
    retry_delay,
    round_quota,
)

node_ids = st.text(alphabet="0123456789", min_size=1, max_size=6)
candidates = st.lists(
    st.builds(
        Candidate,
        node_ids,
        st.one_of(st.none(), st.floats(min_value=-500, max_value=500, allow_nan=False)),
    ),
    max_size=80,
    unique_by=lambda c: c.node_id,
)


def _max_in_any_window(spends: list[Spend]) -> int:
    """The most calls inside any half-open 60 s window (checking windows ending at each spend)."""
    ordered = sorted(spends, key=lambda spend: spend.at)
    worst, start, inside = 0, 0, 0
    for end in ordered:
        inside += end.calls
        while ordered[start].at <= end.at - WINDOW_SECONDS:
            inside -= ordered[start].calls
            start += 1
        worst = max(worst, inside)
    return worst


@settings(max_examples=100, deadline=None)
@given(
    budget=st.integers(min_value=1, max_value=300),
    round_seconds=st.floats(min_value=0.1, max_value=30),
    gaps=st.lists(st.floats(min_value=0, max_value=40, allow_nan=False), min_size=1, max_size=60),
    durations=st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=60),
    due_now=st.integers(min_value=0, max_value=400),
)
def test_never_more_calls_than_the_budget_in_any_60_seconds(
    budget: int,
    round_seconds: float,
    gaps: list[float],
    durations: list[float],
    due_now: int,
) -> None:
    # Rounds at arbitrary moments, each taking an arbitrary time; there is always work.
    fleet = [Candidate(f"n{i}", None) for i in range(due_now + budget)]
    ledger: list[Spend] = []
    now = 0.0
    for gap, duration in zip(gaps, durations, strict=False):
        now += gap
        plan = plan_round(
            fleet, now=now, ledger=ledger, calls_per_minute=budget, round_seconds=round_seconds
        )
        assert len(plan.node_ids) <= round_quota(budget, round_seconds)
        now += duration  # the calls may reach Meta until the round ends
        if plan.node_ids:
            ledger.append(Spend(now, len(plan.node_ids)))
        assert plan.wait_seconds >= 0
    assert _max_in_any_window(ledger) <= budget


@settings(max_examples=100, deadline=None)
@given(
    fleet=candidates,
    now=st.floats(min_value=-100, max_value=100, allow_nan=False),
    spent=st.integers(min_value=0, max_value=100),
    budget=st.integers(min_value=1, max_value=100),
)
def test_the_oldest_due_nodes_go_first(
    fleet: list[Candidate], now: float, spent: int, budget: int
) -> None:
    ledger = [Spend(now - 1, spent)] if spent else []
    plan = plan_round(fleet, now=now, ledger=ledger, calls_per_minute=budget, round_seconds=60)
    chosen = set(plan.node_ids)
    due = [c for c in fleet if c.due_at is None or c.due_at <= now]
    assert chosen <= {c.node_id for c in due}, "only due nodes are fetched"
    assert len(chosen) == min(len(due), max(0, budget - spent))
    for picked in (c for c in due if c.node_id in chosen):
        for left in (c for c in due if c.node_id not in chosen):
            # Nothing left behind is older than something picked (never checked = oldest).
            if picked.due_at is None:
                continue
            assert left.due_at is not None
            assert left.due_at >= picked.due_at


def test_oldest_due_orders_never_checked_then_by_due_time_then_id() -> None:
    fleet = [
        Candidate("c", 5.0),
        Candidate("b", None),
        Candidate("a", 1.0),
        Candidate("z", 50.0),  # not due yet
        Candidate("d", 1.0),
        Candidate("a0", None),
    ]
    assert [c.node_id for c in oldest_due(fleet, now=10.0)] == ["a0", "b", "a", "d", "c"]


@settings(max_examples=30, deadline=None)
@given(
    nodes=st.integers(min_value=1, max_value=300),
    interval=st.floats(min_value=30, max_value=900),
    round_seconds=st.floats(min_value=1, max_value=10),
    headroom=st.floats(min_value=1.0, max_value=4.0),
)
def test_every_node_is_refreshed_and_none_starves_when_the_budget_allows(
    nodes: int, interval: float, round_seconds: float, headroom: float
) -> None:
    # The budget allows a full pass per interval (with some headroom).
    budget = max(1, math.ceil(nodes * WINDOW_SECONDS / interval * headroom))
    due_at: dict[str, float | None] = {f"n{i}": None for i in range(nodes)}
    became_due: dict[str, float] = dict.fromkeys(due_at, 0.0)
    refreshed: dict[str, int] = dict.fromkeys(due_at, 0)
    ledger: list[Spend] = []
    worst_wait = 0.0
    now = 0.0
    horizon = 3 * interval + 3 * WINDOW_SECONDS
    while now < horizon:
        fleet = [Candidate(n, d) for n, d in due_at.items()]
        plan = plan_round(
            fleet, now=now, ledger=ledger, calls_per_minute=budget, round_seconds=round_seconds
        )
        if plan.node_ids:
            ledger.append(Spend(now, len(plan.node_ids)))
        for node_id in plan.node_ids:
            worst_wait = max(worst_wait, now - became_due[node_id])
            refreshed[node_id] += 1
            due_at[node_id] = now + interval
            became_due[node_id] = now + interval
        now += plan.wait_seconds
    assert min(refreshed.values()) >= 2, "every node is refreshed, and again"
    # A node waits at most one pass over the fleet at the budget's pace (plus a round).
    assert worst_wait <= interval / headroom + WINDOW_SECONDS + 2 * round_seconds
    assert _max_in_any_window(ledger) <= budget


def test_a_spent_budget_waits_until_the_oldest_calls_leave_the_window() -> None:
    ledger = [Spend(100.0, 30), Spend(110.0, 30)]
    assert calls_in_window(ledger, 120.0) == 60
    assert budget_frees_in(ledger, 120.0, 60) == 40.0  # at 160 the first 30 leave
    assert budget_frees_in(ledger, 120.0, 60, wanted=31) == 50.0
    assert budget_frees_in(ledger, 120.0, 61) == 0.0
    plan = plan_round(
        [Candidate("a", None)], now=120.0, ledger=ledger, calls_per_minute=60, round_seconds=5
    )
    assert plan == plan_round(
        [Candidate("a", None)], now=120.0, ledger=ledger, calls_per_minute=60, round_seconds=5
    )
    assert plan.node_ids == ()
    assert plan.wait_seconds == 40.0


def test_rounds_spread_the_budget_over_the_minute() -> None:
    assert round_quota(600, 5) == 50  # one Graph batch every 5 s
    assert round_quota(10, 5) == 1
    fleet = [Candidate(f"n{i:03d}", None) for i in range(200)]
    plan = plan_round(fleet, now=0.0, ledger=[], calls_per_minute=600, round_seconds=5)
    assert plan.node_ids == tuple(f"n{i:03d}" for i in range(50))
    assert plan.wait_seconds == 5


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 60) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(50, 60) == 3600
    assert retry_delay(3, 7200) == 7200  # an interval longer than the cap is the cap
