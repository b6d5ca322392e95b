"""Graph answers and Meta's error envelopes, as the emulator sends them."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

GRAPH_DOCS = "https://developers.facebook.com/docs/graph-api"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
BUC_TYPE = "whatsapp_business_management"

RATE_LIMIT_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80007: "(#80007) There have been too many calls to this WhatsApp Business account.",
    80008: "(#80008) There have been too many calls to this WhatsApp Business account.",
    130429: "(#130429) Rate limit hit",
}
_MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    10: "(#10) Application does not have permission for this action",
    200: "(#200) Permissions error",
}


@dataclass(slots=True)
class GraphAnswer:
    """One Graph answer: status, JSON body (or raw text) and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fbtrace_id() -> str:
    return secrets.token_urlsafe(18)


def graph_error(
    status: int,
    message: str,
    code: int,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    is_transient: bool | None = None,
    headers: dict[str, str] | None = None,
) -> GraphAnswer:
    """`{"error": {...}}` in Meta's field order."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    error["fbtrace_id"] = fbtrace_id()
    return GraphAnswer(status, {"error": error}, dict(headers or {}))


def invalid_token(status: int = 401) -> GraphAnswer:
    return graph_error(
        status,
        "Invalid OAuth access token - Cannot parse access token",
        190,
        headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'},
    )


def unknown_node(node_id: str, method: str = "get") -> GraphAnswer:
    return graph_error(
        400,
        f"Unsupported {method.lower()} request. Object with ID '{node_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        f"Please read the Graph API documentation at {GRAPH_DOCS}",
        100,
        error_type="GraphMethodException",
        subcode=33,
    )


def nonexisting_field(field_name: str, node_type: str) -> GraphAnswer:
    return graph_error(
        400,
        f"(#100) Tried accessing nonexisting field ({field_name}) on node type ({node_type})",
        100,
    )


def invalid_parameter(message: str) -> GraphAnswer:
    return graph_error(400, f"(#100) {message}", 100)


def unknown_path(path: str) -> GraphAnswer:
    return graph_error(400, f"Unknown path components: {path}", 2500)


def batch_error(message: str) -> GraphAnswer:
    return graph_error(400, f"(#100) {message}", 100, error_type="GraphBatchException")


def usage_headers(
    *,
    app_percent: int | None = None,
    buc_id: str | None = None,
    buc_percent: int | None = None,
    regain_minutes: int = 0,
) -> dict[str, str]:
    """`X-App-Usage` / `X-Business-Use-Case-Usage`; percentages and minutes as Meta sends them."""
    headers: dict[str, str] = {}
    if app_percent is not None:
        usage = {"call_count": app_percent, "total_time": app_percent // 4, "total_cputime": 0}
        headers["X-App-Usage"] = json.dumps(usage, separators=(",", ":"))
    if buc_id is not None and buc_percent is not None:
        entry = {
            "type": BUC_TYPE,
            "call_count": buc_percent,
            "total_cputime": buc_percent // 4,
            "total_time": buc_percent // 4,
            "estimated_time_to_regain_access": regain_minutes,
        }
        headers["X-Business-Use-Case-Usage"] = json.dumps({buc_id: [entry]}, separators=(",", ":"))
    return headers


def rate_limited(
    code: int,
    *,
    status: int = 400,
    buc_id: str | None,
    regain_minutes: int,
    retry_after: int | None = None,
) -> GraphAnswer:
    """A throttling envelope with the usage headers Meta sends with it."""
    headers = usage_headers(
        app_percent=100 if code == 4 else None,
        buc_id=buc_id,
        buc_percent=100,
        regain_minutes=regain_minutes,
    )
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    message = RATE_LIMIT_MESSAGES.get(code, f"(#{code}) Rate limit hit")
    return graph_error(status, message, code, is_transient=True, headers=headers)


def generic_error(status: int, code: int) -> GraphAnswer:
    """An error envelope for an injected fault with an arbitrary status and code."""
    if code == 190:
        return invalid_token(status)
    transient = status >= 500 or code in (1, 2)
    message = _MESSAGES.get(code, f"(#{code}) Error injected by the emulator")
    return graph_error(status, message, code, is_transient=True if transient else None)
