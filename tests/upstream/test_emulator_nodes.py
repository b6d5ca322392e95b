"""The emulator's node answers, error envelopes and admin health changes, over raw HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tests.upstream.conftest import AUTH
from tests.upstream.seed_examples import BY_NODE

from wahealth.upstream.emulator import HealthChange, emulator_state

UNKNOWN_NODE_MESSAGE = (
    "Unsupported get request. Object with ID '12345' does not exist, cannot be loaded due to "
    "missing permissions, or does not support this operation. Please read the Graph API "
    "documentation at https://developers.facebook.com/docs/graph-api"
)


@pytest.mark.parametrize("node_id", sorted(BY_NODE))
async def test_demo_nodes_answer_exactly_as_the_seed_examples(
    http: httpx.AsyncClient, node_id: str
) -> None:
    response = await http.get(f"/v21.0/{node_id}", params={"fields": "health_status"}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    # Same keys in the same order, not just equal dicts.
    assert json.dumps(response.json()) == json.dumps(BY_NODE[node_id])


async def test_token_may_come_as_query_parameter(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v19.0/106540352242922",
        params={"fields": "health_status", "access_token": "demo-meta-token"},
    )
    assert response.json() == BY_NODE["106540352242922"]


async def test_unversioned_path_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/2632273056924580?fields=health_status", headers=AUTH)
    assert response.json() == BY_NODE["2632273056924580"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic ZGVtbw=="}]
)
async def test_missing_or_unknown_token_is_oauth_190(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await http.get("/v21.0/106540352242922?fields=health_status", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert list(error) == ["message", "type", "code", "fbtrace_id"]
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert (error["type"], error["code"]) == ("OAuthException", 190)
    assert len(error["fbtrace_id"]) > 10


async def test_unknown_node_is_graph_method_exception(http: httpx.AsyncClient) -> None:
    first = await http.get("/v21.0/12345?fields=health_status", headers=AUTH)
    second = await http.get("/v21.0/12345?fields=health_status", headers=AUTH)
    assert first.status_code == 400
    error = first.json()["error"]
    assert error == {
        "message": UNKNOWN_NODE_MESSAGE,
        "type": "GraphMethodException",
        "code": 100,
        "error_subcode": 33,
        "fbtrace_id": error["fbtrace_id"],
    }
    assert second.json()["error"]["fbtrace_id"] != error["fbtrace_id"]


async def test_post_to_a_node_is_unsupported(http: httpx.AsyncClient) -> None:
    response = await http.post("/v21.0/106540352242922", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "Unsupported post request. Object with ID '106540352242922'"
    )


async def test_phone_node_default_fields(http: httpx.AsyncClient) -> None:
    response = await http.get("/v21.0/106540352242922", headers=AUTH)
    body = response.json()
    assert body["id"] == "106540352242922"
    assert body["display_phone_number"] == "+86 138 0000 0001"
    assert body["verified_name"] == "wahealth Demo"
    assert body["quality_rating"] == "GREEN"
    assert "health_status" not in body


async def test_requested_fields_come_in_order_with_id_last(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v21.0/106540352242922",
        params={"fields": "display_phone_number,health_status{can_send_message}"},
        headers=AUTH,
    )
    body = response.json()
    assert list(body) == ["display_phone_number", "health_status", "id"]
    assert body["health_status"] == BY_NODE["106540352242922"]["health_status"]


@pytest.mark.parametrize(
    ("path", "fields", "expected"),
    [
        (
            "/v21.0/2632273056924580",
            None,
            {
                "name": "order_update",
                "language": "en",
                "status": "PENDING",
                "category": "UTILITY",
                "id": "2632273056924580",
            },
        ),
        ("/v21.0/102290129340398", None, {"id": "102290129340398", "name": "wahealth Demo"}),
        ("/v21.0/506914307656634", "id", {"id": "506914307656634"}),
        ("/v21.0/634974688087057", None, {"name": "wahealth Demo App", "id": "634974688087057"}),
    ],
)
async def test_other_nodes_have_basic_fields(
    http: httpx.AsyncClient, path: str, fields: str | None, expected: dict[str, Any]
) -> None:
    params = {"fields": fields} if fields else {}
    response = await http.get(path, params=params, headers=AUTH)
    assert response.json() == expected


@pytest.mark.parametrize(
    ("node_id", "field", "node_type"),
    [
        ("506914307656634", "health_status", "Business"),
        ("106540352242922", "favourite_colour", "WhatsAppBusinessPhoneNumber"),
    ],
)
async def test_unknown_field_is_error_100(
    http: httpx.AsyncClient, node_id: str, field: str, node_type: str
) -> None:
    response = await http.get(f"/v21.0/{node_id}", params={"fields": field}, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert error["message"] == (
        f"(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"
    )


async def test_put_health_changes_answers_and_calls_hooks(
    http: httpx.AsyncClient, emulator: Starlette
) -> None:
    changes: list[HealthChange] = []
    emulator_state(emulator).on_health_change.append(changes.append)
    body = {
        "can_send_message": "BLOCKED",
        "errors": [{"error_code": 141010, "error_description": "Not verified."}],
    }
    response = await http.put("/_emulator/nodes/506914307656634/health", json=body)
    assert response.status_code == 200
    assert response.json() == {
        "id": "506914307656634",
        "entity_type": "BUSINESS",
        "health": {**body, "additional_info": []},
    }
    answer = (await http.get("/v21.0/106540352242922?fields=health_status", headers=AUTH)).json()
    status = answer["health_status"]
    assert status["can_send_message"] == "BLOCKED"
    assert status["entities"][2] == {
        "entity_type": "BUSINESS",
        "id": "506914307656634",
        "can_send_message": "BLOCKED",
        "errors": [{"error_code": 141010, "error_description": "Not verified."}],
    }
    (change,) = changes
    assert change.entity_id == "506914307656634"
    assert change.before.can_send_message == "AVAILABLE"
    assert change.after.can_send_message == "BLOCKED"
    assert change.waba_ids == ("102290129340398", "299399000000001")
    assert set(change.affected_node_ids) == {
        "102290129340398",
        "106540352242922",
        "105154286024403",
        "2632273056924580",
        "299399000000001",
        "106540352242999",
    }


async def test_async_hooks_are_awaited(http: httpx.AsyncClient, emulator: Starlette) -> None:
    seen: list[str] = []

    async def hook(change: HealthChange) -> None:
        seen.append(f"{change.entity_type}:{change.entity_id}:{change.waba_ids}")

    emulator_state(emulator).on_health_change.append(hook)
    response = await http.put(
        "/_emulator/nodes/105154286024403/health", json={"can_send_message": "AVAILABLE"}
    )
    assert response.status_code == 200
    assert seen == ["PHONE_NUMBER:105154286024403:('102290129340398',)"]
    answer = (await http.get("/v21.0/105154286024403?fields=health_status", headers=AUTH)).json()
    assert answer["health_status"]["can_send_message"] == "AVAILABLE"
    assert "additional_info" not in answer["health_status"]["entities"][0]


async def test_put_health_unknown_node_is_404(http: httpx.AsyncClient) -> None:
    response = await http.put("/_emulator/nodes/999/health", json={"can_send_message": "BLOCKED"})
    assert response.status_code == 404
    assert "999" in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"can_send_message": "BROKEN"}',
        b"{}",
        b'{"can_send_message": "LIMITED", "additional_info": "not a list"}',
        b'{"can_send_message": "LIMITED", "colour": "red"}',
        b"not json",
    ],
)
async def test_put_health_bad_body_is_400_and_changes_nothing(
    http: httpx.AsyncClient, body: bytes
) -> None:
    response = await http.put("/_emulator/nodes/106540352242922/health", content=body)
    assert response.status_code == 400
    assert response.json()["error"]
    answer = (await http.get("/v21.0/106540352242922?fields=health_status", headers=AUTH)).json()
    assert answer["health_status"]["can_send_message"] == "AVAILABLE"


async def test_scenario_dump_reflects_changes(http: httpx.AsyncClient) -> None:
    await http.put(
        "/_emulator/nodes/299399000000001/health", json={"can_send_message": "AVAILABLE"}
    )
    dump = (await http.get("/_emulator/scenario")).json()
    assert dump["tokens"] == ["demo-meta-token"]
    wabas = {w["id"]: w["health"]["can_send_message"] for w in dump["wabas"]}
    assert wabas == {"102290129340398": "AVAILABLE", "299399000000001": "AVAILABLE"}
    assert [t["name"] for t in dump["templates"]] == ["order_update"]


async def test_unknown_admin_endpoint_is_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/_emulator/calls")
    assert response.status_code == 404
    assert response.json() == {"error": "no admin endpoint POST /_emulator/calls"}
