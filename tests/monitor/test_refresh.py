"""The fleet refresh, end to end through the app, the emulator and SQLite.

Rounds are driven one `step` at a time on a fake clock, so minutes of budget
pass in no time; the emulator's own call counts are the measure.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.monitor._fleet import FakeClock, refresher_for

from wahealth.core.budget import MemoryCallBudget
from wahealth.domain.records import TransitionCause
from wahealth.monitor.planner import WINDOW_SECONDS
from wahealth.monitor.refresh import FleetRefresher
from wahealth.storage.health import HealthRepository
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import synthetic_phone_number_id, synthetic_waba_id

DEMO_NODES = {
    "102290129340398",
    "299399000000001",
    "106540352242922",
    "105154286024403",
    "106540352242999",
    "2632273056924580",
}
PHONE = "106540352242922"
BLOCKED_141006 = {
    "can_send_message": "BLOCKED",
    "errors": [
        {
            "error_code": 141006,
            "error_description": "There is an error with the payment method.",
            "possible_solution": "Add a new payment method to the account.",
        }
    ],
}


def _refresher(
    running: RunningApp, clock: FakeClock, *, budget: int, interval: float, round_seconds: float
) -> FleetRefresher:
    return refresher_for(
        running.components, clock, budget=budget, interval=interval, round_seconds=round_seconds
    )


async def _calls(running: RunningApp) -> dict[str, Any]:
    answer = await running.client.get("/_emulator/calls")
    assert answer.status_code == 200
    calls: dict[str, Any] = answer.json()
    return calls


def _max_in_any_window(deltas: list[tuple[float, int]]) -> int:
    worst = 0
    for end, _ in deltas:
        inside = sum(n for at, n in deltas if end - WINDOW_SECONDS < at <= end)
        worst = max(worst, inside)
    return worst


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[RunningApp]:
    # Changes made through the emulator are seen by refreshes here, not by its webhooks.
    settings = demo_settings(tmp_path, upstream={"emulator_webhooks": False})
    async with running_app(settings) as running:
        await running.client.delete("/_emulator/calls")  # forget the start-up catalog sync
        yield running


async def test_a_500_number_fleet_is_refreshed_within_the_call_budget(tmp_path: Path) -> None:
    scenario_file = tmp_path / "fleet.yaml"
    scenario_file.write_text(
        yaml.safe_dump(synthetic_scenario(500, wabas=2).model_dump(mode="json")), "utf-8"
    )
    wabas = [synthetic_waba_id(0), synthetic_waba_id(1)]
    settings = demo_settings(
        tmp_path,
        upstream={"scenario": str(scenario_file)},
        spaces=[{"id": "fleet-space", "account": DEMO.account, "wabas": wabas}],
        monitor={"enabled": False, "interval_seconds": 3600},
    )
    budget, round_seconds = 450, 7.0  # 53 nodes a round: the 60 s window binds, too
    async with running_app(settings) as running:
        await running.client.delete("/_emulator/calls")  # forget the start-up catalog sync
        clock = FakeClock()
        refresher = _refresher(
            running, clock, budget=budget, interval=3600, round_seconds=round_seconds
        )
        schedule = HealthRepository(running.components.sessions)
        deltas: list[tuple[float, int]] = []
        expected_batches = 0
        seen = 0
        for _ in range(100):
            wait = await refresher.step()
            total = (await _calls(running))["total"]
            if total > seen:
                deltas.append((clock.now, total - seen))
                expected_batches += math.ceil((total - seen) / 50)
                seen = total
            if not await schedule.due_nodes(datetime.fromtimestamp(clock.now, UTC), limit=1):
                break
            clock.now += wait
        calls = await _calls(running)

        # Every node exactly once, 50 per HTTP request, never more than the budget in 60 s.
        assert calls["total"] == 502
        assert sorted(calls["by_node"]) == sorted(
            [*wabas, *(synthetic_phone_number_id(j) for j in range(500))]
        )
        assert set(calls["by_node"].values()) == {1}
        assert calls["batches"] == expected_batches
        assert _max_in_any_window(deltas) <= budget
        assert deltas[0][1] <= 53
        assert _max_in_any_window(deltas) > budget - 53, "the budget is used, not wasted"
        assert clock.now - deltas[0][0] >= WINDOW_SECONDS  # 502 calls cannot fit in one minute

        # The refresh wrote the cache the gateway reads: a query costs no Meta call.
        answer = await running.client.get(
            f"/v21.0/{synthetic_phone_number_id(42)}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        assert answer.status_code == 200
        assert answer.json()["health_status"]["can_send_message"] == "AVAILABLE"
        assert (await _calls(running))["total"] == 502

        # History: one first-seen transition per node, all from the poll.
        stored = await schedule.of_space("fleet-space")
        assert len(stored) == 502
        assert all(node.payload is not None for node in stored)
        recent = await schedule.recent(limit=600)
        assert len(recent) == 502
        assert {t.cause for t in recent} == {TransitionCause.POLL}

        # Nothing is due any more: a further round spends nothing.
        await refresher.step()
        assert (await _calls(running))["total"] == 502


async def test_a_change_stores_one_transition_and_unchanged_nodes_none(
    demo: RunningApp,
) -> None:
    clock = FakeClock()
    refresher = _refresher(demo, clock, budget=600, interval=60, round_seconds=5)
    history = HealthRepository(demo.components.sessions)
    await refresher.step()
    first = await history.recent(limit=100)
    assert {t.node_id for t in first} == DEMO_NODES
    assert all(t.before is None for t in first)

    # Due again, unchanged: six calls, no transition.
    clock.now += 61
    await refresher.step()
    assert (await _calls(demo))["by_node"][PHONE] == 2
    assert len(await history.recent(limit=100)) == len(first)

    put = await demo.client.put(f"/_emulator/nodes/{PHONE}/health", json=BLOCKED_141006)
    assert put.status_code == 200
    clock.now += 61
    await refresher.step()
    [change] = [t for t in await history.recent(limit=100) if t.id > max(t.id for t in first)]
    assert (change.node_id, change.node_kind, change.space_id) == (
        PHONE,
        "PHONE_NUMBER",
        DEMO.space,
    )
    assert (change.before, change.after, change.error_codes, change.cause) == (
        "AVAILABLE",
        "BLOCKED",
        ("141006",),
        TransitionCause.POLL,
    )
    assert change.changes["entities"] == [
        {
            "entity_type": "PHONE_NUMBER",
            "id": PHONE,
            "before": {"can_send_message": "AVAILABLE", "error_codes": [], "additional_info": []},
            "after": {
                "can_send_message": "BLOCKED",
                "error_codes": ["141006"],
                "additional_info": [],
            },
        }
    ]
    # The gateway answers the new state from the cache the refresh wrote.
    answer = await demo.client.get(
        f"/v21.0/{PHONE}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )
    assert answer.json()["health_status"]["can_send_message"] == "BLOCKED"
    assert (await _calls(demo))["by_node"][PHONE] == 3


async def test_failed_nodes_keep_their_report_and_back_off(demo: RunningApp) -> None:
    clock = FakeClock()
    refresher = _refresher(demo, clock, budget=600, interval=60, round_seconds=5)
    history = HealthRepository(demo.components.sessions)
    await refresher.step()
    before = await history.get(PHONE)
    assert before is not None
    assert before.payload is not None

    # Meta fails every request (the client retries each batch request 3 times).
    fault = {"status": 500, "count": 6}
    assert (await demo.client.post("/_emulator/faults", json=fault)).status_code == 201
    put = await demo.client.put(f"/_emulator/nodes/{PHONE}/health", json=BLOCKED_141006)
    assert put.status_code == 200
    for failures in (1, 2):
        clock.now += 1000
        failed_at = clock.now
        await refresher.step()
        after = await history.get(PHONE)
        assert after is not None
        assert (after.payload, after.fetched_at) == (before.payload, before.fetched_at)
        assert after.next_due_at is not None
        assert after.next_due_at.timestamp() == pytest.approx(failed_at + 60 * 2 ** (failures - 1))
        # Not hammered: nothing is due until then.
        calls = (await _calls(demo))["total"]
        clock.now += 30
        await refresher.step()
        assert (await _calls(demo))["total"] == calls
    assert len(await history.recent(limit=100)) == len(DEMO_NODES)  # failures store nothing

    # Meta answers again: the change is recorded and the schedule is back to normal.
    clock.now += 1000
    await refresher.step()
    after = await history.get(PHONE)
    assert after is not None
    assert after.can_send_message == "BLOCKED"
    assert after.fetched_at is not None
    assert after.next_due_at is not None
    assert (after.next_due_at - after.fetched_at).total_seconds() == 60


async def test_a_meta_rate_limit_pauses_the_loop_for_retry_after(demo: RunningApp) -> None:
    clock = FakeClock()
    refresher = _refresher(demo, clock, budget=600, interval=60, round_seconds=5)
    fault = {"code": 4, "retry_after": 120, "count": 1}
    assert (await demo.client.post("/_emulator/faults", json=fault)).status_code == 201
    wait = await refresher.step()
    assert wait == 120
    assert refresher.paused_until == clock.now + 120
    history = HealthRepository(demo.components.sessions)
    assert await history.recent(limit=10) == []
    refused = (await _calls(demo))["total"]
    assert refused == 1  # the throttled batch request, answered as a whole

    clock.now += 100
    assert await refresher.step() == pytest.approx(20)
    assert (await _calls(demo))["total"] == refused

    clock.now += 21
    await refresher.step()
    assert (await _calls(demo))["total"] == refused + len(DEMO_NODES)
    assert {t.node_id for t in await history.recent(limit=10)} == DEMO_NODES


class _TickingClock(FakeClock):
    """Moves `tick` seconds each time it is read: a round takes a while."""

    def __init__(self, tick: float) -> None:
        super().__init__()
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


async def test_the_wait_after_a_round_runs_from_its_start(demo: RunningApp) -> None:
    history = HealthRepository(demo.components.sessions)
    # On a clock that stands still, a round is followed by the planned wait.
    still = _refresher(demo, FakeClock(), budget=600, interval=60, round_seconds=5)
    assert await still.step() == 5
    assert {t.node_id for t in await history.recent(limit=10)} == DEMO_NODES

    # A round that takes longer than the wait (here its clock moves 10 s at every reading)
    # is followed by the next at once, not after a further wait.
    ticking = _TickingClock(tick=10.0)
    slow = _refresher(demo, ticking, budget=600, interval=60, round_seconds=5)
    ticking.now += 61  # every node due again
    assert await slow.step() == 0
    assert (await _calls(demo))["by_node"][PHONE] == 2


async def test_a_one_off_refresh_waits_for_the_budget(demo: RunningApp) -> None:
    clock = FakeClock()
    start = clock.now
    refresher = _refresher(demo, clock, budget=4, interval=60, round_seconds=5)
    progress: list[int] = []
    summary = await refresher.refresh_all(sorted(DEMO_NODES), progress=progress.append)
    assert (summary.refreshed, summary.calls, summary.failed) == (6, 6, {})
    assert progress == [4, 2]
    assert clock.now - start == WINDOW_SECONDS  # until the first 4 calls left the window
    assert (await _calls(demo))["total"] == 6
    transitions = await HealthRepository(demo.components.sessions).recent(limit=10)
    assert {t.cause for t in transitions} == {TransitionCause.MANUAL}


async def _eventually(check: Any, what: str) -> Any:
    """Poll `check()` until it returns something truthy (bounded: a few seconds)."""
    for _ in range(200):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_monitor_loop_refreshes_the_fleet_and_stops_cleanly(tmp_path: Path) -> None:
    settings = demo_settings(
        tmp_path,
        monitor={"enabled": True, "interval_seconds": 0.2},
        upstream={"emulator_webhooks": False},
    )
    async with running_app(settings) as running:
        history = HealthRepository(running.components.sessions)
        [first] = await _eventually(lambda: history.history(PHONE), "the first poll")
        assert (first.before, first.after, first.cause) == (None, "AVAILABLE", "poll")
        put = await running.client.put(f"/_emulator/nodes/{PHONE}/health", json=BLOCKED_141006)
        assert put.status_code == 200

        async def blocked() -> list[Any]:
            found = await history.history(PHONE)
            return found if found[0].after == "BLOCKED" else []

        latest, previous = await _eventually(blocked, "the poll that sees the change")
        assert previous == first
        assert (latest.before, latest.after, latest.cause) == ("AVAILABLE", "BLOCKED", "poll")
        assert latest.error_codes == ("141006",)


async def test_a_one_off_refresh_waits_for_the_shared_budget_that_queries_spend(
    demo: RunningApp,
) -> None:
    clock = FakeClock()
    start = clock.now
    shared = MemoryCallBudget(4, clock=clock)
    assert shared.spend_now(2).calls == 2  # queries (or another replica) spent two
    refresher = FleetRefresher(
        upstream=demo.components.graph,
        sink=demo.components.health,
        schedule=HealthRepository(demo.components.sessions),
        calls_per_minute=600,  # this process's own plan would allow every node at once
        interval_seconds=60,
        clock=clock,
        sleep=clock.sleep,
        budget=shared,
    )
    summary = await refresher.refresh_all(sorted(DEMO_NODES))
    # Nothing failed or was given up on: the nodes beyond the budget waited for it.
    assert (summary.refreshed, summary.calls, summary.failed) == (6, 6, {})
    assert (await _calls(demo))["total"] == 6
    # 2 calls fit at once, 4 once the queries' two and then the first two left the window.
    assert clock.now - start >= WINDOW_SECONDS
