"""Meta's budget: one upstream call for many identical queries, and stale answers on failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ServerException
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.gateway._wire import (
    PHONE_LIMITED,
    PHONE_OK,
    SEED_003_AVAILABLE,
    TEMPLATE_ID,
    WABA_BLOCKED,
    d360_error,
    graph_error,
)

from wahealth.testing import DEMO

NO_CACHE = {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}
META_DOWN = {"status": 500, "count": 10}


def _graph_params(token: str = DEMO.graph_token) -> dict[str, str]:
    return {"fields": "health_status", "access_token": token}


def _cams_phone(gateway: ServedGateway) -> Any:
    return gateway.cams().get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(
            node_type="phone", phone_number="8613800000001", cust_space_id=DEMO.space
        )
    )


async def test_fifty_concurrent_identical_queries_cost_one_meta_call(
    gateway: ServedGateway,
) -> None:
    gateway.reset_emulator_calls()
    async with gateway.ahttp(limits=httpx.Limits(max_connections=60)) as http:
        responses = await asyncio.gather(
            *(http.get(f"/v21.0/{PHONE_LIMITED}", params=_graph_params()) for _ in range(50))
        )

    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert gateway.health_calls(PHONE_LIMITED) == 1
    assert gateway.emulator_calls()["total"] == 1

    with gateway.http() as http:
        again = http.get(f"/v21.0/{PHONE_LIMITED}", params=_graph_params())
    assert again.status_code == 200
    assert again.headers["x-wahealth-source"] == "cache"
    assert again.content == responses[0].content
    assert gateway.emulator_calls()["total"] == 1


async def test_identical_queries_in_three_dialects_share_one_meta_call(
    gateway: ServedGateway,
) -> None:
    gateway.reset_emulator_calls()
    async with gateway.ahttp() as http:
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(_cams_phone, gateway) for _ in range(10)),
            *(
                http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
                for _ in range(20)
            ),
            *(http.get(f"/v21.0/{PHONE_OK}", params=_graph_params()) for _ in range(20)),
        )

    cams, meta_shaped = outcomes[:10], outcomes[10:]
    assert {r.body.data.can_send_message for r in cams} == {"AVAILABLE"}
    assert {r.status_code for r in meta_shaped} == {200}
    assert all(r.json() == SEED_003_AVAILABLE for r in meta_shaped)
    assert gateway.health_calls(PHONE_OK) == 1
    assert gateway.emulator_calls()["total"] == 1


def test_cached_answer_is_reused_within_ttl_by_every_dialect(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        http.get(f"/v21.0/{TEMPLATE_ID}", params=_graph_params()).raise_for_status()
        gateway.reset_emulator_calls()
        again = http.get(f"/v21.0/{TEMPLATE_ID}", params=_graph_params())
    response = gateway.cams().get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(
            node_type="template",
            template_code="order_update",
            language="en",
            cust_space_id=DEMO.space,
        )
    )

    assert again.headers["x-wahealth-source"] == "cache"
    assert response.body.data.can_send_message == "BLOCKED"
    assert gateway.emulator_calls()["total"] == 0


# --- Meta down ------------------------------------------------------------------------------


@pytest.fixture
def uncached(tmp_path: Path) -> Iterator[ServedGateway]:
    """A fresh gateway that caches nothing as fresh and tries Meta once per query."""
    with serve_gateway(
        tmp_path, qps=UNTHROTTLED_QPS, cache=NO_CACHE, upstream={"max_attempts": 1}
    ) as served:
        yield served


def _meta_down(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        assert http.post("/_emulator/faults", json=META_DOWN).status_code == 201


def test_meta_down_serves_the_last_known_report_marked_stale(uncached: ServedGateway) -> None:
    gateway = uncached
    with gateway.http() as http:
        d360_before = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        cams_before = _cams_phone(gateway)
        # Nothing is fresh, so each query fetched anew; this is the last known report.
        graph_before = http.get(f"/v21.0/{PHONE_OK}", params=_graph_params())
        assert d360_before.headers["x-wahealth-source"] == "upstream"
        assert graph_before.headers["x-wahealth-source"] == "upstream"
        assert cams_before.body.message == "None"
        _meta_down(gateway)
        gateway.reset_emulator_calls()

        d360_after = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph_after = http.get(f"/v21.0/{PHONE_OK}", params=_graph_params())
        cams_after = _cams_phone(gateway)

    # The first asked Meta (nothing is fresh) and got the failure; its back-off answered
    # the other two from the last known report without calling again.
    assert gateway.health_calls(PHONE_OK) == 1
    last_known = graph_before.headers["x-wahealth-fetched-at"]
    for after in (d360_after, graph_after):
        assert after.status_code == 200
        assert after.headers["x-wahealth-source"] == "stale"
        assert after.headers["x-wahealth-fetched-at"] == last_known
        assert after.json() == SEED_003_AVAILABLE
    assert cams_after.body.code == "OK"
    assert cams_after.body.success is True
    assert "last known status" in cams_after.body.message
    assert last_known in cams_after.body.message
    assert cams_after.body.data.to_map() == cams_before.body.data.to_map()


def test_meta_down_with_nothing_known_is_service_unavailable(uncached: ServedGateway) -> None:
    gateway = uncached
    _meta_down(gateway)
    with gateway.http() as http:
        d360 = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph = http.get(f"/v21.0/{WABA_BLOCKED}", params=_graph_params())
    with pytest.raises(ServerException) as info:
        gateway.cams().get_whatsapp_health_status(
            GetWhatsappHealthStatusRequest(
                node_type="template",
                template_code="order_update",
                language="en",
                cust_space_id=DEMO.space,
            )
        )

    assert d360.status_code == 503
    d360_error(d360.content, 503)
    assert graph.status_code == 503
    assert graph_error(graph.content, 2)["type"] == "OAuthException"
    assert (info.value.code, info.value.status_code) == ("ServiceUnavailable", 503)
    exchange = gateway.exchange(info.value.request_id)
    assert json.loads(exchange.response_body)["Code"] == "ServiceUnavailable"
    assert b"Traceback" not in exchange.response_body


def test_meta_throttling_us_passes_its_wait_on(uncached: ServedGateway) -> None:
    gateway = uncached
    with gateway.http() as http:
        fault = {"code": 80007, "retry_after": 42, "count": 3}
        assert http.post("/_emulator/faults", json=fault).status_code == 201
        d360 = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph = http.get(f"/v21.0/{WABA_BLOCKED}", params=_graph_params())
    with pytest.raises(ServerException) as info:
        gateway.cams().get_whatsapp_health_status(
            GetWhatsappHealthStatusRequest(
                node_type="waba", waba_id=WABA_BLOCKED, cust_space_id=DEMO.space
            )
        )

    assert (d360.status_code, d360.headers["retry-after"]) == (503, "42")
    assert (graph.status_code, graph.headers["retry-after"]) == (503, "42")
    graph_error(graph.content, 2)
    assert (info.value.code, info.value.status_code) == ("ServiceUnavailable", 503)
    exchange = gateway.exchange(info.value.request_id)
    assert exchange.response_header("retry-after") == b"42"
    # A wait on Meta's side is not the caller's throttling: the SDK must not see one.
    assert exchange.response_header("x-acs-retry-after") is None
