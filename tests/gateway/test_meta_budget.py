"""Queries pay from the one Meta budget: once it is spent they answer stale, never call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ServerException
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.gateway._wire import PHONE_OK, SEED_003_AVAILABLE, WABA_BLOCKED, graph_error

from wahealth.testing import DEMO

BUDGET = 3
NO_CACHE = {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}


@pytest.fixture
def budgeted(tmp_path: Path) -> Iterator[ServedGateway]:
    """A gateway whose reports are never fresh, with a Meta budget of three calls a minute."""
    with serve_gateway(
        tmp_path,
        qps=UNTHROTTLED_QPS,
        cache=NO_CACHE,
        monitor={"enabled": False, "meta_calls_per_minute": BUDGET},
    ) as served:
        yield served


def _graph(token: str = DEMO.graph_token) -> dict[str, str]:
    return {"fields": "health_status", "access_token": token}


def _cams(gateway: ServedGateway, **request: Any) -> Any:
    return gateway.cams().get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(cust_space_id=DEMO.space, **request)
    )


def test_a_spent_budget_answers_stale_in_every_dialect_without_calling(
    budgeted: ServedGateway,
) -> None:
    gateway = budgeted
    gateway.reset_emulator_calls()
    with gateway.http() as http:
        # Each query finds nothing fresh and calls Meta: three calls spend the budget.
        fresh = [
            http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key}),
            http.get(f"/v21.0/{PHONE_OK}", params=_graph()),
        ]
        cams_fresh = _cams(gateway, node_type="phone", phone_number="8613800000001")
        assert [r.headers["x-wahealth-source"] for r in fresh] == ["upstream"] * 2
        assert cams_fresh.body.message == "None"
        assert gateway.health_calls(PHONE_OK) == BUDGET

        d360 = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph = http.get(f"/v21.0/{PHONE_OK}", params=_graph())
        cams = _cams(gateway, node_type="phone", phone_number="8613800000001")

    assert gateway.health_calls(PHONE_OK) == BUDGET  # nothing more was asked of Meta
    for answer in (d360, graph):
        assert answer.status_code == 200
        assert answer.headers["x-wahealth-source"] == "stale"
        assert answer.json() == SEED_003_AVAILABLE
    assert cams.body.code == "OK"
    assert "last known status" in cams.body.message
    assert cams.body.data.to_map() == cams_fresh.body.data.to_map()


def test_a_spent_budget_with_nothing_known_is_unavailable_with_retry_after(
    budgeted: ServedGateway,
) -> None:
    gateway = budgeted
    with gateway.http() as http:
        for _ in range(BUDGET):
            assert http.get(f"/v21.0/{PHONE_OK}", params=_graph()).status_code == 200
        gateway.reset_emulator_calls()
        graph = http.get(f"/v21.0/{WABA_BLOCKED}", params=_graph())
    with pytest.raises(ServerException) as info:
        _cams(gateway, node_type="template", template_code="order_update", language="en")

    assert gateway.emulator_calls()["total"] == 0
    assert graph.status_code == 503
    graph_error(graph.content, 2)
    # The budget frees a call a minute after the first was spent: say so, not "now".
    assert 1 <= int(graph.headers["retry-after"]) <= 62
    assert (info.value.code, info.value.status_code) == ("ServiceUnavailable", 503)
