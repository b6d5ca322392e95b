"""CAMS error answers: Alibaba Cloud's codes, HTTP statuses and body shape.

`ERRORS` renders every core error; the SDK turns each into the exception it raises
against Alibaba (`ClientException` with the same code, `ThrottlingException` for
`Throttling.User` thanks to `x-acs-retry-after`).
"""

from __future__ import annotations

from starlette.responses import Response

from wahealth.core.errors import (
    AccessDenied,
    InvalidRequest,
    NodeNotFound,
    RequestTooLarge,
    ServiceUnavailable,
    SignatureRejected,
    Throttled,
    Unauthenticated,
    UpstreamUnavailable,
)
from wahealth.dialects.cams.render import render_error
from wahealth.httputil import ErrorTable, retry_after_header

_JSON = "application/json;charset=utf-8"
_ACCESS_DENIED_DETAIL = (
    '{"NoPermissionType":"ImplicitDeny","AuthAction":"cams:GetWhatsappHealthStatus",'
    '"PolicyType":"AccountLevelIdentityBasedPolicy"}'
)
_NOT_EXISTS = {
    "phone": "NotExists.PhoneNumber",
    "template": "NotExists.Template",
    "waba": "NotExists.WabaId",
}


class CamsError(Exception):
    """One CAMS error answer: HTTP status, Alibaba code, message and optional extras."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        access_denied_detail: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.access_denied_detail = access_denied_detail


def _invalid(exc: InvalidRequest) -> CamsError:
    if exc.missing:
        return CamsError(
            400,
            "MissingParameter",
            f'The input parameter "{exc.parameter}" that is mandatory for processing '
            "this request is not supplied.",
        )
    return CamsError(400, "InvalidParameter", str(exc))


def _unavailable(exc: UpstreamUnavailable | ServiceUnavailable) -> CamsError:
    return CamsError(
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server: " + str(exc),
        retry_after=exc.retry_after,
    )


ERRORS: ErrorTable[CamsError] = ErrorTable(
    {
        InvalidRequest: _invalid,
        RequestTooLarge: lambda exc: CamsError(413, "InvalidParameter", str(exc)),
        SignatureRejected: lambda exc: CamsError(exc.http_status, exc.code, exc.message),
        Unauthenticated: lambda exc: CamsError(
            404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        ),
        Throttled: lambda exc: CamsError(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
            retry_after=exc.retry_after,
        ),
        AccessDenied: lambda exc: CamsError(
            403,
            "Forbidden.NoPermission",
            "You are not authorized to operate on the specified CustSpaceId.",
            access_denied_detail=_ACCESS_DENIED_DETAIL,
        ),
        NodeNotFound: lambda exc: CamsError(
            404, _NOT_EXISTS.get(exc.what, "NotExists.Node"), str(exc)
        ),
        UpstreamUnavailable: _unavailable,
        ServiceUnavailable: _unavailable,
    }
)


def error_response(request_id: str, err: CamsError) -> Response:
    headers = {"x-acs-request-id": request_id}
    if err.retry_after is not None:
        headers["Retry-After"] = retry_after_header(err.retry_after)
        if err.code.startswith("Throttling"):
            # The SDK turns this header (milliseconds) into its ThrottlingException.
            headers["x-acs-retry-after"] = str(max(1, int(err.retry_after * 1000)))
    body = render_error(
        request_id, err.code, err.message, access_denied_detail=err.access_denied_detail
    )
    return Response(body, status_code=err.status, headers=headers, media_type=_JSON)
