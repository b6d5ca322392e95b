"""Small helpers shared by the dialects (none of them dialect-specific)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

MAX_BODY_BYTES = 64 * 1024
# Routed to the dialects' endpoints, which refuse the ones they do not serve in their own shape.
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


class BodyTooLarge(Exception):
    """The request body exceeds MAX_BODY_BYTES."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared == "0" or (declared is None and request.method in ("GET", "HEAD")):
        return b""  # the SDK's usual empty POST: no need to drive the receive channel
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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
