"""The access log (`[server] access_log = true`): one structured line per request.

Fields: request id, dialect (`cams`, `d360`, `graph`, `gate`, or `web` for every other
path), method, path (never the query string, which may carry `access_token`), status,
latency in milliseconds, the client's address, and the account when the request got as
far as the rate limiter (which sees every authenticated request's account). Never a
header, a body, a token, a key or a signature. `/healthz` and `/readyz` are not logged:
a load balancer asks them every second or so.

Everything here is built only when the log is on: with it off, `create_app` keeps the
plain dialect server and limiter, and a request pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from time import perf_counter
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wahealth.core.immediate import ObservedLimiter, observed_limiter
from wahealth.core.ports import RateLimiter
from wahealth.middleware import REQUEST_ID_HEADER, DirectDialects, Target

ACCESS_LOGGER = "wahealth.access"
UNLOGGED_PATHS = frozenset({"/healthz", "/readyz"})

# The request being logged: the limiter appends the account it was asked about.
_accounts: ContextVar[list[str] | None] = ContextVar("wahealth_access_accounts", default=None)


def _note(account: str) -> None:
    accounts = _accounts.get()
    if accounts is not None:
        accounts.append(account)


def account_noting(inner: RateLimiter) -> ObservedLimiter:
    """`inner`, telling the access log which account each request is for."""
    return observed_limiter(inner, asked=_note)


class AccessLog:
    """Writes the access log lines (structlog, logger `wahealth.access`, level info)."""

    def __init__(self) -> None:
        self._log = structlog.get_logger(ACCESS_LOGGER)

    async def around(
        self,
        dialect: str,
        scope: Scope,
        send: Send,
        serve: Callable[[Send], Awaitable[None]],
    ) -> None:
        """Run `serve` with a send that notes the status and request id, then log the line."""
        status = 500  # what the server answers if the app raises
        request_id: str | None = None

        async def noting_send(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == REQUEST_ID_HEADER:
                        request_id = value.decode("latin-1")
            await send(message)

        accounts: list[str] = []
        token = _accounts.set(accounts)
        start = perf_counter()
        try:
            await serve(noting_send)
        finally:
            latency_ms = round((perf_counter() - start) * 1000, 2)
            _accounts.reset(token)
            client = scope.get("client")
            self._log.info(
                "request",
                request_id=request_id,
                dialect=dialect,
                account=accounts[0] if accounts else None,
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                latency_ms=latency_ms,
                client=client[0] if client else None,
            )


class LoggedDialects:
    """The dialect server (`DirectDialects`) with each request written to the access log."""

    def __init__(
        self, inner: DirectDialects, dialect_of: Mapping[Any, str], log: AccessLog
    ) -> None:
        self.match = inner.match
        self._serve = inner.serve
        self._dialect_of = dict(dialect_of)  # endpoint → dialect name
        self._log = log

    async def serve(self, target: Target, scope: Scope, receive: Receive, send: Send) -> None:
        async def serve(noting_send: Send) -> None:
            await self._serve(target, scope, receive, noting_send)

        dialect = self._dialect_of.get(target[0], "web")
        await self._log.around(dialect, scope, send, serve)


class AccessLogMiddleware:
    """ASGI middleware: the access log for every other HTTP path (dashboard, API, webhooks)."""

    def __init__(self, app: ASGIApp, log: AccessLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLOGGED_PATHS:
            await self.app(scope, receive, send)
            return

        async def serve(noting_send: Send) -> None:
            await self.app(scope, receive, noting_send)

        await self.log.around("web", scope, send, serve)
