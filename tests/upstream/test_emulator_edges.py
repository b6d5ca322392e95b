"""Catalog edges with cursor paging, and Graph batch requests, over raw HTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.upstream.conftest import AUTH, BASE_URL, DEMO_TOKEN
from tests.upstream.seed_examples import BY_NODE

from wahealth.upstream.emulator import create_emulator, synthetic_scenario
from wahealth.upstream.emulator.synthetic import synthetic_phone_number_id, synthetic_waba_id


@pytest.fixture
async def big() -> Any:
    app = create_emulator(synthetic_scenario(53, n_templates=12, wabas=2))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=AUTH
    ) as client:
        yield client


async def test_phone_numbers_first_page(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v21.0/102290129340398/phone_numbers",
        params={"fields": "id,display_phone_number", "limit": "1"},
        headers=AUTH,
    )
    body = response.json()
    assert body["data"] == [{"id": "106540352242922", "display_phone_number": "+86 138 0000 0001"}]
    next_url = urlsplit(body["paging"]["next"])
    assert f"{next_url.scheme}://{next_url.netloc}" == BASE_URL
    assert next_url.path == "/v21.0/102290129340398/phone_numbers"
    query = parse_qs(next_url.query)
    assert query["after"] == [body["paging"]["cursors"]["after"]]
    assert query["limit"] == ["1"]
    assert query["fields"] == ["id,display_phone_number"]
    assert "previous" not in body["paging"]


async def test_following_next_links_walks_every_number_once(big: httpx.AsyncClient) -> None:
    waba = synthetic_waba_id(1)
    url: str | None = f"/v21.0/{waba}/phone_numbers?limit=5&fields=id"
    seen: list[str] = []
    pages = 0
    while url is not None:
        body = (await big.get(url)).json()
        seen += [item["id"] for item in body["data"]]
        url = body["paging"].get("next")
        pages += 1
        if pages > 1:
            assert "previous" in body["paging"]
    assert seen == [synthetic_phone_number_id(j) for j in range(1, 53, 2)]
    assert pages == 6  # 26 numbers on WABA 1, 5 per page


async def test_before_cursor_goes_back(big: httpx.AsyncClient) -> None:
    waba = synthetic_waba_id(0)
    first = (await big.get(f"/v21.0/{waba}/phone_numbers?limit=3&fields=id")).json()
    second = (await big.get(first["paging"]["next"])).json()
    back = (await big.get(second["paging"]["previous"])).json()
    assert back["data"] == first["data"]


async def test_empty_edge_and_bad_paging_parameters(http: httpx.AsyncClient) -> None:
    empty = await http.get(
        "/v21.0/102290129340398/message_templates", params={"name": "nothing"}, headers=AUTH
    )
    assert empty.json() == {"data": []}
    for params in ({"limit": "0"}, {"limit": "x"}, {"after": "@@@"}):
        bad = await http.get("/v21.0/102290129340398/phone_numbers", params=params, headers=AUTH)
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == 100


async def test_templates_filter_by_name_and_language(big: httpx.AsyncClient) -> None:
    waba = synthetic_waba_id(0)
    by_name = (
        await big.get(f"/v21.0/{waba}/message_templates?name=template_00000&limit=100")
    ).json()
    assert [t["name"] for t in by_name["data"]] == [f"template_{k:06d}" for k in range(0, 10, 2)]
    assert by_name["data"][0] == {
        "name": "template_000000",
        "language": "en",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "930000000000000",
    }
    paged = (await big.get(f"/v21.0/{waba}/message_templates?name=template&limit=4")).json()
    rest = (await big.get(paged["paging"]["next"])).json()
    assert len(paged["data"]) + len(rest["data"]) == 6
    none = (await big.get(f"/v21.0/{waba}/message_templates?language=pt_BR")).json()
    assert none == {"data": []}


async def test_demo_template_lookup(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v21.0/102290129340398/message_templates",
        params={"name": "order_update", "language": "en", "fields": "id,name,language,status"},
        headers=AUTH,
    )
    assert response.json()["data"] == [
        {"id": "2632273056924580", "name": "order_update", "language": "en", "status": "PENDING"}
    ]


async def test_edges_exist_only_on_wabas(http: httpx.AsyncClient) -> None:
    response = await http.get("/v21.0/106540352242922/phone_numbers", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "(#100) Tried accessing nonexisting field (phone_numbers) on node type "
        "(WhatsAppBusinessPhoneNumber)"
    )


def batch_of(*relative_urls: str) -> str:
    return json.dumps([{"method": "GET", "relative_url": url} for url in relative_urls])


async def test_batch_answers_each_sub_request_in_order(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v21.0/",
        data={
            "access_token": DEMO_TOKEN,
            "batch": batch_of(
                "v21.0/105154286024403?fields=health_status",
                "12345?fields=health_status",
                "/2632273056924580?fields=health_status",
            ),
        },
    )
    assert response.status_code == 200
    items = response.json()
    assert [item["code"] for item in items] == [200, 400, 200]
    assert list(items[0]) == ["code", "headers", "body"]
    assert {"name": "Content-Type", "value": "application/json; charset=UTF-8"} in items[0][
        "headers"
    ]
    assert json.loads(items[0]["body"]) == BY_NODE["105154286024403"]
    assert json.loads(items[1]["body"])["error"]["error_subcode"] == 33
    assert json.loads(items[2]["body"]) == BY_NODE["2632273056924580"]


async def test_batch_at_root_with_bearer_and_without_headers(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/",
        data={
            "batch": batch_of("102290129340398?fields=health_status"),
            "include_headers": "false",
        },
        headers=AUTH,
    )
    (item,) = response.json()
    assert item == {
        "code": 200,
        "body": json.dumps(BY_NODE["102290129340398"], separators=(",", ":")),
    }


async def test_batch_sub_requests_may_carry_their_own_token(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v21.0/",
        data={
            "batch": batch_of(
                f"106540352242922?fields=health_status&access_token={DEMO_TOKEN}",
                "106540352242922?fields=health_status",
            )
        },
    )
    assert [item["code"] for item in response.json()] == [200, 401]


async def test_batch_with_bad_token_is_refused_whole(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v21.0/", data={"batch": batch_of("106540352242922"), "access_token": "nope"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 190


async def test_batch_of_more_than_50_is_a_graph_error(http: httpx.AsyncClient) -> None:
    urls = ["106540352242922?fields=health_status"] * 51
    response = await http.post("/v21.0/", data={"batch": batch_of(*urls)}, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert error["type"] == "GraphBatchException"
    assert "Maximum batch size is 50" in error["message"]
    ok = await http.post("/v21.0/", data={"batch": batch_of(*urls[:50])}, headers=AUTH)
    assert len(ok.json()) == 50


@pytest.mark.parametrize("batch", [None, "not json", '{"a": 1}', "[1]", '[{"method": "GET"}]'])
async def test_malformed_batches_are_graph_errors(
    http: httpx.AsyncClient, batch: str | None
) -> None:
    data = {"batch": batch} if batch is not None else {}
    response = await http.post("/v21.0/", data=data, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "GraphBatchException"


async def test_batch_accepts_a_json_body(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v21.0/",
        json={"batch": [{"method": "GET", "relative_url": "106540352242922?fields=health_status"}]},
        headers=AUTH,
    )
    assert json.loads(response.json()[0]["body"]) == BY_NODE["106540352242922"]
