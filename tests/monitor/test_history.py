"""`GET /api/v1/nodes/{id}/history`: newest first, paged, and only for the node's own account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

PHONE = "106540352242922"
WABA = "102290129340398"
LIMITED_INFO = "Your display name has not been approved yet."
HEALTHS: list[dict[str, Any]] = [
    {"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
    {"can_send_message": "AVAILABLE"},
    {"can_send_message": "LIMITED", "additional_info": [LIMITED_INFO]},
    {"can_send_message": "AVAILABLE"},
]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo with five transitions of PHONE: first seen AVAILABLE, then HEALTHS in order.

    The emulator's webhooks are off: each change is seen by the refresh made here.
    """
    settings = demo_settings(tmp_path, upstream={"emulator_webhooks": False})
    async with running_app(settings) as running:
        health = running.components.health
        await health.refresh(PHONE, cause="query")
        for spec in HEALTHS:
            put = await running.client.put(f"/_emulator/nodes/{PHONE}/health", json=spec)
            assert put.status_code == 200
            await health.refresh(PHONE, cause="poll")
        yield running


async def _history(
    client: httpx.AsyncClient, node_id: str = PHONE, token: str = DEMO.graph_token, **params: Any
) -> httpx.Response:
    return await client.get(f"/api/v1/nodes/{node_id}/history", params=params, headers=_auth(token))


async def test_history_is_newest_first_with_every_detail(app: RunningApp) -> None:
    answer = await _history(app.client)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    page = answer.json()
    assert (page["node_id"], page["next"]) == (PHONE, None)
    steps = [(t["before"], t["after"], t["cause"]) for t in page["data"]]
    assert steps == [
        ("LIMITED", "AVAILABLE", "poll"),
        ("AVAILABLE", "LIMITED", "poll"),
        ("BLOCKED", "AVAILABLE", "poll"),
        ("AVAILABLE", "BLOCKED", "poll"),
        (None, "AVAILABLE", "query"),
    ]
    ids = [t["id"] for t in page["data"]]
    assert ids == sorted(ids, reverse=True)
    blocked = page["data"][3]
    assert set(blocked) == {
        "id",
        "node_id",
        "node_kind",
        "space_id",
        "field",
        "before",
        "after",
        "error_codes",
        "changes",
        "cause",
        "occurred_at",
    }
    assert blocked["field"] is None  # a change of health, not of a kept field
    assert (blocked["node_id"], blocked["node_kind"], blocked["space_id"]) == (
        PHONE,
        "PHONE_NUMBER",
        DEMO.space,
    )
    assert blocked["error_codes"] == ["141006"]
    assert blocked["changes"]["entities"][0]["after"] == {
        "can_send_message": "BLOCKED",
        "error_codes": ["141006"],
        "additional_info": [],
    }
    assert blocked["occurred_at"].endswith("Z")
    assert page["data"][1]["changes"]["entities"][0]["after"]["additional_info"] == [LIMITED_INFO]


async def test_pages_follow_the_next_cursor_to_the_end(app: RunningApp) -> None:
    everything = (await _history(app.client)).json()["data"]
    seen: list[dict[str, Any]] = []
    sizes = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        answer = await _history(app.client, **params)
        assert answer.status_code == 200
        page = answer.json()
        seen += page["data"]
        sizes.append(len(page["data"]))
        if page["next"] is None:
            break
        assert page["next"] == str(page["data"][-1]["id"])
        params = {"limit": 2, "before": page["next"]}
    assert sizes == [2, 2, 1]
    assert seen == everything


async def test_a_node_without_transitions_has_an_empty_history(app: RunningApp) -> None:
    answer = await _history(app.client, WABA)
    assert answer.status_code == 200
    assert answer.json() == {"node_id": WABA, "data": [], "next": None}


async def test_no_valid_bearer_token_is_401(app: RunningApp) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Basic {DEMO.graph_token}"},
    ):
        answer = await app.client.get(f"/api/v1/nodes/{PHONE}/history", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert set(answer.json()) == {"error"}


async def test_another_accounts_node_is_not_found(app: RunningApp) -> None:
    answer = await _history(app.client, token=DEMO.other_graph_token)
    assert answer.status_code == 404
    assert answer.json() == {"error": f"node {PHONE} is not known to this account"}
    unknown = await _history(app.client, "999999999")
    assert unknown.status_code == 404


async def test_bad_paging_parameters_are_400(app: RunningApp) -> None:
    for params in (
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"before": "-3"},
        {"before": "²"},
    ):
        answer = await _history(app.client, **params)
        assert answer.status_code == 400, params
        assert "error" in answer.json()


async def test_history_counts_against_the_accounts_rate_limit(app: RunningApp) -> None:
    # qps 5: a burst of 12 cannot all fit in one sliding second.
    answers = [await _history(app.client, limit=1) for _ in range(12)]
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled
    assert int(throttled[0].headers["Retry-After"]) >= 1
    assert "rate limit" in throttled[0].json()["error"]
