"""The whole gateway on a real loopback socket, as a client sees it, with a tap on its traffic.

`serve_gateway` builds the app with `create_app(demo_settings(...))`, runs it under
uvicorn with its lifespan (`serve_in_thread`), waits for `/healthz` to say 200 and
hands back a `ServedGateway`: where it listens, the `Components` it built, SDK and
HTTP clients for it, the emulator's admin API, and a way to run a coroutine on
the server's own event loop (the storage engine belongs to that loop).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.models import Config
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from wahealth.app import Components, Overrides, create_app
from wahealth.testing import DEMO, demo_settings
from wahealth.testing_server import RunningServer, serve_in_thread

T = TypeVar("T")

READY_TIMEOUT = 10.0
# High enough that a module's tests never throttle each other; the rate-limit tests
# run their own server at the documented 5 requests per second.
UNTHROTTLED_QPS = 10_000


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request as the app received it, and the answer it sent (status, headers, body)."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    status: int
    response_headers: tuple[tuple[bytes, bytes], ...]
    response_body: bytes

    def header(self, name: str) -> bytes | None:
        wanted = name.lower().encode()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def response_header(self, name: str) -> bytes | None:
        wanted = name.lower().encode()
        return next((v for k, v in self.response_headers if k.lower() == wanted), None)


class Tap:
    """ASGI wrapper: remembers the server's event loop and every HTTP exchange, unchanged."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.exchanges: deque[Exchange] = deque(maxlen=5000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.loop = asyncio.get_running_loop()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: dict[str, Any] = {}
        body: list[bytes] = []

        async def tapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["status"] = message["status"]
                started["headers"] = tuple(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Recorded before the client can have the whole answer, so a test that
                    # got its response always finds the exchange.
                    self.exchanges.append(_exchange(scope, started, b"".join(body)))
            await send(message)

        await self.app(scope, receive, tapped)


def _exchange(scope: Scope, started: dict[str, Any], body: bytes) -> Exchange:
    return Exchange(
        method=scope["method"],
        raw_path=scope.get("raw_path") or scope["path"].encode(),
        query_string=scope.get("query_string", b""),
        headers=tuple(scope["headers"]),
        status=started["status"],
        response_headers=started["headers"],
        response_body=body,
    )


@dataclass
class ServedGateway:
    """A running gateway and the means to talk to it and to look inside."""

    server: RunningServer
    app: Starlette
    tap: Tap

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def endpoint(self) -> str:
        """What the CAMS SDK takes as `Config.endpoint`: host and port, no scheme."""
        return f"{self.server.host}:{self.server.port}"

    @property
    def components(self) -> Components:
        components: Components = self.app.state.components
        return components

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coro` on the server's event loop (storage and caches live there)."""
        assert self.tap.loop is not None, "the lifespan did not run"
        return asyncio.run_coroutine_threadsafe(coro, self.tap.loop).result(timeout)

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, trust_env=False, timeout=10.0, **kwargs)

    def ahttp(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, trust_env=False, timeout=10.0, **kwargs)

    def cams(
        self, key_id: str = DEMO.access_key_id, secret: str = DEMO.access_key_secret
    ) -> Client:
        """The official, unmodified CAMS SDK client pointed at this server."""
        return Client(
            Config(
                access_key_id=key_id,
                access_key_secret=secret,
                endpoint=self.endpoint,
                protocol="http",
            )
        )

    def exchange(self, request_id: str) -> Exchange:
        """The exchange whose response carried this x-request-id (it must exist)."""
        wanted = request_id.encode()
        for exchange in reversed(self.tap.exchanges):
            if exchange.response_header("x-request-id") == wanted:
                return exchange
        raise AssertionError(f"no response carried x-request-id {request_id}")

    def emulator_calls(self) -> dict[str, Any]:
        """The Meta emulator's call counts (`GET /_emulator/calls`)."""
        with self.http() as http:
            response = http.get("/_emulator/calls")
        response.raise_for_status()
        calls: dict[str, Any] = response.json()
        return calls

    def reset_emulator_calls(self) -> None:
        with self.http() as http:
            http.delete("/_emulator/calls").raise_for_status()

    def health_calls(self, node_id: str) -> int:
        """How many `GET /<node>` (health) calls reached the emulator since the last reset."""
        count: int = self.emulator_calls()["by_path"].get(f"/{node_id}", 0)
        return count

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll `/healthz` until 200: the lifespan (migrations, sync) has finished."""
        deadline = time.monotonic() + timeout
        with self.http() as http:
            while True:
                if http.get("/healthz").status_code == 200:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"/healthz not 200 within {timeout}s")
                time.sleep(0.02)


@contextmanager
def serve_gateway(
    tmp_path: Path,
    *,
    qps: int = 5,
    overrides: Overrides | None = None,
    **sections: Any,
) -> Iterator[ServedGateway]:
    """The demo gateway (DEMO's accounts at `qps`) served on 127.0.0.1 until the block ends.

    `sections` replace whole settings sections, as in `demo_settings`; `overrides`
    replace parts (e.g. a rate limiter with a steerable clock).
    """
    settings = demo_settings(tmp_path, **sections)
    for account in settings.accounts:
        account.qps = qps
    app = create_app(settings, overrides=overrides)
    tap = Tap(app)
    with serve_in_thread(tap, lifespan="on") as server:
        served = ServedGateway(server, app, tap)
        served.wait_ready()
        yield served
