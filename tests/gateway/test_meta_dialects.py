"""360dialog and Graph dialects over the socket: Meta's shape, Meta's errors, a real Graph client."""

from __future__ import annotations

import pytest
from tests.gateway._served import ServedGateway
from tests.gateway._wire import (
    LIMITED_INFO,
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    SEED_003_AVAILABLE,
    TEMPLATE_ID,
    WABA_BLOCKED,
    WABA_OK,
    d360_error,
    graph_error,
)

from wahealth.domain import Status, render_health_status
from wahealth.testing import DEMO
from wahealth.upstream.errors import GraphAuthError, GraphError, GraphNotFound
from wahealth.upstream.graph import GraphClient

DEMO_NODES = (PHONE_OK, PHONE_LIMITED, PHONE_ON_BLOCKED_WABA, TEMPLATE_ID, WABA_OK, WABA_BLOCKED)


def _graph_client(gateway: ServedGateway, token: str = DEMO.graph_token) -> GraphClient:
    return GraphClient(base_url=gateway.base_url, access_token=token, max_attempts=1)


# --- 360dialog ------------------------------------------------------------------------------


def test_d360_key_answers_its_number_as_seed_003_shows(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        response = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == SEED_003_AVAILABLE
    assert response.headers["x-wahealth-source"] in {"upstream", "cache"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"D360-API-KEY": ""}, {"D360-API-KEY": "not-a-key"}, {"D360-API-KEY": DEMO.graph_token}],
    ids=["missing", "empty", "unknown", "another-kind-of-credential"],
)
def test_d360_without_a_valid_key_is_401(gateway: ServedGateway, headers: dict[str, str]) -> None:
    with gateway.http() as http:
        response = http.get("/health_status", headers=headers)

    assert response.status_code == 401
    d360_error(response.content, 401)
    assert response.headers["x-request-id"]


# --- Graph ----------------------------------------------------------------------------------


def test_graph_with_bearer_and_with_access_token_parameter(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        bearer = http.get(
            f"/v21.0/{PHONE_OK}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        parameter = http.get(
            f"/v21.0/{PHONE_OK}",
            params={"fields": "health_status", "access_token": DEMO.graph_token},
        )

    for response in (bearer, parameter):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=UTF-8"
        assert response.json() == SEED_003_AVAILABLE
        assert response.headers["x-request-id"]


async def test_our_graph_client_reads_every_demo_node_through_the_gateway(
    gateway: ServedGateway,
) -> None:
    async with _graph_client(gateway) as client:
        reports = {node_id: await client.health(node_id) for node_id in DEMO_NODES}

    for node_id, report in reports.items():
        upstream = gateway.run(gateway.components.graph.health(node_id))
        assert render_health_status(report) == render_health_status(upstream)
        assert report.node_id == node_id
    statuses = {node_id: report.can_send_message for node_id, report in reports.items()}
    assert statuses == {
        PHONE_OK: Status.AVAILABLE,
        PHONE_LIMITED: Status.LIMITED,
        PHONE_ON_BLOCKED_WABA: Status.BLOCKED,
        TEMPLATE_ID: Status.BLOCKED,
        WABA_OK: Status.AVAILABLE,
        WABA_BLOCKED: Status.BLOCKED,
    }
    assert reports[PHONE_LIMITED].entities[0].additional_info == (LIMITED_INFO,)
    assert [e.code for e in reports[TEMPLATE_ID].entities[0].errors] == ["141002"]
    assert [e.code for e in reports[WABA_BLOCKED].entities[0].errors] == ["141006"]


def test_graph_wire_keeps_metas_types(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        response = http.get(
            f"/v21.0/{TEMPLATE_ID}",
            params={"fields": "health_status", "access_token": DEMO.graph_token},
        )

    template = response.json()["health_status"]["entities"][0]
    assert template == {
        "entity_type": "MESSAGE_TEMPLATE",
        "id": TEMPLATE_ID,
        "can_send_message": "BLOCKED",
        "errors": [
            {
                "error_code": 141002,
                "error_description": "Message templates can only be sent out if they are approved.",
                "possible_solution": "Edit or appeal the message template review decision.",
            }
        ],
    }


async def test_other_accounts_token_cannot_see_demo_nodes(gateway: ServedGateway) -> None:
    async with _graph_client(gateway, DEMO.other_graph_token) as client:
        with pytest.raises(GraphNotFound) as info:
            await client.health(PHONE_OK)

    assert (info.value.code, info.value.subcode, info.value.http_status) == (100, 33, 400)
    with gateway.http() as http:
        response = http.get(
            f"/v21.0/{WABA_OK}",
            params={"fields": "health_status", "access_token": DEMO.other_graph_token},
        )
    assert response.status_code == 400
    error = graph_error(response.content, 100)
    assert error["type"] == "GraphMethodException"
    assert error["fbtrace_id"] == response.headers["x-fb-trace-id"]


@pytest.mark.parametrize("token", ["not-a-token", DEMO.d360_key])
async def test_bad_token_is_190(gateway: ServedGateway, token: str) -> None:
    async with _graph_client(gateway, token) as client:
        with pytest.raises(GraphAuthError) as info:
            await client.health(PHONE_OK)

    assert (info.value.code, info.value.http_status) == (190, 401)


def test_missing_token_is_190(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        response = http.get(f"/v21.0/{PHONE_OK}", params={"fields": "health_status"})

    assert response.status_code == 401
    assert graph_error(response.content, 190)["type"] == "OAuthException"


@pytest.mark.parametrize("fields", ["name,quality_rating", "health_status,no_such_field"])
def test_fields_a_phone_number_lacks_are_an_error(gateway: ServedGateway, fields: str) -> None:
    params = {"access_token": DEMO.graph_token, "fields": fields}
    with gateway.http() as http:
        response = http.get(f"/v21.0/{PHONE_OK}", params=params)

    assert response.status_code == 400
    error = graph_error(response.content, 100)
    assert "Tried accessing nonexisting field" in error["message"]
    assert "(WhatsAppBusinessPhoneNumber)" in error["message"]


async def test_graph_client_sees_a_non_numeric_node_as_not_found(gateway: ServedGateway) -> None:
    async with _graph_client(gateway) as client:
        with pytest.raises(GraphError) as info:
            await client.health("me")

    assert info.value.code == 100
