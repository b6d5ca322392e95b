"""`GET /health_status` — 360dialog: the D360-API-KEY's phone number, in Meta's shape.

Error texts are in the language `Accept-Language` asks for (English by default).
"""

from __future__ import annotations

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
from wahealth.core.queries import ApiKey, HealthQueries, KeyNumber
from wahealth.dialects.language import credential_and_language, request_language
from wahealth.dialects.meta_shape import MetaAnswerCache
from wahealth.httputil import (
    DialectRoute,
    ErrorTable,
    PrebuiltResponse,
    header,
    retry_after_header,
)

_JSON = "application/json"
_METHODS = ("GET", "HEAD")
_KEY_NUMBER = KeyNumber()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(
        {"meta": {"httpCode": status, "developerMessage": message, "success": False}}
    )
    return Response(body, status_code=status, headers=headers, media_type=_JSON)


def _retry(seconds: float) -> dict[str, str]:
    return {"Retry-After": retry_after_header(seconds)}


ERRORS: ErrorTable[Response] = ErrorTable(
    {
        Unauthenticated: lambda exc: _error(401, "Invalid api_key or token expired"),
        Throttled: lambda exc: _error(
            429,
            "You have exceeded the request rate limit of your account. Try again later.",
            _retry(exc.retry_after),
        ),
        NodeNotFound: lambda exc: _error(
            404, "The phone number of this API key is not available to its account."
        ),
        AccessDenied: lambda exc: _error(
            404, "The phone number of this API key is not available to its account."
        ),
        UpstreamUnavailable: lambda exc: _error(
            503, "WhatsApp Business API not available: " + str(exc), _retry(exc.retry_after)
        ),
        ServiceUnavailable: lambda exc: _error(
            503, f"Service unavailable: {exc}. Try again later.", _retry(exc.retry_after)
        ),
        InvalidRequest: lambda exc: _error(400, str(exc)),
        RequestTooLarge: lambda exc: _error(413, str(exc)),
    }
)


class D360Endpoint:
    def __init__(self, queries: HealthQueries):
        self._queries = queries
        self._answers = MetaAnswerCache(_JSON)

    def now(self, scope: Scope, request_id: str) -> PrebuiltResponse | None:
        """A repeat of a recent request for a cached node, answered at once (else None)."""
        if scope["method"] != "GET":
            return None
        asked = credential_and_language(scope, b"d360-api-key")
        if asked is None:
            return None
        try:
            answer = self._queries.repeat_now(("d360", asked[0]))
        except CoreError:
            return None  # throttled: `handle` asks the limiter again and says so
        if answer is None:
            return None
        return self._answers.response(answer.report, asked[1])

    async def handle(self, request: Request) -> Response:
        if request.method not in _METHODS:
            return _error(405, "Method Not Allowed", {"Allow": ", ".join(_METHODS)})
        key = header(request.scope, b"d360-api-key")
        try:
            answer = await self._queries.health_of(
                ApiKey(key), _KEY_NUMBER, same_as=None if key is None else ("d360", key)
            )
        except CoreError as exc:
            return ERRORS.render(exc)
        return self._answers.response(answer.report, request_language(request.scope))


def routes(queries: HealthQueries) -> list[Route]:
    # Every method reaches the endpoint, so a wrong one is refused in 360dialog's own shape.
    endpoint = D360Endpoint(queries)
    return [DialectRoute("/health_status", endpoint.handle, now=endpoint.now)]
