"""The fleet refresh at scale: chunked rounds, a throttle mid-round, and a budget too small."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from tests.monitor._fleet import FakeClock, refresher_for

from wahealth.monitor import refresh
from wahealth.monitor.planner import BudgetShortfall, budget_shortfall, required_calls_per_minute
from wahealth.monitor.refresh import FETCH_CHUNK_NODES, FleetRefresher
from wahealth.storage.health import HealthRepository
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.scenario import RateLimitSpec
from wahealth.upstream.emulator.synthetic import synthetic_waba_id

from .test_refresh import DEMO_NODES, _calls


def _refresher(
    running: RunningApp, clock: FakeClock, *, budget: int, interval: float
) -> FleetRefresher:
    return refresher_for(running.components, clock, budget=budget, interval=interval)


def test_required_calls_per_minute_rounds_up() -> None:
    assert required_calls_per_minute(0, 60) == 0
    assert required_calls_per_minute(100_200, 60) == 100_200
    assert required_calls_per_minute(100_200, 3600) == 1670  # 1,670 calls/min = 100,200 an hour
    assert required_calls_per_minute(7, 120) == 4


def test_budget_shortfall_only_when_the_interval_cannot_be_met() -> None:
    assert budget_shortfall(600, 60, 600) is None
    gap = budget_shortfall(100_200, 60, 600)
    assert gap == BudgetShortfall(100_200, 60, 100_200, 600)
    assert gap is not None
    assert gap.pass_seconds == pytest.approx(10_020)


async def test_a_small_budget_is_reported_once_at_start(tmp_path: Path) -> None:
    # Six demo nodes every 60 s need 6 calls a minute; 5 are configured.
    settings = demo_settings(tmp_path, monitor={"enabled": False, "interval_seconds": 60})
    async with running_app(settings) as running:
        refresher = _refresher(running, FakeClock(), budget=5, interval=60)
        assert refresher.budget_shortfall is None  # not counted yet
        stop = asyncio.Event()
        stop.set()  # run() checks the budget, then sees the stop at once
        with structlog.testing.capture_logs() as logs:
            await refresher.run(stop)
        warnings = [entry for entry in logs if entry["log_level"] == "warning"]
        assert warnings == [
            {
                "event": "the Meta call budget cannot refresh every node once per interval",
                "log_level": "warning",
                "nodes": len(DEMO_NODES),
                "interval_seconds": 60,
                "required_calls_per_minute": 6,
                "configured_calls_per_minute": 5,
                "pass_seconds": 72,
            }
        ]
        assert refresher.budget_shortfall == BudgetShortfall(len(DEMO_NODES), 60, 6, 5)

        enough = _refresher(running, FakeClock(), budget=6, interval=60)
        assert await enough.check_budget() is None
        assert enough.budget_shortfall is None


def _fleet_settings(
    tmp_path: Path, numbers: int, wabas: int, rate_limit: RateLimitSpec | None = None
) -> Any:
    scenario_file = tmp_path / "fleet.yaml"
    scenario = synthetic_scenario(numbers, wabas=wabas, rate_limit=rate_limit)
    scenario_file.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), "utf-8")
    ids = [synthetic_waba_id(i) for i in range(wabas)]
    return demo_settings(
        tmp_path,
        upstream={"scenario": str(scenario_file)},
        spaces=[{"id": "fleet-space", "account": DEMO.account, "wabas": ids}],
        monitor={"enabled": False, "interval_seconds": 3600},
    )


async def test_a_round_bigger_than_a_chunk_and_a_page_stores_every_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Due nodes handed out in 3 pages of 310: a chunk per page would end short of 50 twice.
    monkeypatch.setattr(refresh, "STEP_PAGE_NODES", 310)
    numbers, wabas = 3 * FETCH_CHUNK_NODES + 17, 3
    async with running_app(_fleet_settings(tmp_path, numbers, wabas)) as running:
        assert (await running.client.delete("/_emulator/calls")).status_code == 200
        refresher = _refresher(running, FakeClock(), budget=1_000_000, interval=3600)
        await refresher.step()  # one round: quota 83,334 nodes
        calls = await _calls(running)
        nodes = numbers + wabas
        assert calls["total"] == nodes
        # Chunks span pages: every chunk is full but the last, so no batch request is short
        # but the round's last one.
        assert calls["batches"] == -(-nodes // 50)
        assert await refresher.step() == 5  # nothing left: no call, the normal round wait
        assert (await _calls(running))["total"] == nodes
        schedule = HealthRepository(running.components.sessions)
        assert await schedule.count_nodes() == nodes
        stored = await schedule.of_space("fleet-space")
        assert len(stored) == nodes
        assert all(row.payload is not None for row in stored)


async def test_an_app_throttle_mid_round_sends_no_further_chunk(tmp_path: Path) -> None:
    # Meta answers code 4 once the app spent 300 calls: chunks after that are not sent.
    limit = RateLimitSpec(app_calls_per_window=300, window_seconds=3600)
    numbers, wabas = 6 * FETCH_CHUNK_NODES, 2
    async with running_app(_fleet_settings(tmp_path, numbers, wabas, limit)) as running:
        assert (await running.client.delete("/_emulator/calls")).status_code == 200
        clock = FakeClock()
        refresher = _refresher(running, clock, budget=1_000_000, interval=3600)
        wait = await refresher.step()
        assert wait > 0
        assert refresher.paused_until > clock.now
        stored = await HealthRepository(running.components.sessions).of_space("fleet-space")
        # The start-up catalog sync spent some of the 300 calls; the first chunk fit.
        assert FETCH_CHUNK_NODES <= len(stored) < 300
        sent = (await _calls(running))["total"]
        # The chunks in flight when Meta refused (at most 4 of them) were sent; no others.
        assert 300 < sent <= 300 + 4 * FETCH_CHUNK_NODES
        assert sent < numbers + wabas
