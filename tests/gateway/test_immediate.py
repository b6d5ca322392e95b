"""Repeats answered at once (a cache hit, the immediate lane) say what the ordinary path says.

A repeat of a request resolved moments ago, for a node fresh in the in-process cache, is
answered without awaiting; anything else about it must still hold: a report a webhook
superseded is fetched again (with no nonce trouble for a CAMS call verified on the way),
and a Graph path under another version is still checked.
"""

from __future__ import annotations

from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from tests.gateway._served import ServedGateway
from tests.gateway._wire import PHONE_OK, graph_error

from wahealth.testing import DEMO

ASKED = {"node_type": "phone", "phone_number": "8613800000001", "cust_space_id": DEMO.space}
BEARER = {"Authorization": f"Bearer {DEMO.graph_token}"}


def test_a_cams_repeat_for_an_outdated_report_is_fetched_again_and_answered(
    gateway: ServedGateway,
) -> None:
    client = gateway.cams()
    request = GetWhatsappHealthStatusRequest(**ASKED)
    for _ in range(3):
        assert client.get_whatsapp_health_status(request).body.code == "OK"
    gateway.reset_emulator_calls()

    gateway.run(gateway.components.health.mark_outdated(PHONE_OK))
    refetched = client.get_whatsapp_health_status(request)
    cached = client.get_whatsapp_health_status(request)

    assert refetched.status_code == cached.status_code == 200
    assert refetched.body.code == cached.body.code == "OK"
    assert refetched.body.data.can_send_message == "AVAILABLE"
    assert cached.body.data.can_send_message == "AVAILABLE"
    assert refetched.body.message == "None"
    assert gateway.health_calls(PHONE_OK) == 1  # once for the outdated report, not again


def test_a_d360_repeat_for_an_outdated_report_is_fetched_again(gateway: ServedGateway) -> None:
    headers = {"D360-API-KEY": DEMO.d360_key}
    with gateway.http() as http:
        for _ in range(3):
            assert http.get("/health_status", headers=headers).status_code == 200
        gateway.reset_emulator_calls()
        gateway.run(gateway.components.health.mark_outdated(DEMO.d360_phone_number_id))
        refetched = http.get("/health_status", headers=headers)
        cached = http.get("/health_status", headers=headers)

    assert refetched.status_code == cached.status_code == 200
    assert refetched.headers["x-wahealth-source"] == "upstream"
    assert cached.headers["x-wahealth-source"] == "cache"
    assert refetched.content == cached.content
    assert gateway.health_calls(DEMO.d360_phone_number_id) == 1


def test_a_graph_repeat_under_another_version_or_path_is_still_checked(
    gateway: ServedGateway,
) -> None:
    fields = {"fields": "health_status"}
    with gateway.http() as http:
        for _ in range(3):
            ok = http.get(f"/v21.0/{PHONE_OK}", params=fields, headers=BEARER)
            assert ok.status_code == 200
        bad_version = http.get(f"/vlatest/{PHONE_OK}", params=fields, headers=BEARER)
        other_token = http.get(
            f"/v21.0/{PHONE_OK}", params=fields, headers={"Authorization": "Bearer nope"}
        )

    assert bad_version.status_code == 400
    graph_error(bad_version.content, 2500)
    assert other_token.status_code == 401
    graph_error(other_token.content, 190)
