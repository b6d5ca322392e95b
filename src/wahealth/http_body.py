"""Read a request body without buffering more than a limit; decode bounded JSON.

Every endpoint that reads a body uses `read_bounded`, so a client cannot make the
server hold more than `limit` bytes for it: a declared `Content-Length` over the
limit is refused before anything is read, and a chunked body is refused at the
first chunk past it. It takes a Starlette `Request` or a bare ASGI `receive`.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

DEFAULT_LIMIT = 64 * 1024
# Deep enough for any body we accept; far below where parsers and renderers give up.
DEFAULT_MAX_DEPTH = 32


class BodyTooLarge(Exception):
    """The body is longer than the limit (answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


class NotJson(ValueError):
    """The body is not JSON, or is nested deeper than allowed (answer 400)."""


async def read_bounded(source: Request | Receive, limit: int = DEFAULT_LIMIT) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed `limit` bytes.

    A client that disconnects mid-body gets what was received (Starlette raises
    ClientDisconnect from a Request; a bare receive just ends).
    """
    if isinstance(source, Request):
        declared = source.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        return await _collect(_request_chunks(source), limit)
    return await _collect(_receive_chunks(source), limit)


async def _request_chunks(request: Request) -> Any:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        return


async def _receive_chunks(receive: Receive) -> Any:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _collect(chunks: Any, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


def loads_bounded(raw: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """JSON from `raw`, or NotJson if it is not JSON or nests deeper than `max_depth`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotJson(f"the body is not JSON: {exc}") from None
    if _containers_at_most(raw, max_depth):
        return value  # fewer containers than levels allowed: it cannot nest deeper
    if nesting_exceeds(value, max_depth):
        raise NotJson(f"the body nests JSON deeper than {max_depth} levels")
    return value


def _containers_at_most(raw: bytes | str, limit: int) -> bool:
    """Whether `raw` has at most `limit` opening brackets (counted in C: no walk needed).

    Brackets inside strings count too, so this only ever says "shallow enough" safely.
    """
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{") <= limit
    return raw.count(b"[") + raw.count(b"{") <= limit


def nesting_exceeds(value: Any, max_depth: int) -> bool:
    """True if lists/objects in `value` nest deeper than `max_depth` (checked without recursion).

    Level by level, keeping only the containers of each: scalars, most of a document, are
    dropped by a comprehension rather than visited one by one.
    """
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below.extend(child for child in children if type(child) in _CONTAINERS)
        level = below
    return False


_CONTAINERS = (dict, list)
