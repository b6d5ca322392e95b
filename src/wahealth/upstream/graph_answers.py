"""Reading Graph's answers: bounded JSON, health reports, and the items of a batch answer.

A batch answer is a JSON array, one item per sub-request in request order, each
`{"code", "headers", "body"}` with the body a JSON-encoded string, as Meta sends it.
Each item becomes its node's report or the error for its sub-request; nothing in one
item can fail another.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from wahealth.domain import HealthReport, MalformedHealthStatus, parse_health_status
from wahealth.http_body import NotJson, loads_bounded
from wahealth.upstream.errors import (
    GraphBadResponse,
    GraphError,
    GraphTransientError,
    graph_error_from,
)

# A health answer is a few KiB and five levels deep; anything far beyond is not an answer,
# and would cost memory here and fail later when the report is rendered (orjson stops at 255).
MAX_JSON_DEPTH = 32


def decode_json(raw: bytes | str) -> Any:
    """Graph's JSON, or GraphBadResponse if it is not JSON or is nested deeper than an answer."""
    try:
        return loads_bounded(raw, MAX_JSON_DEPTH)
    except NotJson as exc:
        raise GraphBadResponse(f"Graph's answer is unusable: {exc}") from None


def batch_json(raw: bytes) -> Any:
    """A batch answer's JSON. Its depth is not walked: the envelope is neither kept nor
    rendered, only its items' status, headers and body strings are read, and each body is
    decoded (and bounded) on its own by `decode_json`."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GraphBadResponse(f"Graph's answer is unusable: the body is not JSON: {exc}") from None


def health_report(node_id: str, payload: Any, fetched_at: datetime | None = None) -> HealthReport:
    if not isinstance(payload, dict):
        raise GraphBadResponse(f"health of {node_id}: not a JSON object")
    try:
        return parse_health_status(
            payload, fetched_at=fetched_at or datetime.now(UTC), node_id=node_id
        )
    except MalformedHealthStatus as exc:
        raise GraphBadResponse(f"health of {node_id}: {exc}") from exc


def _sub_headers(raw: Any) -> httpx.Headers:
    """A batch item's `headers` list; entries that cannot be HTTP headers are dropped."""
    if not isinstance(raw, list):
        return httpx.Headers()
    pairs = []
    for header in raw:
        if not isinstance(header, dict):
            continue
        name, value = header.get("name"), header.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(name, str) and isinstance(value, str) and _header_safe(name, value):
            pairs.append((name, value))
    return httpx.Headers(pairs)


def _header_safe(name: str, value: str) -> bool:
    return name.isascii() and value.isascii() and name.isprintable() and value.isprintable()


def batch_item(node_id: str, item: Any, fetched_at: datetime) -> HealthReport | GraphError:
    if item is None:
        return GraphTransientError(f"batch sub-request for {node_id} got no answer")
    status = item.get("code") if isinstance(item, dict) else None
    if not isinstance(status, int) or isinstance(status, bool):
        return GraphBadResponse(f"batch answer for {node_id} is not a sub-response")
    body = item.get("body")
    try:
        payload = decode_json(body) if isinstance(body, str) else None
    except GraphBadResponse as exc:
        if 200 <= status < 300:
            return GraphBadResponse(f"batch answer for {node_id}: {exc.message}")
        payload = None
    if 200 <= status < 300:
        if payload is None:
            return GraphBadResponse(f"batch answer for {node_id} has no JSON body")
        if not (isinstance(payload, dict) and "error" in payload):
            try:
                return health_report(node_id, payload, fetched_at)
            except GraphBadResponse as exc:
                return exc
    # Only an error reads its headers (Retry-After, usage): a success has no use for them.
    return graph_error_from(status, payload, _sub_headers(item.get("headers")))
