"""Faults the emulator cannot produce itself, put in front of it; and the gateway pointed at it.

The emulator's own fault queue (`POST /_emulator/faults`) covers whole answers: a
status, a code, a raw body, a delay. What it cannot do is fail *part* of a batch, so
`UpstreamTap` wraps the emulator (an ASGI app) and rewrites chosen sub-responses of
a batch answer; it also counts requests as they *arrive*, since a call the gateway
gave up on (a timeout) is counted by the emulator only once its delay is over.

`upstream_on_socket` serves the wrapped emulator on a loopback port and
`gateway_settings` points the gateway at it as if it were Meta (`upstream.kind =
"meta"`): the Graph client then runs on real sockets, which is what makes timeouts
real (httpx's in-process ASGI transport has none). Everything goes through settings;
nothing inside the built app is touched.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wahealth.bootstrap import DEMO_META_TOKEN
from wahealth.settings import Settings
from wahealth.testing import demo_settings
from wahealth.testing_server import serve_in_thread

# Sub-responses to put in place of the real one for a node.
SUB_500 = {
    "code": 500,
    "headers": [],
    "body": json.dumps(
        {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}}
    ),
}
SUB_NOT_JSON = {"code": 200, "headers": [], "body": "<html>oops</html>"}
SUB_DEEP = {"code": 200, "headers": [], "body": "[" * 5000 + "]" * 5000}


class UpstreamTap:
    """ASGI wrapper around the emulator: counts arrivals, rewrites batch sub-responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrivals: Counter[str] = Counter()  # by path, at arrival, admin calls excluded
        self.batch_faults: dict[str, dict[str, Any]] = {}  # node id -> sub-response
        self.batches: list[list[str]] = []  # the node ids of each batch POST, as it arrived

    def reset(self) -> None:
        self.arrivals.clear()
        self.batch_faults.clear()
        self.batches.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        self.arrivals[scope["path"]] += 1
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        nodes = _batch_nodes(body)
        self.batches.append(nodes)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        if not self.batch_faults:
            await self.app(scope, replay, send)
            return
        answer: dict[str, Any] = {}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["start"] = message
            else:
                answer["body"] = answer.get("body", b"") + message.get("body", b"")

        await self.app(scope, replay, capture)
        rewritten = self._rewrite(nodes, answer.get("body", b""))
        start = dict(answer["start"])
        start["headers"] = [
            (k, str(len(rewritten)).encode() if k.lower() == b"content-length" else v)
            for k, v in start["headers"]
        ]
        await send(start)
        await send({"type": "http.response.body", "body": rewritten})

    def _rewrite(self, nodes: list[str], body: bytes) -> bytes:
        try:
            items = json.loads(body)
        except ValueError:
            return body
        if not isinstance(items, list) or len(items) != len(nodes):
            return body
        return json.dumps(
            [self.batch_faults.get(node, item) for node, item in zip(nodes, items, strict=True)]
        ).encode()


def _batch_nodes(form: bytes) -> list[str]:
    """The node id of each sub-request of a form-encoded batch, in order."""
    batch = parse_qs(form.decode("utf-8", "replace")).get("batch", ["[]"])[0]
    try:
        requests = json.loads(batch)
    except ValueError:
        return []
    urls = [str(r.get("relative_url", "")) if isinstance(r, dict) else "" for r in requests]
    return [url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] for url in urls]


@contextmanager
def upstream_on_socket(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on a loopback port; yields its base URL."""
    with serve_in_thread(app, lifespan="off") as server:
        yield server.base_url


def gateway_settings(
    tmp_path: Path, upstream_url: str, *, upstream: dict[str, Any] | None = None, **sections: Any
) -> Settings:
    """The demo gateway with the emulator at `upstream_url` standing in for Meta."""
    return demo_settings(
        tmp_path,
        upstream={
            "kind": "meta",
            "base_url": upstream_url,
            "access_token": DEMO_META_TOKEN,
            **(upstream or {}),
        },
        **sections,
    )
