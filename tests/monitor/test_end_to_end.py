"""The whole alert chain, offline: emulator status change -> transition -> signed alert.

The gateway runs in-process with its lifespan (monitor on), on real SQLite; the
alert receiver listens on a real 127.0.0.1 socket. A change reaches the
gateway either through a query or through the Meta webhook the emulator emits.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.domain.records import AlertState, OutboxItem
from wahealth.monitor.payloads import verify
from wahealth.settings import Settings
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import emulator_state

SECRET = "receiver-secret"
APP_SECRET = "meta-app-secret"
PHONE = "106540352242922"  # AVAILABLE in the demo
TEMPLATE = "2632273056924580"  # BLOCKED (141002) in the demo
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}

BLOCKED_131 = {
    "can_send_message": "BLOCKED",
    "errors": [
        {
            "error_code": 141010,
            "error_description": "The phone number is restricted.",
            "possible_solution": "Contact support.",
        }
    ],
}


@dataclass
class Alert:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.body)
        return data

    @property
    def alert_id(self) -> str:
        return self.headers["x-wahealth-alert-id"]


@dataclass
class Receiver:
    alerts: list[Alert] = field(default_factory=list)
    fail_first: int = 0
    seen: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def hook(self, request: Request) -> Response:
        alert = Alert(request.url.path, dict(request.headers), await request.body())
        with self.changed:
            self.seen += 1
            if self.seen <= self.fail_first:
                return Response("down for maintenance", 503)
            self.alerts.append(alert)
            self.changed.notify_all()
        return Response("ok")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.hook, methods=["POST"])])

    async def wait_for(self, wanted: Callable[[Alert], bool], count: int = 1) -> list[Alert]:
        """The alerts matching `wanted`, once there are `count` of them (10 s at most)."""

        def matching() -> list[Alert]:
            return [a for a in self.alerts if wanted(a)]

        def wait() -> list[Alert]:
            with self.changed:
                self.changed.wait_for(lambda: len(matching()) >= count, timeout=10)
                return matching()

        found = await asyncio.to_thread(wait)
        assert len(found) >= count, f"only {len(found)} matching alerts arrived"
        return found


def about(node_id: str, event: str | None = None) -> Callable[[Alert], bool]:
    def wanted(alert: Alert) -> bool:
        body = alert.json
        if "alert_id" in body:  # json format
            return body["node_id"] == node_id and event in (None, body["event"])
        return node_id in body["text"] and (event is None or event in body["text"])

    return wanted


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, RunningServer]]:
    got = Receiver()
    with serve_in_thread(got.app()) as server:
        yield got, server


def settings_for(
    tmp_path: Path, base_url: str, *, monitor: bool = True, emulator_webhooks: bool = False
) -> Settings:
    return demo_settings(
        tmp_path,
        upstream={"emulator_webhooks": emulator_webhooks},
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        monitor={"enabled": monitor, "interval_seconds": 3600, "meta_calls_per_minute": 600},
        alerts={
            "allow_private_targets": True,
            "flap_window_seconds": 0,
            "subscriptions": [
                {"space": DEMO.space, "url": f"{base_url}/json", "secret": SECRET},
                {
                    "space": DEMO.space,
                    "url": f"{base_url}/slack",
                    "secret": SECRET,
                    "format": "slack",
                },
            ],
        },
        meta_webhooks={"verify_token": "verify-me", "app_secret": APP_SECRET},
    )


def assert_signed(alert: Alert) -> None:
    header = alert.headers.get("x-wahealth-signature")
    verify(header, alert.body, SECRET, now=time.time())


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Poll `check` (an async predicate) for up to 10 s."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def baseline(running: RunningApp, node_id: str) -> None:
    """Wait until the fleet refresh has recorded the node once."""

    async def recorded() -> bool:
        return await running.components.monitor.history.get(node_id) is not None

    await eventually(recorded, f"a first record of {node_id}")


async def history(running: RunningApp, node_id: str) -> list[dict[str, Any]]:
    response = await running.client.get(f"/api/v1/nodes/{node_id}/history", headers=GRAPH)
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def subscription_id(running: RunningApp, path: str) -> int:
    subscriptions = await running.components.monitor.outbox.list_subscriptions(DEMO.space)
    [found] = [s.id for s in subscriptions if s.url.endswith(path)]
    return found


async def set_health(running: RunningApp, node_id: str, health: dict[str, Any]) -> None:
    response = await running.client.put(f"/_emulator/nodes/{node_id}/health", json=health)
    assert response.status_code == 200


async def test_status_change_becomes_a_signed_alert_in_json_and_slack(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    got, server = receiver
    async with running_app(settings_for(tmp_path, server.base_url)) as running:
        await baseline(running, PHONE)
        await set_health(running, PHONE, BLOCKED_131)
        answer = await running.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        assert answer.json()["health_status"]["can_send_message"] == "BLOCKED"

        [as_json] = await got.wait_for(lambda a: a.path == "/json" and about(PHONE)(a))
        [as_slack] = await got.wait_for(lambda a: a.path == "/slack" and about(PHONE)(a))
        [transition] = [t for t in await history(running, PHONE) if t["after"] == "BLOCKED"]

    for alert in (as_json, as_slack):
        assert_signed(alert)
    body = as_json.json
    assert body["alert_id"] == as_json.alert_id
    assert (body["event"], body["before"], body["after"], body["cause"]) == (
        "BLOCKED",
        "AVAILABLE",
        "BLOCKED",
        "query",
    )
    assert body["transition_id"] == transition["id"]
    assert body["error_codes"] == ["141010"]
    assert body["errors"][0]["possible_solution"] == "Contact support."
    slack = as_slack.json
    assert set(slack) == {"text", "blocks"}
    assert "AVAILABLE → BLOCKED" in orjson.dumps(slack["blocks"]).decode()
    assert "The phone number is restricted." in orjson.dumps(slack["blocks"]).decode()
    assert as_slack.alert_id != as_json.alert_id


async def test_meta_webhook_from_the_emulator_drives_the_chain(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    got, server = receiver
    settings = settings_for(tmp_path, server.base_url, emulator_webhooks=True)
    async with running_app(settings) as running:
        services = running.components
        emulator = services.emulator
        assert emulator is not None
        # In emulator mode the emulator's webhooks reach this gateway with no set-up.
        await baseline(running, TEMPLATE)

        await set_health(running, TEMPLATE, {"can_send_message": "AVAILABLE"})
        await emulator_state(emulator).webhooks.drain()
        await services.monitor.webhooks.drain()

        [alert] = await got.wait_for(
            lambda a: a.path == "/json" and about(TEMPLATE, "RECOVERED")(a)
        )
        transitions = await history(running, TEMPLATE)
        deliveries = (await running.client.get("/_emulator/webhooks")).json()["deliveries"]

    assert deliveries == [
        {
            "url": "http://wahealth.internal/webhooks/meta",
            "field": "message_template_status_update",
            "status": 200,
        }
    ]
    assert_signed(alert)
    body = alert.json
    assert (body["before"], body["after"], body["cause"]) == ("BLOCKED", "AVAILABLE", "webhook")
    health = [t for t in transitions if t["field"] is None]
    assert (health[0]["cause"], health[0]["after"]) == ("webhook", "AVAILABLE")
    # The template became APPROVED with its health: that is a change of its status too.
    [status] = [t for t in transitions if t["field"] == "status"]
    assert (status["before"], status["after"], status["cause"]) == (
        "PENDING",
        "APPROVED",
        "webhook",
    )


async def test_forged_meta_webhook_records_nothing(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    _, server = receiver
    async with running_app(settings_for(tmp_path, server.base_url, monitor=False)) as running:
        emulator = running.components.emulator
        assert emulator is not None
        # Only a target with the wrong secret: forged webhooks.
        emulator_state(emulator).webhooks.transport = httpx.ASGITransport(app=running.app)
        await running.client.post(
            "/_emulator/webhooks",
            json={"url": "http://wahealth.test/webhooks/meta", "app_secret": "not-the-secret"},
        )
        calls_before = (await running.client.get("/_emulator/calls")).json()["total"]
        await set_health(running, TEMPLATE, {"can_send_message": "AVAILABLE"})
        await emulator_state(emulator).webhooks.drain()
        await running.components.monitor.webhooks.drain()
        deliveries = (await running.client.get("/_emulator/webhooks")).json()["deliveries"]
        calls_after = (await running.client.get("/_emulator/calls")).json()["total"]
        transitions = await history(running, TEMPLATE)
    assert [d["status"] for d in deliveries] == [403]
    assert calls_after == calls_before  # no refresh reached Meta
    assert all(t["cause"] != "webhook" for t in transitions)


async def test_alert_committed_before_a_restart_is_delivered_once_after_it(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    got, server = receiver
    # First instance: records the transition, delivers nothing (its sender never runs).
    async with running_app(settings_for(tmp_path, server.base_url, monitor=False)) as first:
        await first.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        await set_health(first, PHONE, BLOCKED_131)
        await first.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        await first.components.health.drain()  # the transition is recorded after the answer
        outbox = first.components.monitor.outbox
        json_subscription = await subscription_id(first, "/json")
        [json_alert] = [
            a
            for a in await outbox.list_alerts(AlertState.PENDING)
            if a.payload["node_id"] == PHONE and a.subscription_id == json_subscription
        ]
    assert not [a for a in got.alerts if a.alert_id == json_alert.id]

    # Second instance over the same database: delivers it, once.
    async with running_app(settings_for(tmp_path, server.base_url)) as second:
        [delivered] = await got.wait_for(lambda a: a.alert_id == json_alert.id)
        outbox = second.components.monitor.outbox

        async def marked() -> bool:
            item = await outbox.get(json_alert.id)
            return item is not None and item.state is AlertState.DELIVERED

        await eventually(marked, "the alert marked delivered")
        stored = await outbox.get(json_alert.id)
        assert await second.components.monitor.sender.deliver_due() >= 0
    assert stored is not None
    assert stored.attempts == 1
    assert_signed(delivered)
    assert delivered.json["before"] == "AVAILABLE"
    assert [a.alert_id for a in got.alerts].count(json_alert.id) == 1


async def test_receiver_down_then_back_gets_the_alert_once(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    base_url = f"http://127.0.0.1:{port}"
    got = Receiver()
    async with running_app(settings_for(tmp_path, base_url)) as running:
        await baseline(running, PHONE)
        await set_health(running, PHONE, BLOCKED_131)
        await running.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        outbox = running.components.monitor.outbox
        json_subscription = await subscription_id(running, "/json")

        async def first_failure() -> list[OutboxItem]:
            return [
                a
                for a in await outbox.list_alerts(AlertState.PENDING)
                if a.payload["node_id"] == PHONE
                and a.subscription_id == json_subscription
                and a.last_error
            ]

        async def failed_once() -> bool:
            return bool(await first_failure())

        await eventually(failed_once, "a failed first attempt")
        [waiting] = await first_failure()
        assert waiting.last_error is not None
        assert "Connect" in waiting.last_error
        with serve_in_thread(got.app(), port=port):
            [alert] = await got.wait_for(lambda a: a.alert_id == waiting.id)

            async def delivered() -> bool:
                item = await outbox.get(waiting.id)
                return item is not None and item.state is AlertState.DELIVERED

            await eventually(delivered, "the alert marked delivered")
    assert_signed(alert)
    assert [a.alert_id for a in got.alerts].count(waiting.id) == 1
