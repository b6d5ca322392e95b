"""Bulk Graph reads on the wire: `GET /?ids=…` and batches, their errors and what they cost.

A bulk call costs min(qps, ceil(nodes / 100)) requests of the account's limit; the limit
tests stop the limiter's clock, so "within one second" holds on a loaded machine too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.gateway._served import ServedGateway, serve_gateway
from tests.gateway._wire import (
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_ID,
    WABA_BLOCKED,
    WABA_OK,
    graph_error,
)
from tests.gateway.test_ratelimit import SteerableClock

from wahealth.app import Overrides
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.testing import DEMO

BEARER = {"Authorization": f"Bearer {DEMO.graph_token}"}
ALL_NODES = [PHONE_OK, PHONE_LIMITED, PHONE_ON_BLOCKED_WABA, TEMPLATE_ID, WABA_OK, WABA_BLOCKED]
JSON_TYPE = "application/json; charset=UTF-8"


@pytest.fixture(scope="module")
def http(gateway: ServedGateway) -> Iterator[httpx.Client]:
    with gateway.http(headers=BEARER) as client:
        yield client


def _batch(client: httpx.Client, requests: Any, **form: str) -> httpx.Response:
    body = requests if isinstance(requests, str) else json.dumps(requests)
    return client.post("/v21.0/", data={"batch": body, **form})


# --- ?ids= ------------------------------------------------------------------------------------


def test_ids_answers_each_node_keyed_by_id(http: httpx.Client) -> None:
    response = http.get(
        "/v21.0/", params={"ids": f"{PHONE_LIMITED},{TEMPLATE_ID}", "fields": "id,health_status"}
    )

    body = response.json()
    assert response.status_code == 200
    assert list(body) == [PHONE_LIMITED, TEMPLATE_ID]
    assert body[PHONE_LIMITED]["health_status"]["can_send_message"] == "LIMITED"
    assert body[TEMPLATE_ID]["health_status"]["can_send_message"] == "BLOCKED"
    assert body[TEMPLATE_ID]["id"] == TEMPLATE_ID


def test_ids_with_kept_fields_of_every_kind(http: httpx.Client) -> None:
    response = http.get("/v21.0", params={"ids": ",".join(ALL_NODES), "fields": "id"})

    assert response.status_code == 200
    assert response.json() == {node: {"id": node} for node in ALL_NODES}


@pytest.mark.parametrize(
    ("ids", "named"),
    [
        (f"{PHONE_OK},999", "999"),
        (f"nope,{PHONE_OK},1234", "nope,1234"),
    ],
)
def test_ids_the_caller_cannot_see_fail_the_whole_read(
    http: httpx.Client, ids: str, named: str
) -> None:
    response = http.get("/v21.0/", params={"ids": ids, "fields": "id"})

    assert response.status_code == 400
    error = graph_error(response.content, 803)
    assert error["message"] == f"(#803) Some of the aliases you requested do not exist: {named}"


def test_ids_of_another_account_do_not_exist(gateway: ServedGateway) -> None:
    with gateway.http(headers={"Authorization": f"Bearer {DEMO.other_graph_token}"}) as other:
        response = other.get("/v21.0/", params={"ids": PHONE_OK, "fields": "id"})

    assert response.status_code == 400
    graph_error(response.content, 803)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (",".join(str(10**14 + n) for n in range(51)), "Too many IDs. Maximum: 50. Provided: 51."),
        (" , ", "Cannot specify an empty identifier"),
    ],
)
def test_bad_ids_are_graphs_error(http: httpx.Client, ids: str, message: str) -> None:
    response = http.get("/v21.0/", params={"ids": ids, "fields": "id"})

    assert response.status_code == 400
    assert graph_error(response.content, 100)["message"] == f"(#100) {message}"


def test_ids_with_a_field_one_node_lacks_is_metas_error(http: httpx.Client) -> None:
    response = http.get(
        "/v21.0/", params={"ids": f"{PHONE_OK},{TEMPLATE_ID}", "fields": "id,quality_rating"}
    )

    assert response.status_code == 400
    error = graph_error(response.content, 100)
    assert (
        "nonexisting field (quality_rating) on node type (WhatsAppMessageTemplate)"
        in (error["message"])
    )


# --- batches ----------------------------------------------------------------------------------


def test_batch_answers_each_request_as_meta_does(http: httpx.Client) -> None:
    response = _batch(
        http,
        [
            {"method": "GET", "relative_url": f"{PHONE_OK}?fields=id,quality_rating"},
            {"method": "GET", "relative_url": f"v21.0/{TEMPLATE_ID}/?fields=name,status"},
            {"method": "GET", "relative_url": f"/{WABA_OK}/phone_numbers?fields=id&limit=1"},
            {"method": "GET", "relative_url": f"?ids={PHONE_LIMITED},{WABA_OK}&fields=id"},
            {"method": "GET", "relative_url": "999?fields=id"},
            {"method": "POST", "relative_url": f"{PHONE_OK}"},
            {"method": "GET", "relative_url": f"{PHONE_OK}?fields=no_such_field"},
        ],
    )

    assert response.status_code == 200
    items = response.json()
    assert [item["code"] for item in items] == [200, 200, 200, 200, 400, 400, 400]
    for item in items:
        assert set(item) == {"code", "headers", "body"}
        assert {"name": "Content-Type", "value": JSON_TYPE} in item["headers"]
        assert isinstance(item["body"], str)
    bodies = [json.loads(item["body"]) for item in items]
    assert bodies[0] == {"id": PHONE_OK, "quality_rating": "GREEN"}
    assert bodies[1] == {"name": "order_update", "status": "PENDING", "id": TEMPLATE_ID}
    assert len(bodies[2]["data"]) == 1
    assert bodies[2]["paging"]["next"].startswith("http://127.0.0.1:")
    assert bodies[3] == {PHONE_LIMITED: {"id": PHONE_LIMITED}, WABA_OK: {"id": WABA_OK}}
    assert bodies[4]["error"]["error_subcode"] == 33
    assert bodies[5]["error"]["message"].startswith("Unsupported post request.")
    assert bodies[6]["error"]["code"] == 100


def test_batch_without_headers(http: httpx.Client) -> None:
    response = _batch(
        http, [{"method": "GET", "relative_url": f"{PHONE_OK}?fields=id"}], include_headers="false"
    )

    assert response.json() == [
        {"code": 200, "body": json.dumps({"id": PHONE_OK}, separators=(",", ":"))}
    ]


def test_batch_items_with_their_own_token_see_what_it_sees(http: httpx.Client) -> None:
    other = DEMO.other_graph_token
    response = _batch(
        http,
        [
            {"method": "GET", "relative_url": f"{PHONE_OK}?fields=id&access_token={other}"},
            {"method": "GET", "relative_url": f"{PHONE_OK}?fields=id"},
        ],
    )

    codes = [item["code"] for item in response.json()]
    assert codes == [400, 200]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (None, "The parameter batch is required"),
        ("not json", "The parameter batch must be a JSON array"),
        ('{"method": "GET"}', "The parameter batch must be a JSON array"),
        ("[]", "The parameter batch must not be empty"),
        ('["x"]', "Each batch request must be a JSON object"),
        ('[{"method": "GET"}]', "Each batch request needs a method and a relative_url"),
        (
            json.dumps([{"method": "GET", "relative_url": PHONE_OK}] * 51),
            "Too many requests in batch message. Maximum batch size is 50",
        ),
    ],
)
def test_malformed_batches_are_graphs_error(
    http: httpx.Client, batch: str | None, message: str
) -> None:
    data = {} if batch is None else {"batch": batch}
    response = http.post("/v21.0/", data=data)

    assert response.status_code == 400
    error = graph_error(response.content, 100)
    assert error["message"] == f"(#100) {message}"
    assert error["type"] == "GraphBatchException"


def test_a_batch_needs_a_token(gateway: ServedGateway) -> None:
    with gateway.http() as anonymous:
        response = _batch(anonymous, [{"method": "GET", "relative_url": PHONE_OK}])

    assert response.status_code == 401
    graph_error(response.content, 190)


# --- what bulk calls cost ------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[ServedGateway, SteerableClock]]:
    clock = SteerableClock()
    limiter = MemoryRateLimiter(clock=clock)
    with serve_gateway(tmp_path, qps=5, overrides=Overrides(limiter=limiter)) as served:
        yield served, clock


def test_a_bulk_call_costs_one_request_per_hundred_nodes(
    limited: tuple[ServedGateway, SteerableClock],
) -> None:
    served, clock = limited
    full_batch = [{"method": "GET", "relative_url": f"{PHONE_OK}?fields=id"}] * 50
    with served.http(headers=BEARER) as client:
        clock.freeze()
        answers = [
            client.get("/v21.0/", params={"ids": ",".join(ALL_NODES), "fields": "id"}),
            _batch(client, full_batch),
            client.get("/v21.0/", params={"ids": ",".join(ALL_NODES), "fields": "id"}),
            _batch(client, full_batch),
            client.get(f"/v21.0/{PHONE_OK}", params={"fields": "id"}),
            client.get(f"/v21.0/{PHONE_OK}", params={"fields": "id"}),
        ]
        clock.advance(1.0)
        after_a_second = _batch(client, full_batch)

    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 429]
    graph_error(answers[-1].content, 4)
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert after_a_second.status_code == 200
    assert len(after_a_second.json()) == 50
