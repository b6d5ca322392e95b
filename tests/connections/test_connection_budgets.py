"""Each Meta connection is its own app with its own call budget: one spent, the other calls on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.connections._scenario import (
    ACME_GRAPH,
    ACME_PHONE,
    ACME_TOKEN,
    BETA_GRAPH,
    BETA_PHONE,
    BETA_TOKEN,
    two_business_settings,
)

from wahealth.testing import RunningApp, running_app
from wahealth.upstream.budgets import ConnectionBudgets

ACME_BUDGET, BETA_BUDGET = 5, 100


@pytest.fixture(params=["memory", "redis"])
def budget_url(request: pytest.FixtureRequest) -> str:
    """The budgets in this process's memory, and in Redis (shared by every replica)."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


def _settings(tmp_path: Path, budget_url: str) -> Any:
    return two_business_settings(
        tmp_path,
        meta_connections=[
            {
                "name": "acme",
                "access_token": ACME_TOKEN,
                "app_secret": "acme-app-secret",
                "meta_calls_per_minute": ACME_BUDGET,
            },
            {"name": "beta", "access_token": BETA_TOKEN, "meta_calls_per_minute": BETA_BUDGET},
        ],
        # Every query asks Meta (no fresh cache entry), so each pays from its app's budget.
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        ratelimit={"url": budget_url, "default_qps": 1000},
        monitor={"enabled": False, "meta_calls_per_minute": 1000},
    )


async def _query(running: RunningApp, node_id: str, token: str) -> tuple[int, str | None]:
    """The status and where the report came from (`x-wahealth-source`: upstream, stale...)."""
    answer = await running.client.get(
        f"/v21.0/{node_id}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return answer.status_code, answer.headers.get("x-wahealth-source")


async def _node_calls(running: RunningApp) -> dict[str, int]:
    by_node: dict[str, int] = (await running.client.get("/_emulator/calls")).json()["by_node"]
    return by_node


async def test_a_spent_connection_answers_stale_while_the_other_still_calls_meta(
    tmp_path: Path, budget_url: str
) -> None:
    async with running_app(_settings(tmp_path, budget_url)) as running:
        before = await _node_calls(running)
        acme = [await _query(running, ACME_PHONE, ACME_GRAPH) for _ in range(ACME_BUDGET + 3)]
        beta = [await _query(running, BETA_PHONE, BETA_GRAPH) for _ in range(ACME_BUDGET + 3)]
        after = await _node_calls(running)
        scrape = (await running.client.get("/metrics")).text
    acme_calls = after.get(ACME_PHONE, 0) - before.get(ACME_PHONE, 0)
    beta_calls = after.get(BETA_PHONE, 0) - before.get(BETA_PHONE, 0)
    # Acme's app had five calls: the rest were answered from what was known, marked stale.
    assert acme_calls == ACME_BUDGET
    assert [status for status, _ in acme] == [200] * (ACME_BUDGET + 3)
    assert [source for _, source in acme[ACME_BUDGET:]] == ["stale"] * 3
    assert "stale" not in [source for _, source in acme[:ACME_BUDGET]]
    # Beta's app has its own budget: every one of its queries reached Meta.
    assert beta_calls == ACME_BUDGET + 3
    assert [status for status, _ in beta] == [200] * (ACME_BUDGET + 3)
    assert "stale" not in [source for _, source in beta]
    assert f'wahealth_meta_budget_calls_per_minute{{connection="acme"}} {ACME_BUDGET}.0' in scrape
    assert f'wahealth_meta_budget_calls_per_minute{{connection="beta"}} {BETA_BUDGET}.0' in scrape
    assert f'wahealth_meta_budget_spent_calls{{connection="acme"}} {ACME_BUDGET}.0' in scrape
    assert 'wahealth_meta_budget_calls_per_minute{connection="default"} 1000.0' in scrape


async def test_a_spent_connection_with_nothing_known_answers_try_again(
    tmp_path: Path, budget_url: str
) -> None:
    async with running_app(_settings(tmp_path, budget_url)) as running:
        budgets = running.components.budget
        assert isinstance(budgets, ConnectionBudgets)
        # Acme's whole budget spent elsewhere (another replica, the refresh loop).
        await dict(await budgets.each())["acme"].spend(ACME_BUDGET)
        before = await _node_calls(running)
        acme_status, _ = await _query(running, ACME_PHONE, ACME_GRAPH)
        beta_status, _ = await _query(running, BETA_PHONE, BETA_GRAPH)
        after = await _node_calls(running)
    assert acme_status == 503
    assert after.get(ACME_PHONE, 0) == before.get(ACME_PHONE, 0)
    assert beta_status == 200
    assert after.get(BETA_PHONE, 0) == before.get(BETA_PHONE, 0) + 1


async def test_the_refresh_loop_pays_each_chunk_per_connection(
    tmp_path: Path, budget_url: str
) -> None:
    """Acme's budget is spent: its nodes stay due, unsent; Beta's are refreshed in the round."""
    async with running_app(_settings(tmp_path, budget_url)) as running:
        budgets = running.components.budget
        assert isinstance(budgets, ConnectionBudgets)
        by_connection = dict(await budgets.each())
        await by_connection["acme"].spend(ACME_BUDGET)
        before = await _node_calls(running)
        refresher = running.components.monitor.refresher
        await refresher.step()
        after = await _node_calls(running)
        beta_spent = await by_connection["beta"].spent()
        default_spent = await by_connection["default"].spent()
        schedule = refresher._schedule  # what is due, as the next round sees it
        due = [n.node_id for n in await schedule.due_nodes(datetime.now(UTC), limit=100)]
    assert after.get(ACME_PHONE, 0) == before.get(ACME_PHONE, 0)
    assert after.get(BETA_PHONE, 0) == before.get(BETA_PHONE, 0) + 1
    assert beta_spent >= 1
    assert default_spent == 0
    assert ACME_PHONE in due
    assert BETA_PHONE not in due
