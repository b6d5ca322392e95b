"""The Graph read API on the wire: node fields, edges and their paging, scope, Meta's errors.

The emulator's call counts tell which answers came from what wahealth keeps (no call)
and which were read from Meta (one call, then the cache).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.gateway._wire import (
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_ID,
    WABA_BLOCKED,
    WABA_OK,
    graph_error,
)

from wahealth.testing import DEMO

BEARER = {"Authorization": f"Bearer {DEMO.graph_token}"}
OTHER = {"Authorization": f"Bearer {DEMO.other_graph_token}"}
EMULATOR_TOKEN = "demo-meta-token"


@pytest.fixture(scope="module")
def http(gateway: ServedGateway) -> Iterator[httpx.Client]:
    with gateway.http(headers=BEARER) as client:
        yield client


def _calls(gateway: ServedGateway, path: str) -> int:
    count: int = gateway.emulator_calls()["by_path"].get(path, 0)
    return count


def _json(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_kept_fields_come_from_the_catalog(gateway: ServedGateway, http: httpx.Client) -> None:
    gateway.reset_emulator_calls()

    response = http.get(
        f"/v21.0/{PHONE_OK}",
        params={"fields": "display_phone_number,verified_name,quality_rating"},
    )

    assert response.status_code == 200
    assert list(_json(response).items()) == [
        ("display_phone_number", "+86 138 0000 0001"),
        ("verified_name", "wahealth Demo"),
        ("quality_rating", "GREEN"),
        ("id", PHONE_OK),
    ]
    assert gateway.emulator_calls()["total"] == 0


def test_other_fields_are_read_from_meta_once_then_cached(
    gateway: ServedGateway, http: httpx.Client
) -> None:
    gateway.reset_emulator_calls()
    params = {"fields": "platform_type,id,quality_rating,account_mode"}

    first = http.get(f"/v21.0/{PHONE_ON_BLOCKED_WABA}", params=params)
    second = http.get(f"/v21.0/{PHONE_ON_BLOCKED_WABA}/", params=params)

    assert first.status_code == second.status_code == 200
    assert list(_json(first).items()) == [
        ("platform_type", "CLOUD_API"),
        ("id", PHONE_ON_BLOCKED_WABA),
        ("quality_rating", "GREEN"),
        ("account_mode", "LIVE"),
    ]
    assert second.json() == first.json()
    assert _calls(gateway, f"/{PHONE_ON_BLOCKED_WABA}") == 1


def test_health_status_beside_other_fields(http: httpx.Client) -> None:
    response = http.get(f"/v21.0/{TEMPLATE_ID}", params={"fields": "name,status,health_status"})

    body = _json(response)
    assert response.status_code == 200
    assert [body["name"], body["status"], body["id"]] == ["order_update", "PENDING", TEMPLATE_ID]
    assert body["health_status"]["can_send_message"] == "BLOCKED"
    assert body["health_status"]["entities"][0]["errors"][0]["error_code"] == 141002


def test_waba_fields_and_nested_selections_go_to_meta(http: httpx.Client) -> None:
    response = http.get(
        f"/v21.0/{WABA_BLOCKED}",
        params={"fields": "name,timezone_id,subscribed_apps{whatsapp_business_api_data}"},
    )

    body = _json(response)
    assert response.status_code == 200
    assert body["name"] == "wahealth Demo (no payment method)"
    assert body["timezone_id"] == "1"
    assert body["subscribed_apps"]["data"][0]["whatsapp_business_api_data"]["id"]
    assert body["id"] == WABA_BLOCKED


@pytest.mark.parametrize(
    ("node", "fields", "missing", "node_type"),
    [
        (PHONE_OK, "quality_rating,no_such_field", "no_such_field", "WhatsAppBusinessPhoneNumber"),
        (
            TEMPLATE_ID,
            "name,display_phone_number",
            "display_phone_number",
            "WhatsAppMessageTemplate",
        ),
        (WABA_OK, "bad field", "bad field", "WhatsAppBusinessAccount"),
    ],
)
def test_a_field_meta_does_not_have_is_metas_error(
    http: httpx.Client, node: str, fields: str, missing: str, node_type: str
) -> None:
    response = http.get(f"/v21.0/{node}", params={"fields": fields})

    assert response.status_code == 400
    error = graph_error(response.content, 100)
    assert error["message"] == (
        f"(#100) Tried accessing nonexisting field ({missing}) on node type ({node_type})"
    )
    assert error["type"] == "OAuthException"


def test_unbalanced_fields_are_refused(http: httpx.Client) -> None:
    response = http.get(f"/v21.0/{PHONE_OK}", params={"fields": "id,throughput{level"})

    assert response.status_code == 400
    graph_error(response.content, 100)


def test_no_fields_gives_metas_default_fields(http: httpx.Client) -> None:
    response = http.get(f"/v21.0/{PHONE_LIMITED}")

    body = _json(response)
    assert response.status_code == 200
    assert body["id"] == PHONE_LIMITED
    assert body["display_phone_number"] == "+86 138 0000 0002"
    assert "health_status" not in body


@pytest.mark.parametrize(
    "target",
    [
        f"/v21.0/{PHONE_OK}?fields=id,quality_rating",
        f"/v21.0/{WABA_OK}/phone_numbers?fields=id",
        f"/v21.0/{WABA_OK}/message_templates?fields=id,components",
    ],
)
def test_another_accounts_nodes_do_not_exist(gateway: ServedGateway, target: str) -> None:
    gateway.reset_emulator_calls()
    with gateway.http(headers=OTHER) as other:
        response = other.get(target)

    assert response.status_code == 400
    error = graph_error(response.content, 100)
    assert error["error_subcode"] == 33
    assert error["type"] == "GraphMethodException"
    assert gateway.emulator_calls()["total"] == 0


def test_reads_without_a_token_are_refused(gateway: ServedGateway) -> None:
    with gateway.http() as anonymous:
        response = anonymous.get(f"/v21.0/{PHONE_OK}", params={"fields": "id"})

    assert response.status_code == 401
    graph_error(response.content, 190)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_writes_are_not_served(http: httpx.Client, method: str) -> None:
    response = http.request(method, f"/v21.0/{PHONE_OK}", params={"fields": "id"})

    assert response.status_code == 400
    assert graph_error(response.content, 100)["error_subcode"] == 33


def test_edges_of_a_number_and_unknown_edges(http: httpx.Client) -> None:
    of_number = http.get(f"/v21.0/{PHONE_OK}/message_templates")
    unknown = http.get(f"/v21.0/{WABA_OK}/assigned_users")

    assert of_number.status_code == 400
    assert "nonexisting field (message_templates)" in graph_error(of_number.content, 100)["message"]
    assert unknown.status_code == 400
    assert graph_error(unknown.content, 100)["error_subcode"] == 33


def _pages(http: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[Any]:
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = http.get(next_url, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        next_url = page.get("paging", {}).get("next")
        params = None
        assert len(pages) < 10
    return pages


def test_catalog_edge_pages_follow_metas_cursor_paging(
    gateway: ServedGateway, http: httpx.Client
) -> None:
    gateway.reset_emulator_calls()
    fields = "id,display_phone_number,quality_rating"

    pages = _pages(
        http, f"/v21.0/{WABA_OK}/phone_numbers", {"fields": fields, "limit": "1", "summary": "true"}
    )

    assert [len(page["data"]) for page in pages] == [1, 1]
    assert {item["id"] for page in pages for item in page["data"]} == {PHONE_OK, PHONE_LIMITED}
    assert pages[0]["summary"] == {"total_count": 2}
    first, second = pages
    assert set(first["paging"]) == {"cursors", "next"}
    assert set(second["paging"]) == {"cursors", "previous"}
    assert second["paging"]["previous"].startswith(f"{gateway.base_url}/v21.0/{WABA_OK}/")
    back = http.get(second["paging"]["previous"]).json()
    assert back["data"] == first["data"]
    assert gateway.emulator_calls()["total"] == 0


def test_meta_edge_pages_link_back_here_without_metas_token(
    gateway: ServedGateway, http: httpx.Client
) -> None:
    gateway.reset_emulator_calls()
    params = {"fields": "id,platform_type", "limit": "1", "access_token": DEMO.graph_token}

    with gateway.http() as query_token_only:
        pages = _pages(query_token_only, f"/v21.0/{WABA_OK}/phone_numbers", params)

    assert {item["id"] for page in pages for item in page["data"]} == {PHONE_OK, PHONE_LIMITED}
    link = pages[0]["paging"]["next"]
    assert link.startswith(f"{gateway.base_url}/v21.0/{WABA_OK}/phone_numbers?")
    assert EMULATOR_TOKEN not in link
    assert parse_qs(urlsplit(link).query)["access_token"] == [DEMO.graph_token]
    assert _calls(gateway, f"/{WABA_OK}/phone_numbers") == 2


@pytest.mark.parametrize(
    ("filters", "found"),
    [
        ({}, [TEMPLATE_ID]),
        ({"name": "ORDER"}, [TEMPLATE_ID]),
        ({"name": "invoice"}, []),
        ({"language": "en"}, [TEMPLATE_ID]),
        ({"language": "fr"}, []),
        ({"status": "APPROVED,PENDING"}, [TEMPLATE_ID]),
        ({"status": '["APPROVED"]'}, []),
        ({"category": '["UTILITY","MARKETING"]'}, [TEMPLATE_ID]),
    ],
)
def test_template_filters(
    gateway: ServedGateway, http: httpx.Client, filters: dict[str, str], found: list[str]
) -> None:
    gateway.reset_emulator_calls()
    params = {"fields": "id,name,language,status,category", "summary": "total_count", **filters}

    kept = _json(http.get(f"/v21.0/{WABA_OK}/message_templates", params=params))
    from_meta = _json(
        http.get(
            f"/v21.0/{WABA_OK}/message_templates", params={**params, "fields": "id,components"}
        )
    )

    assert [item["id"] for item in kept["data"]] == found
    assert kept["summary"] == {"total_count": len(found)}
    assert [item["id"] for item in from_meta["data"]] == found
    assert _calls(gateway, f"/{WABA_OK}/message_templates") == 1  # only the components read


def test_a_bad_limit_is_metas_error(http: httpx.Client) -> None:
    response = http.get(f"/v21.0/{WABA_OK}/phone_numbers", params={"fields": "id", "limit": "x"})

    assert response.status_code == 400
    graph_error(response.content, 100)


def test_a_spent_meta_budget_answers_try_later(tmp_path: Path) -> None:
    monitor = {"enabled": False, "meta_calls_per_minute": 1}
    with (
        serve_gateway(tmp_path, qps=UNTHROTTLED_QPS, monitor=monitor) as served,
        served.http(headers=BEARER) as client,
    ):
        first = client.get(f"/v21.0/{PHONE_OK}", params={"fields": "platform_type"})
        second = client.get(f"/v21.0/{PHONE_OK}", params={"fields": "account_mode"})
        kept = client.get(f"/v21.0/{PHONE_OK}", params={"fields": "quality_rating"})

    assert first.status_code == 200
    assert second.status_code == 503
    assert graph_error(second.content, 2)
    assert int(second.headers["retry-after"]) >= 1
    assert kept.status_code == 200
