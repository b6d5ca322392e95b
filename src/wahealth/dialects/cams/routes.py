"""`/` — Alibaba Cloud CAMS RPC: Action=GetWhatsappHealthStatus, Version=2020-06-06.

Parse (the signed request, the action, the query) → one core call → render, with every
core error rendered by `ERRORS`, in Alibaba's codes and HTTP statuses. The texts are in
the language `Accept-Language` asks for (the `Language` parameter is the template's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from wahealth.auth.cams_express import CamsExpress
from wahealth.auth.cams_signature import (
    CamsSignatureVerifier,
    SignedRequest,
    action_and_version,
    rpc_params,
)
from wahealth.auth.errors import IncompleteSignature
from wahealth.core.errors import CoreError, InvalidRequest, RequestTooLarge
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import Principal
from wahealth.core.queries import (
    Answer,
    ByPhoneNumber,
    ByTemplate,
    ByWaba,
    HealthQueries,
    Query,
    SignedCall,
    VerifiedCaller,
)
from wahealth.core.validate import check_node_id, check_phone_number, check_space_id, check_template
from wahealth.dialects.cams.errors import ERRORS, CamsError, error_response
from wahealth.dialects.cams.render import QueryContext, RenderedSuccess, render_success
from wahealth.dialects.language import request_language
from wahealth.domain.languages import ENGLISH, Language, negotiate
from wahealth.httputil import BodyTooLarge, DialectRoute, PrebuiltResponse, read_body
from wahealth.middleware import new_request_id

ACTION = "GetWhatsappHealthStatus"
VERSION = "2020-06-06"
NODE_TYPES = ("phone", "template", "waba")
_METHODS = ("GET", "HEAD", "POST")
_JSON_BYTES = b"application/json;charset=utf-8"
# Requests longer than this are not remembered (an SDK's query is a few hundred bytes).
REMEMBER_MAX_CHARS = 2048
# Rendered answers per (node, fetch, source, what the caller named): bounded both ways.
RENDER_CACHE_MAX_ENTRIES = 20_000
RENDER_CACHE_MAX_BYTES = 32 * 1024 * 1024


def parse_query(params: dict[str, str]) -> Query:
    """The node a GetWhatsappHealthStatus call names, validated."""
    node_type = _required(params, "NodeType")
    if node_type not in NODE_TYPES:
        raise InvalidRequest(
            f'The specified parameter "NodeType" is not valid: {node_type[:20]!r} '
            "(expected phone, template or waba).",
            parameter="NodeType",
        )
    space_id = check_space_id(_required(params, "CustSpaceId"))
    if node_type == "phone":
        return ByPhoneNumber(space_id, check_phone_number(_required(params, "PhoneNumber")))
    if node_type == "template":
        code, language = check_template(
            _required(params, "TemplateCode"), _required(params, "Language")
        )
        return ByTemplate(space_id, code, language)
    return ByWaba(space_id, check_node_id(_required(params, "WabaId"), "waba"))


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise InvalidRequest(f"{name} is required", parameter=name, missing=True)
    return value


def _context(query: Query) -> QueryContext:
    if isinstance(query, ByPhoneNumber):
        return QueryContext("phone", phone_number=query.phone_number)
    if isinstance(query, ByTemplate):
        return QueryContext("template", template_code=query.code, language=query.language)
    return QueryContext("waba")


def check_action(signed: SignedRequest) -> None:
    """Refuse calls of other actions or versions, in Alibaba's words."""
    action, version = action_and_version(signed)
    if not action:
        if "x-acs-action" in signed.headers:
            # A V3-style call without its Authorization header: the signature is what is missing.
            raise IncompleteSignature("The request is not signed: no Authorization header.")
        raise InvalidRequest("Action is required", parameter="Action", missing=True)
    if action != ACTION:
        raise CamsError(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )
    if not version:
        raise InvalidRequest("Version is required", parameter="Version", missing=True)
    if version != VERSION:
        raise CamsError(
            400, "InvalidParameter", 'The specified parameter "Action or Version" is not valid.'
        )


def _asked(signed: SignedRequest) -> tuple[str, ...] | None:
    """What a call asks, as sent: its query string and body (the signature and nonce are in
    headers, or in parameters the resolution ignores); None when too long to remember."""
    if len(signed.raw_query) + len(signed.body) > REMEMBER_MAX_CHARS:
        return None
    if "authorization" not in signed.headers:
        return None  # a v1 call signs in its parameters: every one is unique
    return ("cams", signed.raw_query.decode("latin-1"), signed.body.decode("latin-1"))


@dataclass(frozen=True, slots=True)
class _Call:
    """What the express lane reads once per shape of call: the query, and its repeat key.

    `last` holds the shape's newest (report, language, rendered answer): a repeat served
    the same report object is recognised by identity, with no key to hash.
    """

    query: Query
    asked: tuple[str, ...] | None
    last: list[tuple[object, Language, RenderedSuccess]] = field(default_factory=list)


