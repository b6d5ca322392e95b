"""The emulator's quality, limits and statuses: served under Meta's names, changed through
`PATCH /_emulator/nodes/{id}`, and announced with the webhooks Meta sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from wahealth.upstream.emulator import Scenario, create_emulator, emulator_state

from .conftest import AUTH

PHONE = "106540352242922"
LIMITED_PHONE = "105154286024403"
TEMPLATE = "2632273056924580"
WABA = "102290129340398"
PHONE_FIELDS = (
    "quality_rating,messaging_limit_tier,whatsapp_business_manager_messaging_limit,throughput,"
    "status,name_status,display_phone_number,verified_name,code_verification_status"
)
TEMPLATE_FIELDS = "status,quality_score,category,rejected_reason"


class Sent:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)

    def changes(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(WABA, field, value) of every change sent, in order."""
        out = []
        for request in self.requests:
            for entry in json.loads(request.content)["entry"]:
                for change in entry["changes"]:
                    out.append((entry["id"], change["field"], change["value"]))
        return out


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def emulator(scenario: Scenario, sent: Sent) -> Starlette:
    return create_emulator(scenario, webhook_transport=httpx.MockTransport(sent.handle))


@pytest.fixture
async def admin(emulator: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as client:
        registered = await client.post(
            "/_emulator/webhooks",
            json={"url": "http://receiver.test/webhooks/meta", "app_secret": "s"},
        )
        assert registered.status_code == 201
        yield client


async def _patch(
    admin: httpx.AsyncClient, emulator: Starlette, node_id: str, body: Any
) -> httpx.Response:
    response = await admin.patch(f"/_emulator/nodes/{node_id}", json=body)
    await emulator_state(emulator).webhooks.drain()
    return response


async def test_the_demo_numbers_and_template_have_meta_s_fields(admin: httpx.AsyncClient) -> None:
    phone = await admin.get(f"/v21.0/{PHONE}", params={"fields": PHONE_FIELDS}, headers=AUTH)
    assert phone.json() == {
        "quality_rating": "GREEN",
        "messaging_limit_tier": "TIER_1K",
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "throughput": {"level": "STANDARD"},
        "status": "CONNECTED",
        "name_status": "APPROVED",
        "display_phone_number": "+86 138 0000 0001",
        "verified_name": "wahealth Demo",
        "code_verification_status": "VERIFIED",
        "id": PHONE,
    }
    limited = await admin.get(
        f"/v21.0/{LIMITED_PHONE}",
        params={"fields": "name_status,messaging_limit_tier"},
        headers=AUTH,
    )
    assert limited.json() == {
        "name_status": "PENDING_REVIEW",
        "messaging_limit_tier": "TIER_250",
        "id": LIMITED_PHONE,
    }
    template = await admin.get(
        f"/v21.0/{TEMPLATE}", params={"fields": TEMPLATE_FIELDS}, headers=AUTH
    )
    assert template.json() == {
        "status": "PENDING",
        "quality_score": {"score": "UNKNOWN", "date": template.json()["quality_score"]["date"]},
        "category": "UTILITY",
        "rejected_reason": "NONE",
        "id": TEMPLATE,
    }


async def test_a_patch_shows_at_once_in_nodes_edges_and_the_scenario(
    admin: httpx.AsyncClient, emulator: Starlette
) -> None:
    answer = await _patch(
        admin,
        emulator,
        PHONE,
        {"quality_rating": "RED", "status": "FLAGGED", "throughput": {"level": "HIGH"}},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["changed"] == ["quality_rating", "status", "throughput"]
    assert (body["fields"]["quality_rating"], body["fields"]["throughput"]) == ("RED", "HIGH")
    node = await admin.get(
        f"/v21.0/{PHONE}", params={"fields": "quality_rating,status,throughput"}, headers=AUTH
    )
    assert node.json() == {
        "quality_rating": "RED",
        "status": "FLAGGED",
        "throughput": {"level": "HIGH"},
        "id": PHONE,
    }
    edge = await admin.get(
        f"/v21.0/{WABA}/phone_numbers", params={"fields": "quality_rating,status"}, headers=AUTH
    )
    assert edge.json()["data"][0] == {"quality_rating": "RED", "status": "FLAGGED", "id": PHONE}
    scenario = (await admin.get("/_emulator/scenario")).json()
    [phone] = [p for p in scenario["phone_numbers"] if p["id"] == PHONE]
    assert (phone["quality_rating"], phone["status"], phone["throughput"]) == (
        "RED",
        "FLAGGED",
        "HIGH",
    )

    paused = await _patch(
        admin, emulator, TEMPLATE, {"status": "PAUSED", "quality_score": {"score": "RED"}}
    )
    assert paused.status_code == 200
    template = await admin.get(
        f"/v21.0/{WABA}/message_templates", params={"fields": "status,quality_score"}, headers=AUTH
    )
    [paused_template] = template.json()["data"]
    assert (paused_template["status"], paused_template["quality_score"]["score"]) == (
        "PAUSED",
        "RED",
    )


@pytest.mark.parametrize(
    ("node_id", "body", "status", "message"),
    [
        ("404404404", {"status": "FLAGGED"}, 404, "unknown node '404404404'"),
        (PHONE, {"quality_rating": "PURPLE"}, 400, "invalid field values"),
        (PHONE, {"status": "PAUSED"}, 400, "invalid field values"),  # a template status
        (PHONE, {"id": "1"}, 400, "a phone_number has no changeable field id"),
        (
            PHONE,
            {"health": {"can_send_message": "BLOCKED"}},
            400,
            "a phone_number has no changeable field health",
        ),
        (PHONE, {}, 400, "no field to change"),
        (PHONE, ["status"], 400, "the body must be a JSON object of field values"),
        (
            TEMPLATE,
            {"quality_rating": "RED"},
            400,
            "a template has no changeable field quality_rating",
        ),
        (WABA, {"status": "FLAGGED"}, 400, "a waba has no changeable field status"),
    ],
)
async def test_a_bad_patch_is_refused_with_the_reason(
    admin: httpx.AsyncClient,
    emulator: Starlette,
    sent: Sent,
    node_id: str,
    body: Any,
    status: int,
    message: str,
) -> None:
    answer = await _patch(admin, emulator, node_id, body)
    assert (answer.status_code, answer.json()["error"]) == (status, message)
    assert sent.requests == []
    unchanged = await admin.get(f"/v21.0/{PHONE}", params={"fields": "status"}, headers=AUTH)
    assert unchanged.json()["status"] == "CONNECTED"


async def test_a_refusal_lists_what_can_be_changed(admin: httpx.AsyncClient) -> None:
    answer = await admin.patch(f"/_emulator/nodes/{TEMPLATE}", json={"name": "x"})
    assert answer.json()["details"] == {
        "changeable": ["category", "quality_score", "rejected_reason", "status"]
    }
    not_json = await admin.patch(f"/_emulator/nodes/{TEMPLATE}", content=b"{")
    assert not_json.status_code == 400


async def test_a_quality_drop_sends_phone_number_quality_update(
    admin: httpx.AsyncClient, emulator: Starlette, sent: Sent
) -> None:
    await _patch(admin, emulator, PHONE, {"quality_rating": "YELLOW"})
    await _patch(admin, emulator, PHONE, {"quality_rating": "GREEN"})
    assert sent.changes() == [
        (
            WABA,
            "phone_number_quality_update",
            {
                "display_phone_number": "+86 138 0000 0001",
                "event": "FLAGGED",
                "current_limit": "TIER_1K",
                "max_daily_conversations_per_business": "TIER_2K",
            },
        ),
        (
            WABA,
            "phone_number_quality_update",
            {
                "display_phone_number": "+86 138 0000 0001",
                "event": "UNFLAGGED",
                "current_limit": "TIER_1K",
                "max_daily_conversations_per_business": "TIER_2K",
            },
        ),
    ]
    assert all(r.headers["x-hub-signature-256"].startswith("sha256=") for r in sent.requests)


async def test_a_tier_downgrade_names_the_old_and_the_current_limit(
    admin: httpx.AsyncClient, emulator: Starlette, sent: Sent
) -> None:
    await _patch(admin, emulator, PHONE, {"messaging_limit_tier": "TIER_250"})
    await _patch(admin, emulator, PHONE, {"whatsapp_business_manager_messaging_limit": "TIER_10K"})
    [(_, _, down), (_, _, up)] = sent.changes()
    assert (down["event"], down["old_limit"], down["current_limit"]) == (
        "DOWNGRADE",
        "TIER_1K",
        "TIER_250",
    )
    assert (up["event"], up["old_limit"], up["max_daily_conversations_per_business"]) == (
        "UPGRADE",
        "TIER_2K",
        "TIER_10K",
    )


async def test_number_statuses_send_their_meta_webhooks(
    admin: httpx.AsyncClient, emulator: Starlette, sent: Sent
) -> None:
    await _patch(admin, emulator, PHONE, {"status": "FLAGGED"})
    await _patch(admin, emulator, PHONE, {"status": "CONNECTED"})
    await _patch(admin, emulator, PHONE, {"status": "RESTRICTED"})
    await _patch(admin, emulator, PHONE, {"name_status": "DECLINED"})
    await _patch(admin, emulator, PHONE, {"code_verification_status": "EXPIRED"})  # none
    sent_fields = [
        (field, value.get("event") or value.get("decision")) for _, field, value in sent.changes()
    ]
    assert sent_fields == [
        ("phone_number_quality_update", "FLAGGED"),
        ("phone_number_quality_update", "UNFLAGGED"),
        ("account_update", "ACCOUNT_RESTRICTION"),
        ("phone_number_name_update", "REJECTED"),
    ]
    assert sent.changes()[2][2]["restriction_info"] == [
        {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}
    ]


async def test_template_changes_send_status_quality_and_category_updates(
    admin: httpx.AsyncClient, emulator: Starlette, sent: Sent
) -> None:
    await _patch(admin, emulator, TEMPLATE, {"status": "PAUSED"})
    await _patch(admin, emulator, TEMPLATE, {"quality_score": "RED"})
    await _patch(admin, emulator, TEMPLATE, {"category": "MARKETING"})
    await _patch(
        admin, emulator, TEMPLATE, {"status": "REJECTED", "rejected_reason": "PROMOTIONAL"}
    )
    ids = {
        "message_template_id": 2632273056924580,
        "message_template_name": "order_update",
        "message_template_language": "en",
    }
    changes = sent.changes()
    assert [field for _, field, _ in changes] == [
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
        "message_template_status_update",
    ]
    paused = changes[0][2]
    assert {k: paused[k] for k in ("event", "reason", *ids)} == {
        "event": "PAUSED",
        "reason": "NONE",
        **ids,
    }
    assert paused["other_info"]["title"] == "FIRST_PAUSE"
    assert changes[1][2] == {"previous_quality_score": "UNKNOWN", "new_quality_score": "RED", **ids}
    assert changes[2][2] == {**ids, "previous_category": "UTILITY", "new_category": "MARKETING"}
    assert (changes[3][2]["event"], changes[3][2]["reason"]) == ("REJECTED", "PROMOTIONAL")


async def test_a_patch_that_changes_nothing_sends_nothing(
    admin: httpx.AsyncClient, emulator: Starlette, sent: Sent
) -> None:
    answer = await _patch(admin, emulator, PHONE, {"quality_rating": "GREEN"})
    assert (answer.status_code, answer.json()["changed"]) == (200, [])
    assert sent.requests == []


async def test_a_template_s_status_moves_with_its_health(
    admin: httpx.AsyncClient, emulator: Starlette, sent: Sent
) -> None:
    async def status() -> str:
        answer = await admin.get(f"/v21.0/{TEMPLATE}", params={"fields": "status"}, headers=AUTH)
        value: str = answer.json()["status"]
        return value

    blocked = {"can_send_message": "BLOCKED", "errors": [{"error_code": 141002}]}
    await admin.put(f"/_emulator/nodes/{TEMPLATE}/health", json=blocked)
    assert await status() == "PENDING"  # not approved yet: blocked, still pending
    await admin.put(f"/_emulator/nodes/{TEMPLATE}/health", json={"can_send_message": "AVAILABLE"})
    assert await status() == "APPROVED"
    await admin.put(f"/_emulator/nodes/{TEMPLATE}/health", json={"can_send_message": "LIMITED"})
    assert await status() == "APPROVED"
    await admin.put(f"/_emulator/nodes/{TEMPLATE}/health", json=blocked)
    assert await status() == "PAUSED"
    await emulator_state(emulator).webhooks.drain()
    events = [value["event"] for _, _, value in sent.changes()]
    assert events == ["PENDING", "APPROVED", "FLAGGED", "PAUSED"]
