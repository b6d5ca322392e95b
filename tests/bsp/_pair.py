"""Two wahealths on loopback: A (the demo, emulator embedded) is B's 360dialog and CAMS.

A runs the demo scenario with the demo credentials, plus one more 360dialog key bound
to the billing number (106540352242999), and answers through `FaultGate`, which can
make its 360dialog or CAMS dialect answer 429 or 503 as those upstreams do. B has a
360dialog space (that key) and a CAMS space (the demo AccessKey, `demo-space`), both
pointing at A over http, alerts to a receiver on 127.0.0.1, and dialects of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.models import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wahealth.app import create_app
from wahealth.settings import Settings
from wahealth.testing import DEMO, demo_settings
from wahealth.testing_server import RunningServer, serve_in_thread

BILLING_KEY = "d360-billing-key"
BILLING_PHONE = "106540352242999"  # on WABA 299399000000001 (BLOCKED: 141006)
BILLING_WABA = "299399000000001"
DEMO_WABA = "102290129340398"
LIMITED_PHONE = "105154286024403"  # 8613800000002
B_ACCESS_KEY_ID = "LTAI5tBeeKeyId"
B_ACCESS_KEY_SECRET = "BeeKeySecret789"
B_D360_KEY = "d360-bee-key"
B_GRAPH_TOKEN = "graph-bee-token"
SECRET = "receiver-secret"
WAIT_SECONDS = 15.0


class FaultGate:
    """A's socket: passes everything to A, unless told to answer 429/503 for a dialect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.d360: tuple[int, int] | None = None  # (status, Retry-After seconds)
        self.cams: int | None = None  # HTTP status
        self.refused = 0  # requests answered by the gate itself

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.d360 is not None and scope["path"] == "/health_status":
                status, wait = self.d360
                self.refused += 1
                body = {"meta": {"httpCode": status, "developerMessage": "busy", "success": False}}
                response = Response(
                    orjson.dumps(body),
                    status,
                    headers={"Retry-After": str(wait)},
                    media_type="application/json",
                )
                await response(scope, receive, send)
                return
            if self.cams is not None and scope["path"] == "/" and scope["method"] == "POST":
                self.refused += 1
                body = {
                    "RequestId": "F-1",
                    "Code": "ServiceUnavailable",
                    "Message": "The request has failed due to a temporary failure.",
                }
                await Response(orjson.dumps(body), self.cams, media_type="application/json")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


@dataclass
class Receiver:
    """An alert webhook receiver: remembers every alert posted to it."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def hook(self, request: Request) -> Response:
        with self.changed:
            self.alerts.append(orjson.loads(await request.body()))
            self.changed.notify_all()
        return Response("ok")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.hook, methods=["POST"])])

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with self.changed:
            self.changed.wait_for(lambda: any(map(wanted, self.alerts)), timeout=WAIT_SECONDS)
            found = [a for a in self.alerts if wanted(a)]
        assert found, f"no matching alert among {self.alerts}"
        return found[0]


def a_settings(tmp_path: Path) -> Settings:
    settings = demo_settings(
        tmp_path / "a", cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}
    )
    demo = settings.accounts[0]
    demo.qps = 1000  # B asks often; A's own limit is not what these tests are about
    demo.d360_keys.append(demo.d360_keys[0].model_copy(update={"key": BILLING_KEY}))
    demo.d360_keys[-1].phone_number_id = BILLING_PHONE
    return settings


def b_settings(tmp_path: Path, a: RunningServer, receiver: RunningServer) -> Settings:
    (tmp_path / "b").mkdir()
    spaces = [
        {
            "id": "d360-space",
            "account": "bee",
            "upstream": "d360",
            "d360_channels": [
                {"api_key": BILLING_KEY, "base_url": a.base_url, "phone_number": "8613800000009"}
            ],
        },
        {
            "id": "cams-space",
            "account": "bee",
            "upstream": "cams",
            "badges": True,
            "cams": {
                "endpoint": f"{a.host}:{a.port}",
                "protocol": "http",
                "access_key_id": DEMO.access_key_id,
                "access_key_secret": DEMO.access_key_secret,
                "cust_space_id": DEMO.space,
                "phone_numbers": ["8613800000001", "8613800000002"],
                "templates": [{"code": "order_update", "language": "en"}],
            },
        },
    ]
    return Settings.model_validate(
        {
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'b' / 'wahealth.db'}"},
            "security": {"master_key_file": str(tmp_path / "b" / "wahealth.key")},
            "cache": {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
            "monitor": {"enabled": True, "interval_seconds": 3600},
            "alerts": {
                "allow_private_targets": True,
                "flap_window_seconds": 0,
                "group_wait_seconds": 0,
                "subscriptions": [
                    {"space": s["id"], "url": f"{receiver.base_url}/{s['id']}", "secret": SECRET}
                    for s in spaces
                ],
            },
            "spaces": spaces,
            "accounts": [
                {
                    "name": "bee",
                    "qps": 1000,
                    "access_keys": [{"id": B_ACCESS_KEY_ID, "secret": B_ACCESS_KEY_SECRET}],
                    "d360_keys": [{"key": B_D360_KEY, "phone_number_id": BILLING_PHONE}],
                    "graph_tokens": [{"token": B_GRAPH_TOKEN}],
                }
            ],
        }
    )


@dataclass
class Pair:
    a: RunningServer
    gate: FaultGate
    b: RunningServer
    receiver: Receiver
    http: httpx.Client

    def cams(self) -> Client:
        """The official SDK, pointed at B."""
        return Client(
            Config(
                access_key_id=B_ACCESS_KEY_ID,
                access_key_secret=B_ACCESS_KEY_SECRET,
                endpoint=f"{self.b.host}:{self.b.port}",
                protocol="http",
            )
        )

    def set_health(self, node_id: str, health: dict[str, Any]) -> None:
        answer = self.http.put(f"{self.a.base_url}/_emulator/nodes/{node_id}/health", json=health)
        assert answer.status_code == 200, answer.text

    def history(self, node_id: str) -> list[dict[str, Any]]:
        answer = self.http.get(
            f"{self.b.base_url}/api/v1/nodes/{node_id}/history",
            headers={"Authorization": f"Bearer {B_GRAPH_TOKEN}"},
        )
        assert answer.status_code == 200, answer.text
        data: list[dict[str, Any]] = answer.json()["data"]
        return data

    def graph(self, node_id: str) -> httpx.Response:
        return self.http.get(
            f"{self.b.base_url}/v21.0/{node_id}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {B_GRAPH_TOKEN}"},
        )

    def newest(self, node_id: str, after: str) -> dict[str, Any]:
        """The node's newest transition in B, once it is one to `after` (answers do not wait
        for history's write)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            found = self.history(node_id)
            if found and found[0]["after"] == after:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"B never recorded {node_id} becoming {after}")

    def recorded(self, node_id: str) -> list[dict[str, Any]]:
        """Wait for B's first fleet refresh to have recorded the node: its history."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            found = self.history(node_id)
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"B never recorded {node_id}")


@contextmanager
def pair(tmp_path: Path) -> Iterator[Pair]:
    receiver = Receiver()
    gate = FaultGate(create_app(a_settings(tmp_path)))
    with (
        serve_in_thread(receiver.app()) as hooks,
        serve_in_thread(gate, startup_timeout=30) as a,
        serve_in_thread(create_app(b_settings(tmp_path, a, hooks)), startup_timeout=30) as b,
        httpx.Client(timeout=10, trust_env=False) as http,
    ):
        yield Pair(a, gate, b, receiver, http)
