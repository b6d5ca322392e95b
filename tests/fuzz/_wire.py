"""What every fuzzed answer must look like: below 500, nothing of Python on the wire, its shape.

The shape checks take the whole `httpx.Response` and the bytes that were sent, so
an echo of the request (Graph echoes unknown path components, for one) is never
mistaken for a leaked exception name.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
from tests.gateway._wire import CAMS_ERROR_KEYS, SEED_000_KEYS

# A traceback, a frame line, or a name shaped like a Python exception class.
_PYTHON = re.compile(
    rb"Traceback \(most recent call last\)|File \"[^\"]*\", line [0-9]+"
    rb"|\b[A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning|Interrupt|Exit)\b"
)
# Exception-shaped names that are part of a wire format: Graph's error types, CAMS codes.
_WIRE_NAMES = frozenset({b"OAuthException", b"GraphMethodException", b"GraphBatchException"})
_STATUSES = frozenset({"AVAILABLE", "LIMITED", "BLOCKED"})


def sent_bytes(request: httpx.Request) -> bytes:
    """Everything the client sent, raw and percent-decoded: what an answer may echo."""
    raw = bytes(request.url.raw_path) + b"".join(k + b": " + v for k, v in request.headers.raw)
    body = request.content
    return raw + body + unquote_to_bytes(raw) + unquote_to_bytes(body.replace(b"+", b" "))


def no_python_on_the_wire(response: httpx.Response, max_status: int = 499) -> None:
    """At most `max_status`, and no traceback or exception class name in body or headers."""
    assert response.status_code <= max_status, (response.status_code, response.content[:300])
    wire = response.content + b"\n".join(k + b": " + v for k, v in response.headers.raw)
    sent = sent_bytes(response.request)
    for match in _PYTHON.finditer(wire):
        word = match.group(0)
        assert word in _WIRE_NAMES or word in sent, (word, response.content[:300])


def _json_object(response: httpx.Response) -> dict[str, Any]:
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code,
        response.headers.get("content-type"),
        response.content[:200],
    )
    parsed = json.loads(response.content)
    assert isinstance(parsed, dict), parsed
    return parsed


def cams_answer(response: httpx.Response, max_status: int = 499) -> dict[str, Any]:
    """A CAMS body: seed 000's success keys, or Alibaba's error keys; RequestId as the header."""
    no_python_on_the_wire(response, max_status)
    body = _json_object(response)
    assert body["RequestId"] == response.headers["x-request-id"]
    if response.status_code == 200:
        assert set(body) == SEED_000_KEYS, body
        assert body["Code"] == "OK"
        assert body["Data"]["CanSendMessage"] in _STATUSES
    else:
        assert set(body) >= CAMS_ERROR_KEYS, body
        assert isinstance(body["Code"], str)
        assert body["Code"]
        assert isinstance(body["Message"], str)
    return body


def meta_health(body: dict[str, Any]) -> None:
    """`{"health_status": {"can_send_message", "entities"}, "id"}`, as Meta answers."""
    assert set(body) == {"health_status", "id"}, body
    assert body["health_status"]["can_send_message"] in _STATUSES
    assert isinstance(body["health_status"]["entities"], list)


def d360_answer(response: httpx.Response, max_status: int = 499) -> dict[str, Any]:
    no_python_on_the_wire(response, max_status)
    body = _json_object(response)
    if response.status_code == 200:
        meta_health(body)
    else:
        assert set(body) == {"meta"}, body
        assert body["meta"]["httpCode"] == response.status_code
        assert body["meta"]["success"] is False
        assert isinstance(body["meta"]["developerMessage"], str)
    return body


def graph_answer(response: httpx.Response, max_status: int = 499) -> dict[str, Any]:
    """A Graph body: a node (its fields and `id`), an edge page (`data`), or Meta's error."""
    no_python_on_the_wire(response, max_status)
    body = _json_object(response)
    if response.status_code == 200:
        if "data" in body:
            assert isinstance(body["data"], list), body
        else:
            assert isinstance(body.get("id"), str), body
        if "health_status" in body:
            meta_health({"health_status": body["health_status"], "id": body["id"]})
    else:
        assert set(body) == {"error"}, body
        error = body["error"]
        assert {"message", "type", "code", "fbtrace_id"} <= set(error), error
        assert isinstance(error["message"], str)
        assert isinstance(error["code"], int)
    return body


def json_error_or(response: httpx.Response, ok_keys: set[str] | None = None) -> dict[str, Any]:
    """A plain-JSON API: `{"error": "..."}` on failure; on success, `ok_keys` if given."""
    no_python_on_the_wire(response)
    body = _json_object(response)
    if response.status_code < 300:
        if ok_keys is not None:
            assert set(body) == ok_keys, body
    else:
        assert isinstance(body.get("error"), str), body
        assert set(body) <= {"error", "details"}, body
    return body


def html_page(response: httpx.Response) -> str:
    no_python_on_the_wire(response)
    assert response.headers["content-type"].startswith("text/html"), response.headers
    text = response.text
    assert text.startswith("<!doctype html>"), text[:100]
    assert text.rstrip().endswith("</html>"), text[-100:]
    return text
