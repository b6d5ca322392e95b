"""`GET /api/v1/gate`: may this phone number send (this template) right now, and if not, why.

    GET /api/v1/gate?space=demo-space&phone_number=8613800000001&template=order_update&language=en
    Authorization: Bearer <Graph token of the space's account>

    {"allow": false, "status": "BLOCKED",
     "reasons": [{"entity_type": "MESSAGE_TEMPLATE", "entity_id": "2632273056924580",
                  "error_code": "141002", "description": "…", "solution": "…"}, …],
     "nodes": ["106540352242922", "2632273056924580"],
     "fetched_at": "2026-01-01T00:00:00Z", "age_seconds": 1.5, "stale": false}

The phone number is `phone_number` (as users write it) or `phone_number_id`; the template,
optional, is `template` with `language`, or `template_id`. `strict=true` refuses LIMITED
too; `lang=` (else `Accept-Language`) chooses the reasons' language. One request of the
account's limit; errors as the rest of the JSON API (`history`): `{"error": "…"}` with 400
(bad parameters), 401, 404 (unknown space, number or template), 429 and 503 (both with
`Retry-After`).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.core.errors import CoreError, InvalidRequest
from wahealth.core.gate import GateAnswer, GateQuery, PreSendGate
from wahealth.core.lru import BoundedLru
from wahealth.core.queries import BearerToken, ByNodeId, ByPhoneNumber, ByTemplate
from wahealth.core.validate import (
    MAX_E164_DIGITS,
    MAX_PHONE_NUMBER_CHARS,
    MAX_SPACE_ID_CHARS,
    MAX_TEMPLATE_CODE_CHARS,
    is_node_id,
)
from wahealth.domain import normalize_phone_number
from wahealth.domain.gate import Reason, Verdict
from wahealth.domain.languages import choose
from wahealth.domain.records import iso_utc
from wahealth.httputil import header
from wahealth.web.history import ERRORS

GATE_PATH = "/api/v1/gate"
RENDERED_MAX_ENTRIES = 10_000
RENDERED_MAX_BYTES = 16 * 1024 * 1024
_AGE_MARKER = b'"age_seconds":'
_TRUE = {"true": True, "1": True, "false": False, "0": False, "": False}


def reason_json(reason: Reason) -> dict[str, Any]:
    return {
        "entity_type": reason.entity_type,
        "entity_id": reason.entity_id,
        "error_code": reason.error_code,
        "description": reason.description,
        "solution": reason.solution,
    }


def gate_json(answer: GateAnswer) -> dict[str, Any]:
    """The gate's answer as the API and `wahealth gate --json` show it."""
    verdict = answer.verdict
    return {
        "allow": verdict.allow,
        "status": verdict.status.value,
        "reasons": [reason_json(reason) for reason in verdict.reasons],
        "nodes": list(verdict.nodes),
        "fetched_at": iso_utc(verdict.fetched_at),
        "age_seconds": round(answer.age_seconds, 3),
        "stale": verdict.stale,
    }


class GateRenderer:
    """`gate_json` as bytes, with everything but the age rendered once per verdict."""

    def __init__(self) -> None:
        self._parts: BoundedLru[Verdict, tuple[bytes, bytes]] = BoundedLru(
            RENDERED_MAX_ENTRIES, RENDERED_MAX_BYTES
        )

    def __call__(self, answer: GateAnswer) -> bytes:
        verdict = answer.verdict
        parts = self._parts.get(verdict)
        if parts is None:
            whole = orjson.dumps(gate_json(GateAnswer(verdict, 0.0)))
            head, marker, tail = whole.partition(_AGE_MARKER)
            parts = (head + marker, tail.removeprefix(b"0.0"))
            self._parts.put(verdict, parts, 2 * len(whole))
        return parts[0] + orjson.dumps(round(answer.age_seconds, 3)) + parts[1]


def json_response(
    value: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(value), status_code, headers, media_type="application/json")


def bearer(request: Request) -> BearerToken:
    """The `Authorization: Bearer` token, as the history API reads it."""
    scheme, _, value = (header(request.scope, b"authorization") or "").partition(" ")
    return BearerToken(value.strip() if scheme.lower() == "bearer" and value.strip() else None)


