"""Call counting, injected faults and the rate-limit model, over raw HTTP."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.upstream.conftest import AUTH, BASE_URL, DEMO_TOKEN, FakeClock

from wahealth.upstream.emulator import RateLimitSpec, Scenario, create_emulator
from wahealth.upstream.emulator.calls import CallStats

PHONE = "/v21.0/106540352242922?fields=health_status"


@pytest.fixture
async def limited(scenario: Scenario, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """The demo scenario with 3 calls per WABA and 5 per app, per 10-minute window."""
    spec = RateLimitSpec(calls_per_window=3, app_calls_per_window=5, window_seconds=600)
    app = create_emulator(scenario.model_copy(update={"rate_limit": spec}), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=AUTH
    ) as client:
        yield client


async def test_calls_are_counted_by_path_and_node_and_reset(http: httpx.AsyncClient) -> None:
    await http.get(PHONE, headers=AUTH)
    await http.get(PHONE)  # refused (no token) but still a call
    await http.get("/v21.0/102290129340398/phone_numbers", headers=AUTH)
    batch = json.dumps(
        [
            {"method": "GET", "relative_url": f"{n}?fields=health_status"}
            for n in ("1", "106540352242922")
        ]
    )
    await http.post("/v21.0/", data={"batch": batch}, headers=AUTH)
    calls = (await http.get("/_emulator/calls")).json()
    assert calls == {
        "total": 5,
        "batches": 1,
        "by_path": {"/106540352242922": 3, "/102290129340398/phone_numbers": 1, "/1": 1},
        "by_node": {"106540352242922": 3, "102290129340398": 1, "1": 1},
    }
    reset = await http.delete("/_emulator/calls")
    assert reset.json() == {"total": 0, "batches": 0, "by_path": {}, "by_node": {}}


async def test_each_node_s_calls_are_timed_first_last_and_gaps(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    await http.get(PHONE, headers=AUTH)
    clock.advance(20)
    batch = json.dumps(
        [
            {"method": "GET", "relative_url": f"{n}?fields=health_status"}
            for n in ("106540352242922", "102290129340398")
        ]
    )
    await http.post("/v21.0/", data={"batch": batch}, headers=AUTH)
    clock.advance(5)
    await http.get(PHONE)  # refused (no token) but still a call
    await http.get("/v21.0/102290129340398/phone_numbers", headers=AUTH)  # an edge: not timed
    nodes = (await http.get("/_emulator/calls/nodes")).json()["nodes"]
    assert nodes == {
        "106540352242922": {
            "count": 3,
            "first_at": 1000.0,
            "last_at": 1025.0,
            "min_gap_seconds": 5.0,
            "max_gap_seconds": 20.0,
        },
        "102290129340398": {
            "count": 1,
            "first_at": 1020.0,
            "last_at": 1020.0,
            "min_gap_seconds": None,
            "max_gap_seconds": None,
        },
    }
    await http.delete("/_emulator/calls")
    assert (await http.get("/_emulator/calls/nodes")).json() == {"nodes": {}}


async def test_fault_500_hits_the_next_calls_then_clears(http: httpx.AsyncClient) -> None:
    created = await http.post("/_emulator/faults", json={"status": 500, "count": 2})
    assert created.status_code == 201
    assert created.json()["pending"][0]["remaining"] == 2
    first, second, third = [await http.get(PHONE, headers=AUTH) for _ in range(3)]
    assert (first.status_code, second.status_code, third.status_code) == (500, 500, 200)
    error = first.json()["error"]
    assert error["code"] == 1
    assert error["is_transient"] is True
    assert (await http.get("/_emulator/faults")).json() == {"pending": []}
    assert (await http.get("/_emulator/calls")).json()["by_node"] == {"106540352242922": 3}


async def test_fault_429_is_a_rate_limit_envelope_with_usage_headers(
    http: httpx.AsyncClient,
) -> None:
    await http.post(
        "/_emulator/faults",
        json={"status": 429, "retry_after": 7, "estimated_time_to_regain_access": 3},
    )
    response = await http.get(PHONE, headers=AUTH)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == 4
    assert response.headers["retry-after"] == "7"
    usage = json.loads(response.headers["x-business-use-case-usage"])
    assert usage == {
        "102290129340398": [
            {
                "type": "whatsapp_business_management",
                "call_count": 100,
                "total_cputime": 25,
                "total_time": 25,
                "estimated_time_to_regain_access": 3,
            }
        ]
    }
    assert json.loads(response.headers["x-app-usage"])["call_count"] == 100


async def test_fault_with_code_80007_and_raw_body(http: httpx.AsyncClient) -> None:
    await http.post("/_emulator/faults", json={"code": 80007})
    await http.post("/_emulator/faults", json={"status": 502, "body": "<html>bad gateway</html>"})
    throttled = await http.get(PHONE, headers=AUTH)
    assert throttled.status_code == 400
    assert throttled.json()["error"]["code"] == 80007
    raw = await http.get(PHONE, headers=AUTH)
    assert raw.status_code == 502
    assert raw.text == "<html>bad gateway</html>"


async def test_fault_applies_to_a_whole_batch(http: httpx.AsyncClient) -> None:
    await http.post("/_emulator/faults", json={"status": 503})
    batch = json.dumps([{"method": "GET", "relative_url": "106540352242922"}])
    response = await http.post("/v21.0/", data={"batch": batch, "access_token": DEMO_TOKEN})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == 2
    assert (await http.get("/_emulator/calls")).json()["by_path"] == {"/": 1}


@pytest.mark.parametrize(
    "body", [{}, {"status": 700}, {"status": 500, "count": 0}, {"status": 500, "colour": 1}]
)
async def test_bad_faults_are_400(http: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await http.post("/_emulator/faults", json=body)
    assert response.status_code == 400


async def test_delete_faults_clears_pending(http: httpx.AsyncClient) -> None:
    await http.post("/_emulator/faults", json={"status": 500, "count": 5})
    await http.delete("/_emulator/faults")
    assert (await http.get(PHONE, headers=AUTH)).status_code == 200


async def test_waba_budget_answers_80007_until_the_window_ends(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    for _ in range(3):
        ok = await limited.get(PHONE)
        assert ok.status_code == 200
    assert (
        json.loads(ok.headers["x-business-use-case-usage"])["102290129340398"][0]["call_count"]
        == 100
    )
    clock.advance(30)
    refused = await limited.get("/v21.0/2632273056924580?fields=health_status")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == 80007
    assert error["type"] == "OAuthException"
    usage = json.loads(refused.headers["x-business-use-case-usage"])
    assert usage["102290129340398"][0]["estimated_time_to_regain_access"] == 10  # 570 s left
    # Another WABA still has budget; the app budget (5) is not spent yet.
    other = await limited.get("/v21.0/299399000000001?fields=health_status")
    assert other.status_code == 200
    clock.advance(600)
    assert (await limited.get(PHONE)).status_code == 200


async def test_app_budget_answers_code_4_with_app_usage(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    nodes = ["106540352242922", "105154286024403", "299399000000001", "106540352242999", "1"]
    for node in nodes:
        await limited.get(f"/v21.0/{node}?fields=health_status")
    refused = await limited.get("/v21.0/106540352242999?fields=health_status")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 4
    assert json.loads(refused.headers["x-app-usage"])["call_count"] == 100
    usage = json.loads(refused.headers["x-business-use-case-usage"])
    assert usage["506914307656634"][0]["estimated_time_to_regain_access"] == 10
    reset = await limited.delete("/_emulator/rate-limits")
    assert reset.status_code == 200
    assert (await limited.get(PHONE)).status_code == 200


async def test_batch_sub_requests_each_spend_budget(limited: httpx.AsyncClient) -> None:
    batch = json.dumps(
        [{"method": "GET", "relative_url": "106540352242922?fields=health_status"}] * 4
    )
    items = (await limited.post("/v21.0/", data={"batch": batch})).json()
    assert [item["code"] for item in items] == [200, 200, 200, 400]
    assert json.loads(items[3]["body"])["error"]["code"] == 80007
    headers = {h["name"]: h["value"] for h in items[3]["headers"]}
    assert "X-Business-Use-Case-Usage" in headers


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=30))
def test_node_times_hold_the_shortest_and_longest_gap_of_any_calls(offsets: list[float]) -> None:
    moments = sorted(offsets)
    clock = iter(moments)
    stats = CallStats(clock=lambda: next(clock))
    for _ in moments:
        stats.record("/1", "1")
        stats.record("/1/phone_numbers", "1")  # an edge: counted by node, not timed
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert stats.nodes_snapshot() == {
        "1": {
            "count": len(moments),
            "first_at": moments[0],
            "last_at": moments[-1],
            "min_gap_seconds": min(gaps) if gaps else None,
            "max_gap_seconds": max(gaps) if gaps else None,
        }
    }
    assert stats.by_node["1"] == 2 * len(moments)
