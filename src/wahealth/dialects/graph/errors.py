"""Graph's error envelope for the read API and batches: every core error, by one table.

A rendering is a `GraphFailure` (status, body, headers), so the same error reads the
same whether it answers a request or one item of a batch.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

from wahealth.core.errors import (
    AccessDenied,
    CoreError,
    InvalidRequest,
    NodeNotFound,
    RequestTooLarge,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    UpstreamUnavailable,
)
from wahealth.core.graph_fields import AliasesNotFound, BadBatch, MetaRefused, NonexistingField
from wahealth.httputil import ErrorTable, retry_after_header

JSON = "application/json; charset=UTF-8"
GRAPH_DOCS = "https://developers.facebook.com/docs/graph-api"


@dataclass(frozen=True, slots=True)
class GraphFailure:
    """One Graph error answer: HTTP status, `{"error": {...}}` and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        trace = self.body["error"]["fbtrace_id"]
        return Response(
            orjson.dumps(self.body),
            status_code=self.status,
            headers={"x-fb-trace-id": trace, **self.headers},
            media_type=JSON,
        )


def failure(
    status: int,
    message: str,
    code: int,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    headers: dict[str, str] | None = None,
) -> GraphFailure:
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = secrets.token_urlsafe(16)
    return GraphFailure(status, {"error": error}, dict(headers or {}))


def unsupported(node_id: str, method: str = "GET") -> GraphFailure:
    """Meta's "does not exist" (code 100, subcode 33): unknown, not the caller's, or no such call."""
    return failure(
        400,
        f"Unsupported {method.lower()} request. Object with ID '{node_id[:64]}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        f"Please read the Graph API documentation at {GRAPH_DOCS}",
        100,
        error_type="GraphMethodException",
        subcode=33,
    )


def unknown_path(path: str) -> GraphFailure:
    return failure(400, f"Unknown path components: {path[:100]}", 2500)


def _unavailable(exc: UpstreamUnavailable | ServiceUnavailable) -> GraphFailure:
    # Meta's code 2, "temporary issue due to downtime": Graph clients retry it.
    return failure(
        503,
        "An unexpected error has occurred. Please retry your request later.",
        2,
        headers={"Retry-After": retry_after_header(exc.retry_after)},
    )


def _refused(exc: MetaRefused) -> GraphFailure:
    status = exc.http_status if 400 <= exc.http_status < 500 else 400
    return failure(status, str(exc), exc.code, error_type=exc.error_type, subcode=exc.subcode)


# Rendered per node id: "does not exist" names the node, as Meta's message does.
ERRORS: ErrorTable[Any] = ErrorTable(
    {
        Unauthenticated: lambda exc: (
            lambda node_id: failure(401, f"Invalid OAuth access token - {exc}", 190)
        ),
        Throttled: lambda exc: (
            lambda node_id: failure(
                429,
                "(#4) Application request limit reached",
                4,
                headers={"Retry-After": retry_after_header(exc.retry_after)},
            )
        ),
        NodeNotFound: lambda exc: unsupported,
        AccessDenied: lambda exc: unsupported,
        AliasesNotFound: lambda exc: lambda node_id: failure(400, f"(#803) {exc}", 803),
        InvalidRequest: lambda exc: lambda node_id: failure(400, f"(#100) {exc}", 100),
        NonexistingField: lambda exc: lambda node_id: failure(400, f"(#100) {exc}", 100),
        MetaRefused: lambda exc: lambda node_id: _refused(exc),
        BadBatch: lambda exc: (
            lambda node_id: failure(400, f"(#100) {exc}", 100, error_type="GraphBatchException")
        ),
        RequestTooLarge: lambda exc: lambda node_id: failure(413, f"(#100) {exc}", 100),
        UpstreamUnavailable: lambda exc: lambda node_id: _unavailable(exc),
        ServiceUnavailable: lambda exc: lambda node_id: _unavailable(exc),
    }
)


def render(exc: CoreError, node_id: str = "") -> GraphFailure:
    """The Graph answer for a core error raised while reading `node_id`."""
    rendered: GraphFailure = ERRORS.render(exc)(node_id)
    return rendered
