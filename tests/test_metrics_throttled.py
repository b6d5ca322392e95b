"""Throttled requests are counted under their dialect, on a real socket with the SDKs' calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ThrottlingException
from prometheus_client.parser import text_string_to_metric_families
from tests.gateway._served import ServedGateway, serve_gateway
from tests.gateway.test_ratelimit import SteerableClock

from wahealth.app import Overrides
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.testing import DEMO

QPS = 5
PHONE = "106540352242922"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[ServedGateway, SteerableClock]]:
    clock = SteerableClock()
    with serve_gateway(
        tmp_path, qps=QPS, overrides=Overrides(limiter=MemoryRateLimiter(clock=clock))
    ) as served:
        yield served, clock


def _throttled(gateway: ServedGateway) -> dict[str, float]:
    with gateway.http() as http:
        text = http.get("/metrics").text
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "wahealth_throttled_requests"
    ]
    return {sample.labels["dialect"]: sample.value for sample in family.samples}


def test_each_dialects_throttled_requests(gateway: tuple[ServedGateway, SteerableClock]) -> None:
    served, clock = gateway
    clock.advance(10)
    clock.freeze()  # one window for the whole test: the sixth request and later are refused
    with served.http() as http:
        d360 = [http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
                for _ in range(QPS + 2)]  # fmt: skip
        graph = http.get(
            f"/v21.0/{PHONE}?fields=health_status",
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        # Refused for other reasons: not counted as throttled.
        unauthenticated = http.get(f"/v21.0/{PHONE}?fields=health_status")
        unknown = http.get("/health_status", headers={"D360-API-KEY": "nope"})
    request = GetWhatsappHealthStatusRequest(
        node_type="phone", phone_number="8613800000001", cust_space_id=DEMO.space
    )
    with pytest.raises(ThrottlingException) as refused:
        served.cams().get_whatsapp_health_status(request)
    counts = _throttled(served)

    assert [r.status_code for r in d360] == [200] * QPS + [429, 429]
    assert graph.status_code == 429
    assert (unauthenticated.status_code, unknown.status_code) == (401, 401)
    assert (refused.value.code, refused.value.status_code) == ("Throttling.User", 400)
    cams_refusals = sum(
        1 for e in served.tap.exchanges if e.response_header("x-acs-retry-after") is not None
    )
    assert counts == {"cams": cams_refusals, "d360": 2, "graph": 1, "other": 0}
    assert cams_refusals >= 1
