"""`POST /api/v1/health` end to end: many nodes in order, errors per node and per call, its cost."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.web.test_gate import (
    LIMITED,
    PAYMENT,
    TEMPLATE_BLOCKED,
    TEMPLATE_ID,
    gate_settings,
)

from wahealth.testing import DEMO, RunningApp, running_app

BULK = "/api/v1/health"
AUTH = {"Authorization": f"Bearer {DEMO.graph_token}"}
SPACE = DEMO.space
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with running_app(gate_settings(tmp_path)) as app:
        yield app


async def bulk(running: RunningApp, body: Any, **headers: str) -> httpx.Response:
    return await running.client.post(BULK, json=body, headers={**AUTH, **headers})


def without_moments(result: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        return result
    assert ISO_UTC.fullmatch(result.pop("fetched_at"))
    assert 0 <= result.pop("age_seconds") < 60
    return result


def ok(node: dict[str, str], node_id: str, kind: str, status: str, reasons: list[Any]) -> Any:
    return {
        "node": node,
        "id": node_id,
        "kind": kind,
        "status": status,
        "reasons": reasons,
        "stale": False,
    }


async def test_every_demo_node_in_order_with_errors_of_their_own(running: RunningApp) -> None:
    nodes = [
        {"id": "106540352242922"},
        {"phone_number": "+86 138 0000 0002"},
        {"template": "order_update", "language": "en"},
        {"id": "299399000000001"},
        {"phone_number": "8613800000009"},
        {"id": "102290129340398"},
        {"phone_number": "8613899999999"},
        {"id": 105154286024403},
        {"template": "order_update", "language": "fr"},
        {"id": "999999999"},
    ]
    answer = await bulk(running, {"space": SPACE, "nodes": nodes})
    assert answer.status_code == 200, answer.text
    results = [without_moments(r) for r in answer.json()["results"]]
    assert results == [
        ok(nodes[0], "106540352242922", "PHONE_NUMBER", "AVAILABLE", []),
        ok(nodes[1], "105154286024403", "PHONE_NUMBER", "LIMITED", [LIMITED]),
        ok(nodes[2], TEMPLATE_ID, "MESSAGE_TEMPLATE", "BLOCKED", [TEMPLATE_BLOCKED]),
        ok(nodes[3], "299399000000001", "WABA", "BLOCKED", [PAYMENT]),
        ok(nodes[4], "106540352242999", "PHONE_NUMBER", "BLOCKED", [PAYMENT]),
        ok(nodes[5], "102290129340398", "WABA", "AVAILABLE", []),
        {
            "node": nodes[6],
            "error": {
                "status": 404,
                "message": "phone number 8613899999999 is not in space demo-space",
            },
        },
        ok({"id": "105154286024403"}, "105154286024403", "PHONE_NUMBER", "LIMITED", [LIMITED]),
        {
            "node": nodes[8],
            "error": {
                "status": 404,
                "message": "template order_update (fr) is not in space demo-space",
            },
        },
        {
            "node": nodes[9],
            "error": {
                "status": 404,
                "message": "node 999999999 is not in space 'demo-space'",
            },
        },
    ]


async def test_a_node_of_another_space_is_an_error_of_its_own(tmp_path: Path) -> None:
    spaces = [
        {"id": SPACE, "account": DEMO.account, "wabas": ["102290129340398"]},
        {"id": "second-space", "account": DEMO.account, "wabas": ["299399000000001"]},
        {"id": DEMO.other_space, "account": DEMO.other_account, "wabas": []},
    ]
    async with running_app(gate_settings(tmp_path, spaces=spaces)) as app:
        nodes = [
            {"id": "106540352242999"},
            {"phone_number": "8613800000009"},
            {"id": "106540352242922"},
        ]
        results = (await bulk(app, {"space": SPACE, "nodes": nodes})).json()["results"]
        assert [r.get("error", {}).get("status") for r in results] == [404, 404, None]
        assert results[0]["error"]["message"] == "node 106540352242999 is not in space 'demo-space'"
        other = (await bulk(app, {"space": "second-space", "nodes": nodes[:1]})).json()
        assert other["results"][0]["status"] == "BLOCKED"


async def test_meta_down_is_an_error_of_the_node_with_retry_after(running: RunningApp) -> None:
    await bulk(running, {"space": SPACE, "nodes": [{"id": "106540352242922"}]})  # now cached
    await running.client.post("/_emulator/faults", json={"status": 500, "count": 50})
    nodes = [{"id": "106540352242922"}, {"id": "105154286024403"}]
    results = (await bulk(running, {"space": SPACE, "nodes": nodes})).json()["results"]
    assert results[0]["status"] == "AVAILABLE"
    error = results[1]["error"]
    assert error["status"] == 503
    assert "105154286024403" in error["message"]
    assert isinstance(error["retry_after"], int)
    assert error["retry_after"] >= 1


async def test_five_hundred_nodes_cost_at_most_the_accounts_limit(tmp_path: Path) -> None:
    async with running_app(gate_settings(tmp_path, qps=5)) as app:
        nodes = [{"id": "106540352242922"}] * 500  # ceil(500 / 100) = 5 = the whole limit
        answer = await bulk(app, {"space": SPACE, "nodes": nodes})
        assert answer.status_code == 200
        assert len(answer.json()["results"]) == 500
        throttled = await bulk(app, {"space": SPACE, "nodes": nodes[:1]})
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "1"


async def test_the_cost_is_one_request_per_hundred_nodes(tmp_path: Path) -> None:
    async with running_app(gate_settings(tmp_path, qps=5)) as app:
        nodes = [{"id": "106540352242922"}] * 101  # costs 2
        assert (await bulk(app, {"space": SPACE, "nodes": nodes})).status_code == 200
        assert (await bulk(app, {"space": SPACE, "nodes": nodes})).status_code == 200
        one = {"space": SPACE, "nodes": nodes[:1]}  # 4 of 5 spent: one more fits
        assert (await bulk(app, one)).status_code == 200
        assert (await bulk(app, one)).status_code == 429


async def test_an_account_of_one_request_a_second_can_still_ask_for_500(tmp_path: Path) -> None:
    async with running_app(gate_settings(tmp_path, qps=1)) as app:
        nodes = [{"id": "106540352242922"}] * 500
        assert (await bulk(app, {"space": SPACE, "nodes": nodes})).status_code == 200


async def test_a_malformed_call_costs_one_request(tmp_path: Path) -> None:
    async with running_app(gate_settings(tmp_path, qps=2)) as app:
        assert (await bulk(app, {"space": SPACE, "nodes": []})).status_code == 400
        assert (await bulk(app, {"space": SPACE, "nodes": [{"id": "1"}]})).status_code == 200
        assert (await bulk(app, {"space": SPACE, "nodes": [{"id": "1"}]})).status_code == 429


TOO_MANY = [{"id": "1"}] * 501


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1,", "the body is not JSON"),
        ("", "the body is not JSON"),
        ("[" * 40 + "]" * 40, "the body nests JSON deeper than 32 levels"),
        ([], 'the body must be a JSON object {"space": …, "nodes": […]}'),
        ({"nodes": [{"id": "1"}]}, "space is required (a string)"),
        ({"space": 7, "nodes": [{"id": "1"}]}, "space is required (a string)"),
        ({"space": SPACE}, "nodes must be a non-empty list"),
        ({"space": SPACE, "nodes": {"id": "1"}}, "nodes must be a non-empty list"),
        ({"space": SPACE, "nodes": [{"id": "1"}], "limit": 3}, "unknown fields: limit"),
        ({"space": SPACE, "nodes": TOO_MANY}, "nodes has 501 entries; at most 500 per call"),
        ({"space": SPACE, "nodes": ["106540352242922"]}, "nodes[0] must be an object"),
        ({"space": SPACE, "nodes": [{"id": "1"}, {}]}, "nodes[1] has the keys []: give one of"),
        ({"space": SPACE, "nodes": [{"id": "1", "phone_number": "2"}]}, "nodes[0] has the keys"),
        ({"space": SPACE, "nodes": [{"template": "order_update"}]}, "nodes[0] has the keys"),
        ({"space": SPACE, "nodes": [{"id": "12a"}]}, "nodes[0].id must be a Meta id"),
        ({"space": SPACE, "nodes": [{"id": True}]}, "nodes[0].id must be a string"),
        ({"space": SPACE, "nodes": [{"phone_number": 86138}]}, "nodes[0].phone_number must be a string"),
        ({"space": SPACE, "nodes": [{"phone_number": "none"}]}, "nodes[0].phone_number must be a phone"),
        (
            {"space": SPACE, "nodes": [{"template": "", "language": "en"}]},
            "nodes[0].template must be a template name",
        ),
        (
            {"space": SPACE, "nodes": [{"template": "a", "language": "english please"}]},
            "language must be a language code",
        ),
    ],
)  # fmt: skip
async def test_bad_calls_are_400s_that_say_what_and_where(
    running: RunningApp, body: Any, message: str
) -> None:
    content = body if isinstance(body, str) else None
    answer = await running.client.post(
        BULK,
        content=content,
        json=None if content is not None else body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert set(answer.json()) == {"error"}
    assert answer.json()["error"].startswith(message)


async def test_a_body_over_512_kib_is_a_413(running: RunningApp) -> None:
    answer = await running.client.post(BULK, content=b" " * (512 * 1024 + 1), headers=AUTH)
    assert answer.status_code == 413
    assert answer.json() == {"error": "the body is larger than 524288 bytes"}


async def test_an_unknown_space_is_a_404_for_the_whole_call(running: RunningApp) -> None:
    for space in ("nope", DEMO.other_space):
        answer = await bulk(running, {"space": space, "nodes": [{"id": "106540352242922"}]})
        assert (answer.status_code, answer.json()) == (
            404,
            {"error": f"space {space!r} is not known to this account"},
        )


async def test_without_a_valid_token_the_body_is_not_judged(running: RunningApp) -> None:
    answer = await running.client.post(
        BULK, content=b"not json", headers={"Authorization": "Bearer x"}
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="wahealth"'


async def test_get_is_not_the_bulk_call(running: RunningApp) -> None:
    answer = await running.client.get(BULK, headers=AUTH)
    assert answer.status_code == 405
    assert set(answer.json()) == {"error"}


async def test_reasons_follow_accept_language(running: RunningApp) -> None:
    nodes = [{"id": "299399000000001"}]
    answer = await bulk(running, {"space": SPACE, "nodes": nodes}, **{"Accept-Language": "id"})
    assert answer.headers["content-language"] == "id"
    (reason,) = answer.json()["results"][0]["reasons"]
    assert reason["description"] == "Terjadi kesalahan pada metode pembayaran."
    english = await bulk(running, {"space": SPACE, "nodes": nodes})
    assert english.headers["content-language"] == "en"
    assert english.json()["results"][0]["reasons"] == [PAYMENT]
