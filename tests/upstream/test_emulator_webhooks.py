"""The emulator emits the signed Meta webhook matching each admin health change."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.testing_server import serve_in_thread
from wahealth.upstream.emulator import Scenario, create_emulator, emulator_state

APP_SECRET = "emulated-app-secret"
TARGET = "http://receiver.test/webhooks/meta"
WABA = "102290129340398"
BLOCKED_WABA = "299399000000001"


class Captured:
    """A webhook transport that records requests (and can fail or stall)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.error: Exception | None = None
        self.stall = False

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.stall:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error
        return httpx.Response(200, text="EVENT_RECEIVED")

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
def emulator(scenario: Scenario, captured: Captured) -> Starlette:
    return create_emulator(scenario, webhook_transport=httpx.MockTransport(captured.handle))


@pytest.fixture
async def admin(emulator: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as client:
        response = await client.post(
            "/_emulator/webhooks", json={"url": TARGET, "app_secret": APP_SECRET}
        )
        assert response.status_code == 201
        yield client


async def set_health(
    client: httpx.AsyncClient, emulator: Starlette, node_id: str, health: dict[str, Any]
) -> None:
    response = await client.put(f"/_emulator/nodes/{node_id}/health", json=health)
    assert response.status_code == 200
    await emulator_state(emulator).webhooks.drain()


def assert_signed_by_meta(request: httpx.Request, secret: str = APP_SECRET) -> None:
    expected = hmac.new(secret.encode(), request.content, hashlib.sha256).hexdigest()
    assert request.headers["x-hub-signature-256"] == f"sha256={expected}"
    assert request.headers["content-type"] == "application/json"


BLOCKED_141006 = {
    "can_send_message": "BLOCKED",
    "errors": [
        {
            "error_code": 141006,
            "error_description": "There is an error with the payment method.",
            "possible_solution": "Add a payment method.",
        }
    ],
}


async def test_targets_are_registered_listed_and_cleared(emulator: Starlette) -> None:
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://e.test") as client:
        created = await client.post(
            "/_emulator/webhooks", json={"url": TARGET, "app_secret": APP_SECRET}
        )
        assert created.status_code == 201
        assert created.json() == {"targets": [{"url": TARGET}], "deliveries": []}
        assert APP_SECRET not in created.text
        assert (await client.get("/_emulator/webhooks")).json()["targets"] == [{"url": TARGET}]
        for bad in ({"url": "ftp://x"}, {"url": TARGET}, {"url": TARGET, "app_secret": ""}):
            refused = await client.post("/_emulator/webhooks", json=bad)
            assert refused.status_code == 400
        cleared = await client.delete("/_emulator/webhooks")
        assert cleared.json()["targets"] == []


async def test_phone_number_change_emits_phone_number_quality_update(
    admin: httpx.AsyncClient, emulator: Starlette, captured: Captured
) -> None:
    await set_health(admin, emulator, "106540352242922", {"can_send_message": "LIMITED"})
    await set_health(admin, emulator, "106540352242922", {"can_send_message": "AVAILABLE"})
    assert [str(r.url) for r in captured.requests] == [TARGET, TARGET]
    for request in captured.requests:
        assert_signed_by_meta(request)
    flagged, unflagged = captured.bodies()
    assert flagged["object"] == "whatsapp_business_account"
    [entry] = flagged["entry"]
    assert entry["id"] == WABA
    assert isinstance(entry["time"], int)
    assert entry["changes"] == [
        {
            "field": "phone_number_quality_update",
            "value": {"display_phone_number": "+86 138 0000 0001", "event": "FLAGGED"},
        }
    ]
    assert unflagged["entry"][0]["changes"][0]["value"]["event"] == "UNFLAGGED"


async def test_template_change_emits_message_template_status_update(
    admin: httpx.AsyncClient, emulator: Starlette, captured: Captured
) -> None:
    await set_health(admin, emulator, "2632273056924580", {"can_send_message": "AVAILABLE"})
    await set_health(admin, emulator, "2632273056924580", BLOCKED_141006)
    approved, paused = (b["entry"][0]["changes"][0] for b in captured.bodies())
    assert approved["field"] == "message_template_status_update"
    assert approved["value"] == {
        "event": "APPROVED",
        "message_template_id": 2632273056924580,
        "message_template_name": "order_update",
        "message_template_language": "en",
        "reason": None,
    }
    assert paused["value"]["event"] == "PAUSED"
    assert paused["value"]["other_info"]["description"] == (
        "There is an error with the payment method."
    )


async def test_business_change_emits_account_update_for_each_of_its_wabas(
    admin: httpx.AsyncClient, emulator: Starlette, captured: Captured
) -> None:
    await set_health(admin, emulator, "506914307656634", BLOCKED_141006)
    await set_health(admin, emulator, BLOCKED_WABA, {"can_send_message": "AVAILABLE"})
    violation, reinstated = captured.bodies()
    assert [e["id"] for e in violation["entry"]] == [WABA, BLOCKED_WABA]
    for entry in violation["entry"]:
        [change] = entry["changes"]
        assert change["field"] == "account_update"
        assert change["value"]["event"] == "ACCOUNT_VIOLATION"
    [entry] = reinstated["entry"]
    assert entry["id"] == BLOCKED_WABA
    assert entry["changes"][0]["value"] == {
        "event": "DISABLED_UPDATE",
        "ban_info": {"waba_ban_state": "REINSTATE"},
    }


async def test_no_target_no_webhook(scenario: Scenario, captured: Captured) -> None:
    emulator = create_emulator(scenario, webhook_transport=httpx.MockTransport(captured.handle))
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://e.test") as client:
        await set_health(client, emulator, "106540352242922", {"can_send_message": "BLOCKED"})
    assert captured.requests == []


async def test_a_failing_target_does_not_fail_the_admin_call(
    admin: httpx.AsyncClient, emulator: Starlette, captured: Captured
) -> None:
    captured.error = httpx.ConnectError("connection refused")
    await set_health(admin, emulator, "106540352242922", {"can_send_message": "BLOCKED"})
    listing = (await admin.get("/_emulator/webhooks")).json()
    assert listing["deliveries"] == [
        {
            "url": TARGET,
            "field": "phone_number_quality_update",
            "error": "ConnectError: connection refused",
        }
    ]


async def test_a_stalled_target_is_bounded_and_does_not_block_the_admin_call(
    admin: httpx.AsyncClient, emulator: Starlette, captured: Captured
) -> None:
    captured.stall = True
    emulator_state(emulator).webhooks.timeout_seconds = 0.05
    async with asyncio.timeout(5):
        response = await admin.put(
            "/_emulator/nodes/106540352242922/health", json={"can_send_message": "BLOCKED"}
        )
    assert response.status_code == 200
    async with asyncio.timeout(5):
        await emulator_state(emulator).webhooks.drain()
    [delivery] = (await admin.get("/_emulator/webhooks")).json()["deliveries"]
    assert delivery["error"].startswith("TimeoutError")


async def test_delivered_over_a_real_socket(scenario: Scenario) -> None:
    got: list[tuple[dict[str, str], bytes]] = []
    arrived = threading.Event()

    async def receive(request: Request) -> Response:
        got.append((dict(request.headers), await request.body()))
        arrived.set()
        return Response("EVENT_RECEIVED")

    receiver = Starlette(routes=[Route("/webhooks/meta", receive, methods=["POST"])])
    emulator = create_emulator(scenario)
    transport = httpx.ASGITransport(app=emulator)
    with serve_in_thread(receiver) as server:
        async with httpx.AsyncClient(transport=transport, base_url="http://e.test") as client:
            url = f"{server.base_url}/webhooks/meta"
            await client.post("/_emulator/webhooks", json={"url": url, "app_secret": APP_SECRET})
            await set_health(client, emulator, "105154286024403", {"can_send_message": "BLOCKED"})
        assert arrived.wait(10)
    [(headers, body)] = got
    expected = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    value = json.loads(body)["entry"][0]["changes"][0]["value"]
    assert value == {"display_phone_number": "+86 138 0000 0002", "event": "FLAGGED"}
