"""`GET /health_status` — 360dialog: the D360-API-KEY's phone number, in Meta's shape."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.core.errors import (
    CoreError,
    NodeNotFound,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    UpstreamUnavailable,
)
from wahealth.core.gateway import Gateway
from wahealth.dialects.common import EVERY_METHOD, retry_after_header
from wahealth.dialects.meta_shape import MetaAnswerCache

_JSON = "application/json"
_METHODS = ("GET", "HEAD")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(
        {"meta": {"httpCode": status, "developerMessage": message, "success": False}}
    )
    return Response(body, status_code=status, headers=headers, media_type=_JSON)


def _translate(exc: CoreError) -> Response:
    if isinstance(exc, Unauthenticated):
        return _error(401, "Invalid api_key or token expired")
    if isinstance(exc, Throttled):
        return _error(
            429,
            "You have exceeded the request rate limit of your account. Try again later.",
            {"Retry-After": retry_after_header(exc.retry_after)},
        )
    if isinstance(exc, NodeNotFound):
        return _error(404, "The phone number of this API key is not available to its account.")
    if isinstance(exc, UpstreamUnavailable):
        headers = (
            None
            if exc.retry_after is None
            else {"Retry-After": retry_after_header(exc.retry_after)}
        )
        return _error(503, "WhatsApp Business API not available: " + str(exc), headers)
    if isinstance(exc, ServiceUnavailable):
        return _error(
            503,
            f"Service unavailable: {exc}. Try again later.",
            {"Retry-After": retry_after_header(exc.retry_after)},
        )
    return _error(400, str(exc))


class D360Endpoint:
    def __init__(self, gateway: Gateway):
        self._gateway = gateway
        self._answers = MetaAnswerCache(_JSON)

    async def handle(self, request: Request) -> Response:
        gateway = self._gateway
        if request.method not in _METHODS:
            return _error(405, "Method Not Allowed", {"Allow": ", ".join(_METHODS)})
        try:
            principal = await gateway.directory.d360_principal(request.headers.get("d360-api-key"))
            await gateway.admit(principal)
            if principal.phone_number_id is None:
                raise Unauthenticated("this key is not bound to a phone number")
            # A key bound to a number outside its account's spaces answers nothing.
            await gateway.directory.check_node(principal, principal.phone_number_id)
            report = await gateway.health.get(principal.phone_number_id)
        except CoreError as exc:
            return _translate(exc)
        return self._answers.response(report)


def routes(gateway: Gateway) -> list[Route]:
    # Every method reaches the endpoint, so a wrong one is refused in 360dialog's own shape.
    return [Route("/health_status", D360Endpoint(gateway).handle, methods=EVERY_METHOD)]
