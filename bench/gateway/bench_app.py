"""The real wahealth app plus a bare route, served by one granian worker for the benchmark.

`/bench/bare` is the yardstick: a pure ASGI answer with a pre-serialized body behind an
API-key header check (one dict lookup, 401 without a known key). Everything else goes to
`create_app(settings)` untouched, so the dialects and the yardstick share the process, the
server, its settings and the core it is pinned to.
"""

from __future__ import annotations

import os

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from wahealth.app import app_from_environment

BARE_PATH = "/bench/bare"
BARE_KEY_HEADER = b"x-api-key"
BARE_KEY_ENV = "WAHEALTH_BENCH_BARE_KEY"

# What the 360dialog and Graph routes answer for the demo phone number, so the bodies match.
_ENTITY = "entity_type"
BARE_BODY = orjson.dumps(
    {
        "health_status": {
            "can_send_message": "AVAILABLE",
            "entities": [
                {_ENTITY: "PHONE_NUMBER", "id": "106540352242922", "can_send_message": "AVAILABLE"},
                {_ENTITY: "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"},
                {_ENTITY: "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
                {_ENTITY: "APP", "id": "634974688087057", "can_send_message": "AVAILABLE"},
            ],
        },
        "id": "106540352242922",
    }
)
_DENIED = b'{"error":"invalid api key"}'


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


_OK_HEADERS = _headers(BARE_BODY)
_DENIED_HEADERS = _headers(_DENIED)


def factory() -> ASGIApp:
    """Granian factory: settings from $WAHEALTH_CONFIG, the bare key from the environment."""
    accounts = {os.environ[BARE_KEY_ENV].encode(): "bench"}
    inner = app_from_environment()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != BARE_PATH:
            await inner(scope, receive, send)
            return
        key = next((value for name, value in scope["headers"] if name == BARE_KEY_HEADER), None)
        if key is None or accounts.get(key) is None:
            status, headers, body = 401, _DENIED_HEADERS, _DENIED
        else:
            status, headers, body = 200, _OK_HEADERS, BARE_BODY
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
