"""B takes its health from A's 360dialog and CAMS dialects: changes, history, alerts, stale.

A is the demo (emulator embedded); B's spaces take their health from A over loopback
(see `_pair`). A change made in A's emulator must reach B's answers in every dialect,
its history and its alert subscription; A refusing (429, 503) must make B serve the last
known report as stale without asking A again before A's `Retry-After`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from tests.bsp._pair import (
    B_D360_KEY,
    B_GRAPH_TOKEN,
    BILLING_PHONE,
    BILLING_WABA,
    DEMO_WABA,
    LIMITED_PHONE,
    Pair,
    pair,
)

from wahealth.upstream.bsp.ids import phone_node_id, template_node_id

CAMS_SPACE = "cams-space"
LIMITED_NUMBER = "8613800000002"
LIMITED_NODE = phone_node_id(CAMS_SPACE, LIMITED_NUMBER)
TEMPLATE_NODE = template_node_id(CAMS_SPACE, "order_update", "en")
DISPLAY_NAME = (
    "Your display name has not been approved yet. "
    "Your message limit will increase after the display name is approved."
)


def _d360(p: Pair) -> tuple[int, str | None, dict[str, Any]]:
    answer = p.http.get(f"{p.b.base_url}/health_status", headers={"D360-API-KEY": B_D360_KEY})
    return answer.status_code, answer.headers.get("x-wahealth-source"), answer.json()


def _cams(p: Pair, **fields: str) -> Any:
    request = GetWhatsappHealthStatusRequest(cust_space_id=CAMS_SPACE, **fields)
    return p.cams().get_whatsapp_health_status(request).body


def test_a_360dialog_channel_of_b_follows_a(tmp_path: Path) -> None:
    with pair(tmp_path) as p:
        [first] = p.recorded(BILLING_PHONE)
        assert (first["space_id"], first["after"], first["cause"]) == (
            "d360-space",
            "BLOCKED",
            "poll",
        )
        assert first["error_codes"] == ["141006"]

        status, source, body = _d360(p)
        assert (status, source, body["id"]) == (200, "upstream", BILLING_PHONE)
        assert body["health_status"]["can_send_message"] == "BLOCKED"
        # The channel's WABA is a node of B's space too, from the same 360dialog answer.
        waba = p.graph(BILLING_WABA)
        assert waba.status_code == 200
        assert waba.json()["health_status"]["can_send_message"] == "BLOCKED"

        p.set_health(BILLING_WABA, {"can_send_message": "AVAILABLE"})
        status, source, body = _d360(p)
        assert (status, source) == (200, "upstream")
        assert body["health_status"]["can_send_message"] == "AVAILABLE"
        newest = p.newest(BILLING_PHONE, "AVAILABLE")
        assert (newest["before"], newest["after"], newest["cause"]) == (
            "BLOCKED",
            "AVAILABLE",
            "query",
        )
        alert = p.receiver.wait_for(
            lambda a: a["node_id"] == BILLING_PHONE and a["event"] == "RECOVERED"
        )
        assert (alert["space_id"], alert["before"], alert["after"]) == (
            "d360-space",
            "BLOCKED",
            "AVAILABLE",
        )
        assert alert["transition_id"] == newest["id"]

        # A throttles: B answers the last known report, stale, and waits as A asked.
        p.gate.d360 = (429, 30)
        for _ in range(2):
            status, source, body = _d360(p)
            assert (status, source) == (200, "stale")
            assert body["health_status"]["can_send_message"] == "AVAILABLE"
        graph = p.graph(BILLING_PHONE)
        assert graph.headers["x-wahealth-source"] == "stale"
        assert p.gate.refused == 1


def test_a_cams_space_of_b_follows_a_through_the_official_sdk(tmp_path: Path) -> None:
    with pair(tmp_path) as p:
        [first] = p.recorded(LIMITED_NODE)
        assert (first["space_id"], first["after"]) == (CAMS_SPACE, "LIMITED")

        body = _cams(p, node_type="phone", phone_number=LIMITED_NUMBER)
        assert (body.code, body.success, body.data.can_send_message) == ("OK", True, "LIMITED")
        assert body.message == "LIMITED: " + DISPLAY_NAME
        phone = body.data.entities[0]
        assert (phone.entity_type, phone.phone_number, phone.waba_id) == (
            "PHONE_NUMBER",
            LIMITED_NUMBER,
            DEMO_WABA,
        )
        template = _cams(p, node_type="template", template_code="order_update", language="en")
        assert template.data.can_send_message == "BLOCKED"
        assert template.data.entities[0].errors[0].error_code == "141002"
        # Derived ids are ids like any other: the Graph dialect, the gate and badges take them.
        graph = p.graph(LIMITED_NODE).json()
        assert graph["id"] == LIMITED_NODE
        assert graph["health_status"]["entities"][1] == {
            "entity_type": "WABA",
            "id": DEMO_WABA,
            "can_send_message": "AVAILABLE",
        }
        gate = p.http.get(
            f"{p.b.base_url}/api/v1/gate",
            params={
                "space": CAMS_SPACE,
                "phone_number": LIMITED_NUMBER,
                "template": "order_update",
                "language": "en",
            },
            headers={"Authorization": f"Bearer {B_GRAPH_TOKEN}"},
        ).json()
        assert (gate["allow"], gate["status"], gate["nodes"]) == (
            False,
            "BLOCKED",
            [LIMITED_NODE, TEMPLATE_NODE],
        )
        assert {r["error_code"] for r in gate["reasons"] if r["entity_id"] == TEMPLATE_NODE} == {
            "141002"
        }
        badge = p.http.get(f"{p.b.base_url}/badge/{TEMPLATE_NODE}.svg")
        assert badge.status_code == 200
        assert badge.headers["content-type"].startswith("image/svg+xml")

        p.set_health(LIMITED_PHONE, {"can_send_message": "AVAILABLE"})
        body = _cams(p, node_type="phone", phone_number=LIMITED_NUMBER)
        assert (body.data.can_send_message, body.message) == ("AVAILABLE", "None")
        newest = p.newest(LIMITED_NODE, "AVAILABLE")
        assert (newest["before"], newest["after"], newest["cause"]) == (
            "LIMITED",
            "AVAILABLE",
            "query",
        )
        alert = p.receiver.wait_for(
            lambda a: a["node_id"] == LIMITED_NODE and a["event"] == "RECOVERED"
        )
        assert alert["space_id"] == CAMS_SPACE

        # A fails (503): B's CAMS answer is the last known report, marked stale.
        p.gate.cams = 503
        body = _cams(p, node_type="phone", phone_number=LIMITED_NUMBER)
        assert (body.success, body.data.can_send_message) == (True, "AVAILABLE")
        assert body.message.startswith("Meta is unavailable; this is the last known status")
        assert p.graph(LIMITED_NODE).headers["x-wahealth-source"] == "stale"
        assert p.gate.refused == 1
