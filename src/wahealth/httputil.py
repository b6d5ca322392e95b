"""HTTP helpers every adapter shares: bounded bodies, Retry-After, prebuilt answers, error tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope, Send

from wahealth.core.errors import CoreError
from wahealth.http_body import BodyTooLarge, read_bounded

R = TypeVar("R")

__all__ = [
    "EVERY_METHOD",
    "MAX_BODY_BYTES",
    "BodyTooLarge",
    "DialectRoute",
    "ErrorTable",
    "Immediate",
    "PrebuiltResponse",
    "core_error_types",
    "header",
    "read_body",
    "retry_after_header",
]

MAX_BODY_BYTES = 64 * 1024
# Routed to the dialects' endpoints, which refuse the ones they do not serve in their own shape.
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes (`BodyTooLarge`)."""
    declared = request.headers.get("content-length")
    if declared == "0" or (declared is None and request.method in ("GET", "HEAD")):
        return b""  # the SDK's usual empty POST: no need to drive the receive channel
    return await read_bounded(request, limit)


def header(scope: Scope, name: bytes) -> str | None:
    """One request header (`name` lower-case), read from the ASGI scope without parsing all.

    ASGI servers hand header names over lower-cased; repeated headers are joined by ",".
    """
    found: list[str] = []
    for key, value in scope["headers"]:
        if key == name:
            found.append(value.decode("latin-1"))
    if not found:
        return None
    return found[0] if len(found) == 1 else ",".join(found)


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, int(seconds + 0.999)))


class PrebuiltResponse(Response):
    """A response whose body and header block were built once and are reused per cache hit."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]], status_code: int = 200):
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = raw_headers  # shared: nothing downstream mutates it in place

    async def send_with(self, send: Send, *extra: tuple[bytes, bytes]) -> None:
        """Send this answer with `extra` headers added, leaving the shared block as it is."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [*self.raw_headers, *extra],
            }
        )
        await send({"type": "http.response.body", "body": self.body})


# Answers a request at once (no awaiting) given its scope and request id, or returns None.
Immediate = Callable[[Scope, str], "PrebuiltResponse | None"]


class DialectRoute(Route):
    """A dialect's route, reached by every method; `now`, if given, answers cache hits at once.

    `now` must either answer completely or leave no trace (nothing counted, nothing
    claimed) when it returns None: the request then takes the ordinary endpoint.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Any],
        *,
        now: Immediate | None = None,
    ) -> None:
        super().__init__(path, endpoint, methods=EVERY_METHOD)
        self.now = now


class ErrorTable(Generic[R]):
    """A dialect's rendering of every core error, found by walking the error's class hierarchy.

    The table maps core error types to renderers; the most specific entry wins, the way
    Starlette picks an exception handler. `missing()` lists the core error types that
    would find no entry (the completeness test asserts it is empty for each dialect).
    """

    def __init__(self, renderers: Mapping[type[CoreError], Callable[[Any], R]]) -> None:
        self._renderers = dict(renderers)

    def render(self, exc: CoreError) -> R:
        for cls in type(exc).__mro__:
            renderer = self._renderers.get(cls)
            if renderer is not None:
                return renderer(exc)
        raise LookupError(f"no rendering for {type(exc).__name__}")  # the test rules it out

    def renders(self, error_type: type[CoreError]) -> bool:
        return any(cls in self._renderers for cls in error_type.__mro__)


def core_error_types() -> list[type[CoreError]]:
    """Every core error type, the base included."""
    found: list[type[CoreError]] = []
    pending: list[type[CoreError]] = [CoreError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
