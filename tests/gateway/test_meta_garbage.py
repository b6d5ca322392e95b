"""Meta answers garbage: every dialect serves the last known report as stale, else its 503."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ServerException
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.gateway._wire import PHONE_OK, d360_error, graph_error, no_traceback

from wahealth.testing import DEMO

NO_CACHE = {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}
DEEP = "[" * 5000 + "]" * 5000
GARBAGE = {
    "5000 deep": {"status": 200, "body": DEEP},
    "not JSON": {"status": 200, "body": "<html>maintenance</html>"},
    "a list": {"status": 200, "body": "[1]"},
    "no health_status": {"status": 200, "body": json.dumps({"id": PHONE_OK})},
}


@pytest.fixture
def uncached(tmp_path: Path) -> Iterator[ServedGateway]:
    with serve_gateway(
        tmp_path, qps=UNTHROTTLED_QPS, cache=NO_CACHE, upstream={"max_attempts": 1}
    ) as served:
        yield served


def _params() -> dict[str, str]:
    return {"fields": "health_status", "access_token": DEMO.graph_token}


def _cams(gateway: ServedGateway) -> Any:
    return gateway.cams().get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(
            node_type="phone", phone_number="8613800000001", cust_space_id=DEMO.space
        )
    )


def _garbage(gateway: ServedGateway, fault: dict[str, Any]) -> None:
    with gateway.http() as http:
        assert http.post("/_emulator/faults", json={**fault, "count": 3}).status_code == 201


@pytest.mark.parametrize("fault", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_from_meta_serves_the_last_known_report(
    uncached: ServedGateway, fault: dict[str, Any]
) -> None:
    gateway = uncached
    with gateway.http() as http:
        before = http.get(f"/v21.0/{PHONE_OK}", params=_params())
        assert before.headers["x-wahealth-source"] == "upstream"
        _garbage(gateway, fault)
        d360 = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph = http.get(f"/v21.0/{PHONE_OK}", params=_params())
    cams = _cams(gateway)

    for after in (d360, graph):
        assert after.status_code == 200
        assert after.headers["x-wahealth-source"] == "stale"
        assert after.json() == before.json()
    assert (cams.body.code, cams.body.success) == ("OK", True)
    assert "last known status" in cams.body.message


@pytest.mark.parametrize("fault", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_from_meta_with_nothing_known_is_each_dialects_503(
    uncached: ServedGateway, fault: dict[str, Any]
) -> None:
    gateway = uncached
    _garbage(gateway, fault)
    with gateway.http() as http:
        d360 = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph = http.get(f"/v21.0/{PHONE_OK}", params=_params())
    with pytest.raises(ServerException) as info:
        _cams(gateway)

    assert d360.status_code == 503
    d360_error(d360.content, 503)
    assert graph.status_code == 503
    graph_error(graph.content, 2)
    assert (info.value.code, info.value.status_code) == ("ServiceUnavailable", 503)
    exchange = gateway.exchange(info.value.request_id)
    no_traceback(exchange.response_body)
    no_traceback(d360.content)
    no_traceback(graph.content)
