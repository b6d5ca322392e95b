"""`GET /v{N}.{M}/{node_id}?fields=health_status` — Meta's Graph API shape and error envelope."""

from __future__ import annotations

import re
import secrets
from urllib.parse import unquote_plus

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.core.errors import (
    AccessDenied,
    CoreError,
    InvalidRequest,
    NodeNotFound,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    UpstreamUnavailable,
)
from wahealth.core.gateway import Gateway
from wahealth.dialects.common import EVERY_METHOD, retry_after_header
from wahealth.dialects.meta_shape import MetaAnswerCache

_JSON = "application/json; charset=UTF-8"
_QUERY_KEYS = frozenset({"fields", "access_token"})
_VERSION = re.compile(r"[0-9]+\.[0-9]+", re.ASCII)
_METHODS = ("GET", "HEAD")


def _error(
    status: int,
    message: str,
    error_type: str,
    code: int,
    *,
    subcode: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, object] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    trace = secrets.token_urlsafe(16)
    error["fbtrace_id"] = trace
    all_headers = {"x-fb-trace-id": trace, **(headers or {})}
    return Response(
        orjson.dumps({"error": error}), status_code=status, headers=all_headers, media_type=_JSON
    )


def _unsupported(node_id: str, method: str = "GET") -> Response:
    return _error(
        400,
        f"Unsupported {method.lower()} request. Object with ID '{node_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        "GraphMethodException",
        100,
        subcode=33,
    )


def _translate(exc: CoreError, node_id: str) -> Response:
    if isinstance(exc, Unauthenticated):
        return _error(401, f"Invalid OAuth access token - {exc}", "OAuthException", 190)
    if isinstance(exc, Throttled):
        return _error(
            429,
            "(#4) Application request limit reached",
            "OAuthException",
            4,
            headers={"Retry-After": retry_after_header(exc.retry_after)},
        )
    if isinstance(exc, NodeNotFound | AccessDenied):
        return _unsupported(node_id)
    if isinstance(exc, InvalidRequest):
        return _error(400, f"(#100) {exc}", "OAuthException", 100)
    if isinstance(exc, UpstreamUnavailable | ServiceUnavailable):
        # Meta's code 2, "temporary issue due to downtime": Graph clients retry it.
        headers = (
            None
            if exc.retry_after is None
            else {"Retry-After": retry_after_header(exc.retry_after)}
        )
        return _error(
            503,
            "An unexpected error has occurred. Please retry your request later.",
            "OAuthException",
            2,
            headers=headers,
        )
    return _error(500, "An unknown error occurred", "OAuthException", 1)


def _query(request: Request) -> dict[str, str]:
    """`fields` and `access_token` from the query string (first value wins).

    Starlette's QueryParams parses everything into a multidict; on the hot path
    we only need two keys, so a plain split is several times cheaper.
    """
    found: dict[str, str] = {}
    raw = request.scope.get("query_string", b"").decode("latin-1")
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        if name in _QUERY_KEYS and name not in found:
            found[name] = unquote_plus(value, encoding="utf-8", errors="replace")
    return found


def _token(request: Request, query: dict[str, str]) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in {"bearer", "oauth"} and value.strip():
        return value.strip()
    return query.get("access_token")


class GraphEndpoint:
    def __init__(self, gateway: Gateway):
        self._gateway = gateway
        self._answers = MetaAnswerCache(_JSON)

    async def handle(self, request: Request) -> Response:
        gateway = self._gateway
        version, _, path = request.path_params["after_v"].partition("/")
        node_id, _, rest = path.partition("/")
        if not _VERSION.fullmatch(version):
            return _error(400, f"Unknown path components: /v{version}", "OAuthException", 2500)
        if not node_id or rest:
            # Only the health_status field of a node is served: no edges, no root.
            return _error(400, f"Unknown path components: /{path}", "OAuthException", 2500)
        if request.method not in _METHODS:
            return _unsupported(node_id, request.method)
        try:
            query = _query(request)
            principal = await gateway.directory.graph_principal(_token(request, query))
            await gateway.admit(principal)
            fields = {f.strip() for f in query.get("fields", "").split(",")}
            if "health_status" not in fields:
                raise InvalidRequest("this gateway serves only fields=health_status")
            if not node_id.isdigit():
                raise NodeNotFound(node_id)
            await gateway.directory.check_node(principal, node_id)
            report = await gateway.health.get(node_id)
        except CoreError as exc:
            return _translate(exc, node_id)
        return self._answers.response(report)


def routes(gateway: Gateway) -> list[Route]:
    return [
        # Every path starting with /v is Graph's: bad versions, edges and methods get Meta's errors.
        Route("/v{after_v:path}", GraphEndpoint(gateway).handle, methods=EVERY_METHOD),
    ]
