"""`/` — Alibaba Cloud CAMS RPC: Action=GetWhatsappHealthStatus, Version=2020-06-06."""

from __future__ import annotations

from collections import OrderedDict

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.auth.cams_signature import (
    SignedRequest,
    action_and_version,
    authenticate,
    rpc_params,
)
from wahealth.auth.errors import CamsAuthError, InvalidAccessKeyIdInactive
from wahealth.core.directory import Principal
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
from wahealth.dialects.cams.render import (
    QueryContext,
    RenderedSuccess,
    render_error,
    render_success,
)
from wahealth.dialects.common import (
    EVERY_METHOD,
    BodyTooLarge,
    PrebuiltResponse,
    read_body,
    retry_after_header,
)
from wahealth.domain import HealthReport
from wahealth.middleware import new_request_id

log = structlog.get_logger(__name__)

ACTION = "GetWhatsappHealthStatus"
VERSION = "2020-06-06"
NODE_TYPES = ("phone", "template", "waba")
_METHODS = ("GET", "HEAD", "POST")
_JSON = "application/json;charset=utf-8"
_JSON_BYTES = _JSON.encode()
_RENDER_CACHE_MAX = 20_000


class _CamsError(Exception):
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


def _translate(exc: CoreError) -> _CamsError:
    if isinstance(exc, InvalidRequest):
        if exc.missing:
            return _CamsError(
                400,
                "MissingParameter",
                f'The input parameter "{exc.parameter}" that is mandatory for processing '
                "this request is not supplied.",
            )
        return _CamsError(400, "InvalidParameter", str(exc))
    if isinstance(exc, Throttled):
        return _CamsError(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, AccessDenied):
        return _CamsError(
            403,
            "Forbidden.NoPermission",
            "You are not authorized to operate on the specified CustSpaceId.",
            access_denied_detail='{"NoPermissionType":"ImplicitDeny","AuthAction":'
            '"cams:GetWhatsappHealthStatus","PolicyType":"AccountLevelIdentityBasedPolicy"}',
        )
    if isinstance(exc, NodeNotFound):
        code = {
            "phone": "NotExists.PhoneNumber",
            "template": "NotExists.Template",
            "waba": "NotExists.WabaId",
        }.get(exc.what, "NotExists.Node")
        return _CamsError(404, code, str(exc))
    if isinstance(exc, UpstreamUnavailable | ServiceUnavailable):
        return _CamsError(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server: " + str(exc),
            retry_after=exc.retry_after,
        )
    if isinstance(exc, Unauthenticated):
        return _CamsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    return _CamsError(500, "InternalError", "The request processing has failed.")


def _error_response(request_id: str, err: _CamsError) -> Response:
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


class CamsEndpoint:
    """Parses, authenticates, limits and answers one CAMS RPC call."""

    def __init__(self, gateway: Gateway):
        self._gateway = gateway
        self._rendered: OrderedDict[tuple[object, ...], RenderedSuccess] = OrderedDict()

    async def handle(self, request: Request) -> Response:
        # The same id as the x-request-id header and the logs, when the middleware set one.
        request_id = getattr(request.state, "request_id", None) or new_request_id()
        if request.method not in _METHODS:
            response = _error_response(
                request_id,
                _CamsError(
                    405,
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                ),
            )
            response.headers["Allow"] = ", ".join(_METHODS)
            return response
        try:
            body = await self._answer(request, request_id)
        except _CamsError as err:
            return _error_response(request_id, err)
        except CamsAuthError as exc:
            return _error_response(request_id, _CamsError(exc.http_status, exc.code, exc.message))
        except CoreError as exc:
            return _error_response(request_id, _translate(exc))
        except BodyTooLarge:
            return _error_response(
                request_id, _CamsError(413, "InvalidParameter", "The request body is too large.")
            )
        return PrebuiltResponse(
            body,
            [
                (b"content-type", _JSON_BYTES),
                (b"content-length", str(len(body)).encode()),
                (b"x-acs-request-id", request_id.encode()),
            ],
        )

    async def _answer(self, request: Request, request_id: str) -> bytes:
        gateway = self._gateway
        signed = SignedRequest.from_asgi(request.scope, await read_body(request))
        action, version = action_and_version(signed)
        if not action:
            raise InvalidRequest("Action is required", parameter="Action", missing=True)
        if action != ACTION:
            raise _CamsError(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        if not version:
            raise InvalidRequest("Version is required", parameter="Version", missing=True)
        if version != VERSION:
            raise _CamsError(
                400, "InvalidParameter", 'The specified parameter "Action or Version" is not valid.'
            )

        found: dict[str, Principal] = {}

        async def lookup_secret(key_id: str) -> str | None:
            key = await gateway.directory.access_key(key_id)
            if key is None:
                return None
            if key.revoked:
                raise InvalidAccessKeyIdInactive
            found["principal"] = key.principal
            return key.secret

        await authenticate(
            signed,
            lookup_secret=lookup_secret,
            nonces=gateway.replay_guard,
            now=gateway.now(),
            max_skew_seconds=gateway.signature_max_skew_seconds,
        )
        principal = found["principal"]
        await gateway.admit(principal)
        params = rpc_params(signed)
        report, ctx = await self._query(principal, params)
        return self._render(report, ctx).with_request_id(request_id)

    async def _query(
        self, principal: Principal, params: dict[str, str]
    ) -> tuple[HealthReport, QueryContext]:
        directory = self._gateway.directory
        node_type = params.get("NodeType", "").strip()
        if not node_type:
            raise InvalidRequest("NodeType is required", parameter="NodeType", missing=True)
        if node_type not in NODE_TYPES:
            raise InvalidRequest(
                f'The specified parameter "NodeType" is not valid: {node_type!r} '
                "(expected phone, template or waba).",
                parameter="NodeType",
            )
        space_id = params.get("CustSpaceId", "").strip()
        if not space_id:
            raise InvalidRequest("CustSpaceId is required", parameter="CustSpaceId", missing=True)
        await directory.check_space(principal, space_id)
        if node_type == "phone":
            phone = _required(params, "PhoneNumber")
            node_id, _ = await directory.phone_number_id(space_id, phone)
            ctx = QueryContext(node_type, phone_number=phone)
        elif node_type == "template":
            code = _required(params, "TemplateCode")
            language = _required(params, "Language")
            node_id, _ = await directory.template_id(space_id, code, language)
            ctx = QueryContext(node_type, template_code=code, language=language)
        else:
            node_id = _required(params, "WabaId")
            await directory.check_waba(space_id, node_id)
            ctx = QueryContext(node_type)
        return await self._gateway.health.get(node_id), ctx

    def _render(self, report: HealthReport, ctx: QueryContext) -> RenderedSuccess:
        key = (report.node_id, report.fetched_at, report.source, ctx)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = render_success(report, ctx)
            self._rendered[key] = rendered
            if len(self._rendered) > _RENDER_CACHE_MAX:
                self._rendered.popitem(last=False)
        return rendered


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise InvalidRequest(f"{name} is required", parameter=name, missing=True)
    return value


def routes(gateway: Gateway) -> list[Route]:
    # Every method reaches the endpoint, so a wrong one is refused in CAMS's own shape.
    return [Route("/", CamsEndpoint(gateway).handle, methods=EVERY_METHOD)]