def check_phone_number(value: str, where: str) -> str:
    """A phone number as users write it, or InvalidRequest when it cannot be one."""
    digits = normalize_phone_number(value) if len(value) <= MAX_PHONE_NUMBER_CHARS else ""
    if not 0 < len(digits) <= MAX_E164_DIGITS:
        raise InvalidRequest(
            f"{where} must be a phone number (at most {MAX_E164_DIGITS} digits)", parameter=where
        )
    return value


def check_node_id(value: str, where: str) -> str:
    if not is_node_id(value):
        raise InvalidRequest(f"{where} must be a Meta id (digits only)", parameter=where)
    return value


def check_template(code: str, language: str, where: str) -> None:
    if not code or len(code) > MAX_TEMPLATE_CODE_CHARS or not code.isprintable():
        raise InvalidRequest(
            f"{where} must be a template name of 1 to {MAX_TEMPLATE_CODE_CHARS} characters",
            parameter=where,
        )
    bare = language.replace("_", "").replace("-", "")
    if not (0 < len(language) <= 16 and bare.isascii() and bare.isalnum()):
        raise InvalidRequest("language must be a language code such as en or pt_BR")


def check_space(value: str, where: str) -> str:
    if not value or len(value) > MAX_SPACE_ID_CHARS or not value.isprintable():
        raise InvalidRequest(
            f"{where} must be a space id of 1 to {MAX_SPACE_ID_CHARS} characters", parameter=where
        )
    return value


def parse_gate(params: Any, accept_language: str | None = None) -> GateQuery:
    """The gate's query parameters, or InvalidRequest naming the one that is wrong.

    The reasons' language is `lang=` when given, else `accept_language`'s choice (English
    when neither names a language we serve).
    """

    def one(name: str) -> str | None:
        values = params.getlist(name)
        if len(values) > 1:
            raise InvalidRequest(f"{name} is given more than once", parameter=name)
        return values[0] if values else None

    space = one("space")
    if space is None:
        raise InvalidRequest("space is required", parameter="space", missing=True)
    space = check_space(space, "space")
    number, number_id = one("phone_number"), one("phone_number_id")
    phone: ByPhoneNumber | ByNodeId
    if (number is None) == (number_id is None):
        raise InvalidRequest(
            "give one of phone_number and phone_number_id", parameter="phone_number", missing=True
        )
    if number is not None:
        phone = ByPhoneNumber(space, check_phone_number(number, "phone_number"))
    else:
        phone = ByNodeId(check_node_id(number_id or "", "phone_number_id"))
    name, language, template_id = one("template"), one("language"), one("template_id")
    template: ByTemplate | ByNodeId | None = None
    if template_id is not None:
        if name is not None or language is not None:
            raise InvalidRequest(
                "give template with language, or template_id, not both", parameter="template_id"
            )
        template = ByNodeId(check_node_id(template_id, "template_id"))
    elif name is not None or language is not None:
        if name is None or language is None:
            missing = "language" if name is not None else "template"
            raise InvalidRequest(
                "template and language go together", parameter=missing, missing=True
            )
        check_template(name, language, "template")
        template = ByTemplate(space, name, language)
    strict = _TRUE.get((one("strict") or "").lower())
    if strict is None:
        raise InvalidRequest("strict must be true or false", parameter="strict")
    return GateQuery(space, phone, template, strict, choose(one("lang"), accept_language))


class GateEndpoint:
    """Served before Starlette's router (the hot path), so it refuses other methods itself."""

    def __init__(self, gate: PreSendGate) -> None:
        self._gate = gate
        self._render = GateRenderer()

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return json_response(
                {"error": f"{request.method} is not allowed here; use GET"},
                405,
                {"Allow": "GET, HEAD"},
            )
        raw: bytes = request.scope["query_string"]

        accept_language = header(request.scope, b"accept-language")

        def parse() -> GateQuery:
            return parse_gate(QueryParams(raw), accept_language)

        token = bearer(request)
        try:
            same_as = (token.value or "", raw.decode("latin-1"), accept_language or "")
            answer = await self._gate.check(token, parse, same_as=same_as)
        except CoreError as exc:
            return ERRORS.render(exc)
        language = {"Content-Language": answer.language.tag}
        return Response(self._render(answer), headers=language, media_type="application/json")


def gate_routes(gate: PreSendGate) -> list[Route]:
    return [Route(GATE_PATH, GateEndpoint(gate).handle, methods=["GET"])]
