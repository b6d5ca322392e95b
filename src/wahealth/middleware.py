"""Cross-cutting ASGI middleware: a request id on every response, bound into the logs."""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from time import perf_counter

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, WrappedLogger

from wahealth.httputil import DialectRoute, Immediate, PrebuiltResponse

_log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = b"x-request-id"

request_id_var: ContextVar[str | None] = ContextVar("wahealth_request_id", default=None)

# A random per-process prefix and a counter make unique, UUID-shaped ids without
# paying for os.urandom and uuid formatting on every request.
_PREFIX = os.urandom(10).hex().upper()
_counter = itertools.count(1)


_ID_HEAD = f"{_PREFIX[:8]}-{_PREFIX[8:12]}-{_PREFIX[12:16]}-{_PREFIX[16:20]}-"


def new_request_id() -> str:
    """A unique, upper-case, UUID-shaped request id (as Alibaba Cloud writes them)."""
    return f"{_ID_HEAD}{next(_counter) & 0xFFFFFFFFFFFF:012X}"


def add_request_id(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """structlog processor: put the current request id into every log line."""
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


class RequestIdMiddleware:
    """Gives each HTTP request an id (`scope["state"]["request_id"]`) and echoes it in a header.

    When `observe` is given it also reports each request's path, status and duration
    (metrics), from the same response wrapper, so the hot path pays for one layer.
    """

    def __init__(
        self, app: ASGIApp, observe: Callable[[str, int, float], None] | None = None
    ) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500  # what the server error middleware answers if the app raises
        start = perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            if self.observe is not None:
                self.observe(scope["path"], status, perf_counter() - start)


Endpoint = Callable[[Request], Awaitable[Response]]
Observe = Callable[[str, int, float], None]
Target = tuple[Endpoint, Immediate | None]


class DirectDialects:
    """Serves the hot dialect paths straight from their endpoints, outside Starlette's stack.

    Starlette's error middleware, the request-id middleware, the exception middleware and
    the router cost more per request than a cached answer itself. The dialect endpoints
    answer their own errors, so their paths get the request id, the metrics and a last-
    resort 500 here, in one layer; `match` finds the endpoint (None: not a dialect path).
    Routes are exact paths, or a prefix ending in one `{name:path}` parameter.
    """

    def __init__(self, routes: Sequence[Route], observe: Observe | None = None) -> None:
        self._observe = observe
        self._exact: dict[str, Target] = {}
        self._prefixed: list[tuple[str, str, Target]] = []
        for route in routes:
            target = (route.endpoint, route.now if isinstance(route, DialectRoute) else None)
            prefix, brace, param = route.path.partition("{")
            if not brace:
                self._exact[route.path] = target
            elif param.endswith(":path}") and "{" not in param:
                self._prefixed.append((prefix, param.removesuffix(":path}"), target))
            else:
                raise ValueError(f"DirectDialects cannot match {route.path!r}")

    def match(self, scope: Scope) -> Target | None:
        path: str = scope["path"]
        target = self._exact.get(path)
        if target is not None:
            return target
        for prefix, name, candidate in self._prefixed:
            if path.startswith(prefix):
                scope["path_params"] = {name: path[len(prefix) :]}
                return candidate
        return None

    async def serve(self, target: Target, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint, now = target
        request_id = new_request_id()
        start = perf_counter()
        if now is not None:
            try:
                answered = now(scope, request_id)
            except Exception as exc:  # noqa: BLE001 — the endpoint answers instead
                _log.error("immediate answer failed", path=scope["path"], exc_info=exc)
                answered = None
            if answered is not None:
                await answered.send_with(send, (REQUEST_ID_HEADER, request_id.encode()))
                if self._observe is not None:
                    self._observe(scope["path"], answered.status_code, perf_counter() - start)
                return
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500
        try:
            try:
                response = await endpoint(Request(scope, receive))
            except Exception as exc:  # noqa: BLE001 — never a traceback on the wire
                _log.error("unhandled error", path=scope["path"], exc_info=exc)
                response = JSONResponse({"error": "internal error"}, status_code=500)
            status = response.status_code
            if isinstance(response, PrebuiltResponse):
                await response.send_with(send, (REQUEST_ID_HEADER, request_id.encode()))
            else:
                response.raw_headers.append((REQUEST_ID_HEADER, request_id.encode()))
                await response(scope, receive, send)
        finally:
            request_id_var.reset(token)
            if self._observe is not None:
                self._observe(scope["path"], status, perf_counter() - start)
