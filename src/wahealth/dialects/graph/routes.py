"""`GET /v{N}.{M}/{node_id}?fields=health_status` — Meta's Graph API shape and error envelope.

That one read is the hot path, answered here from prebuilt bytes; every other Graph
request (other fields, edges, `?ids=`, batches) goes to the read API (`read.py`).

Error texts are in the language `locale=` names (`id_ID`, `zh_CN`; one we do not serve
means English), else the one `Accept-Language` asks for (English by default).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from urllib.parse import unquote_plus

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

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
from wahealth.core.graph_read import GraphReads
from wahealth.core.queries import BearerToken, ByNodeId, HealthQueries
from wahealth.core.validate import is_node_id
from wahealth.dialects.graph.batch import BatchEndpoint
from wahealth.dialects.graph.read import GraphReadEndpoint
from wahealth.dialects.language import credential_and_language, request_language
from wahealth.dialects.meta_shape import MetaAnswerCache
from wahealth.domain.languages import Language, choose
from wahealth.httputil import (
    DialectRoute,
    ErrorTable,
    PrebuiltResponse,
    header,
    retry_after_header,
)

_JSON = "application/json; charset=UTF-8"
_QUERY_KEYS = frozenset({"fields", "access_token", "locale"})
_VERSION = re.compile(r"[0-9]+\.[0-9]+", re.ASCII)
_METHODS = ("GET", "HEAD")
# Besides `fields=health_status`, the hot path's query may carry only these.
_HEALTH_EXTRAS = frozenset({"access_token", "locale"})


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
        f"Unsupported {method.lower()} request. Object with ID '{node_id[:64]}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        "GraphMethodException",
        100,
        subcode=33,
    )


def _unavailable(exc: UpstreamUnavailable | ServiceUnavailable) -> Response:
    # Meta's code 2, "temporary issue due to downtime": Graph clients retry it.
    return _error(
        503,
        "An unexpected error has occurred. Please retry your request later.",
        "OAuthException",
        2,
        headers={"Retry-After": retry_after_header(exc.retry_after)},
    )


# Rendered per node id: "does not exist" names the node, as Meta's message does.
ERRORS: ErrorTable[Callable[[str], Response]] = ErrorTable(
    {
        Unauthenticated: lambda exc: (
            lambda node_id: _error(
                401, f"Invalid OAuth access token - {exc}", "OAuthException", 190
            )
        ),
        Throttled: lambda exc: (
            lambda node_id: _error(
                429,
                "(#4) Application request limit reached",
                "OAuthException",
                4,
                headers={"Retry-After": retry_after_header(exc.retry_after)},
            )
        ),
        NodeNotFound: lambda exc: _unsupported,
        AccessDenied: lambda exc: _unsupported,
        InvalidRequest: lambda exc: (
            lambda node_id: _error(400, f"(#100) {exc}", "OAuthException", 100)
        ),
        RequestTooLarge: lambda exc: (
            lambda node_id: _error(413, f"(#100) {exc}", "OAuthException", 100)
        ),
        UpstreamUnavailable: lambda exc: lambda node_id: _unavailable(exc),
        ServiceUnavailable: lambda exc: lambda node_id: _unavailable(exc),
    }
)


def _query(raw_query: bytes) -> dict[str, str]:
    """`fields`, `access_token` and `locale` from the query string (first value wins).

    Starlette's QueryParams parses everything into a multidict; on the hot path
    we only need these keys, so a plain split is several times cheaper.
    """
    found: dict[str, str] = {}
    raw = raw_query.decode("latin-1")
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        if name in _QUERY_KEYS and name not in found:
            found[name] = unquote_plus(value, encoding="utf-8", errors="replace")
    return found


def _language(scope: Scope, raw_query: bytes) -> Language:
    """`locale=` when given, else `Accept-Language`."""
    if b"locale=" not in raw_query:
        return request_language(scope)
    return choose(_query(raw_query).get("locale"), header(scope, b"accept-language"))


def _token(authorization: str, query: dict[str, str]) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in {"bearer", "oauth"} and value.strip():
        return value.strip()
    return query.get("access_token")


def parse_query(node_id: str, query: dict[str, str]) -> ByNodeId:
    """`fields` must ask for health_status; the node must look like a Meta id."""
    fields = {f.strip() for f in query.get("fields", "").split(",")}
    if "health_status" not in fields:
        raise InvalidRequest("this gateway serves only fields=health_status")
    if not is_node_id(node_id):
        raise NodeNotFound(node_id)
    return ByNodeId(node_id)


def _asked(authorization: str, raw_query: bytes, after_v: str) -> tuple[str, ...]:
    """What a health_status read asks, as sent: a repeat within moments is recognised by it.

    The whole path after `/v`: a repeat skips the version and path checks too.
    """
    return ("graph", authorization, raw_query.decode("latin-1"), after_v)


class GraphEndpoint:
    def __init__(self, queries: HealthQueries, reads: GraphReadEndpoint | None = None):
        self._queries = queries
        self._reads = reads
        self._answers = MetaAnswerCache(_JSON)

    def now(self, scope: Scope, request_id: str) -> PrebuiltResponse | None:
        """A repeat of a recent health_status read of a cached node, answered at once."""
        if scope["method"] != "GET":
            return None
        raw_query: bytes = scope["query_string"]
        asked = credential_and_language(scope, b"authorization", required=False)
        if asked is None or b"locale=" in raw_query:
            return None  # a locale in the query: the endpoint reads it
        authorization, lang = asked
        after_v: str = scope["path_params"]["after_v"]
        try:
            answer = self._queries.repeat_now(_asked(authorization, raw_query, after_v))
        except CoreError:
            return None  # throttled: `handle` asks the limiter again and says so
        if answer is None:
            return None
        return self._answers.response(answer.report, lang)

    async def handle(self, request: Request) -> Response:
        """The hot path for `?fields=health_status` of one node; the read API for the rest."""
        if self._reads is not None and not _health_only(request):
            return await self._reads.handle(request)
        return await self.health_status(request)

    async def health_status(self, request: Request) -> Response:
        """`GET /v{N}.{M}/{node}?fields=health_status`, from prebuilt answers when cached."""
        after_v: str = request.path_params["after_v"]
        version, _, path = after_v.partition("/")
        node_id, _, rest = path.partition("/")
        if not _VERSION.fullmatch(version):
            return _error(
                400, f"Unknown path components: /v{version[:100]}", "OAuthException", 2500
            )
        if not node_id or rest:
            # Only the health_status field of a node is served: no edges, no root.
            return _error(400, f"Unknown path components: /{path[:100]}", "OAuthException", 2500)
        if request.method not in _METHODS:
            return _unsupported(node_id, request.method)
        raw_query: bytes = request.scope.get("query_string", b"")
        authorization = header(request.scope, b"authorization") or ""
        parsed: dict[str, str] = {}

        def credential() -> BearerToken:
            parsed.update(_query(raw_query))
            return BearerToken(_token(authorization, parsed))

        try:
            answer = await self._queries.health_of(
                credential,
                lambda: parse_query(node_id, parsed),
                same_as=_asked(authorization, raw_query, after_v),
            )
        except CoreError as exc:
            return ERRORS.render(exc)(node_id)
        return self._answers.response(answer.report, _language(request.scope, raw_query))


def _health_only(request: Request) -> bool:
    """One node's health_status alone: what `health_status` serves."""
    if request.method not in _METHODS or "/" in request.path_params["after_v"].partition("/")[2]:
        return False
    raw_query: bytes = request.scope.get("query_string", b"")
    fields = False
    for pair in raw_query.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name == "fields" and value == "health_status" and not fields:
            fields = True
        elif name not in _HEALTH_EXTRAS:
            return False
    return fields


def routes(queries: HealthQueries, reads: GraphReads | None = None) -> list[Route]:
    """The Graph dialect; without `reads`, only `fields=health_status` of a node is served."""
    read_api = GraphReadEndpoint(reads, BatchEndpoint(reads)) if reads is not None else None
    endpoint = GraphEndpoint(queries, read_api)
    return [
        # Every path starting with /v is Graph's: bad versions, edges and methods get Meta's errors.
        DialectRoute("/v{after_v:path}", endpoint.handle, now=endpoint.now),
    ]