def _describe(signed: SignedRequest) -> _Call:
    check_action(signed)
    return _Call(parse_query(rpc_params(signed)), _asked(signed))


# Where the express lane leaves a call it verified but could not answer at once.
_VERIFIED = "wahealth.cams.verified"


class CamsEndpoint:
    """Parses, authenticates, limits and answers one CAMS RPC call."""

    def __init__(self, queries: HealthQueries):
        self._queries = queries
        self._rendered: BoundedLru[tuple[object, ...], RenderedSuccess] = BoundedLru(
            RENDER_CACHE_MAX_ENTRIES, RENDER_CACHE_MAX_BYTES
        )
        verifier = queries.signatures
        express = (
            CamsExpress(verifier, _describe)
            if isinstance(verifier, CamsSignatureVerifier)
            else None
        )
        self._express = express if express is not None and express.enabled else None

    def now(self, scope: Scope, request_id: str) -> PrebuiltResponse | None:
        """A usual V3 call for a cached node, answered at once; None: `handle` answers."""
        express = self._express
        if express is None or scope["method"] not in _METHODS:
            return None
        headers: dict[bytes, bytes] = dict(scope["headers"])
        settled = express.verify_now(scope, headers)
        if settled is None:
            return None
        principal, call = settled
        answer = None
        if call.asked is not None:
            try:
                answer = self._queries.repeat_now(call.asked, principal)
            except CoreError:
                answer = None  # throttled: `handle` asks the limiter again and says so
        if answer is None:
            # Verified and its nonce claimed: `handle` carries on from here.
            scope.setdefault("state", {})[_VERIFIED] = settled
            return None
        asked_in = headers.get(b"accept-language")
        lang = ENGLISH if asked_in is None else negotiate(asked_in.decode("latin-1"))
        last = call.last
        if last and last[0][0] is answer.report and last[0][1] is lang:
            rendered = last[0][2]
        else:
            rendered = self._render(answer, lang)
            last[:] = [(answer.report, lang, rendered)]
        return _success(rendered, lang, request_id)

    async def handle(self, request: Request) -> Response:
        # The same id as the x-request-id header and the logs, when the middleware set one.
        state: dict[str, Any] = request.scope.get("state") or {}
        request_id = state.get("request_id") or new_request_id()
        settled: tuple[Principal, _Call] | None = state.pop(_VERIFIED, None)
        if settled is not None:
            principal, call = settled
            lang = request_language(request.scope)
            return await self._verified(request_id, principal, call, lang)
        if request.method not in _METHODS:
            response = error_response(
                request_id,
                CamsError(
                    405,
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                ),
            )
            response.headers["Allow"] = ", ".join(_METHODS)
            return response
        try:
            try:
                body = await read_body(request)
            except BodyTooLarge as exc:
                raise RequestTooLarge("The request body is too large.") from exc
            signed = SignedRequest.from_asgi(request.scope, body)
            check_action(signed)
            answer = await self._queries.health_of(
                SignedCall(signed),
                lambda: parse_query(rpc_params(signed)),
                same_as=_asked(signed),
            )
        except CamsError as err:
            return error_response(request_id, err)
        except CoreError as exc:
            return error_response(request_id, ERRORS.render(exc))
        return self._response(answer, negotiate(signed.headers.get("accept-language")), request_id)

    async def _verified(
        self, request_id: str, principal: Principal, call: _Call, lang: Language
    ) -> Response:
        try:
            answer = await self._queries.health_of(
                VerifiedCaller(principal), call.query, same_as=call.asked
            )
        except CoreError as exc:
            return error_response(request_id, ERRORS.render(exc))
        return self._response(answer, lang, request_id)

    def _response(self, answer: Answer, lang: Language, request_id: str) -> PrebuiltResponse:
        return _success(self._render(answer, lang), lang, request_id)

    def _render(self, answer: Answer, lang: Language) -> RenderedSuccess:
        report = answer.report
        key = (report.node_id, report.fetched_at, report.source, answer.query, lang)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = render_success(report, _context(answer.query), lang)
            self._rendered.put(key, rendered, len(rendered.head) + len(rendered.tail) + 200)
        return rendered


def _success(rendered: RenderedSuccess, lang: Language, request_id: str) -> PrebuiltResponse:
    rid = request_id.encode()
    body = rendered.head + rid + rendered.tail
    headers = [
        (b"content-type", _JSON_BYTES),
        (b"content-length", str(len(body)).encode()),
        (b"x-acs-request-id", rid),
    ]
    if lang is not ENGLISH:
        headers.append((b"content-language", lang.tag.encode()))
    return PrebuiltResponse(body, headers)


def routes(queries: HealthQueries) -> list[Route]:
    # Every method reaches the endpoint, so a wrong one is refused in CAMS's own shape.
    endpoint = CamsEndpoint(queries)
    return [DialectRoute("/", endpoint.handle, now=endpoint.now)]
