"""The JSON API of silences and acknowledgements.

    POST   /api/v1/silences            {"waba": "2993…", "for": "2h", "reason": "…"}  -> 201
    GET    /api/v1/silences                                                       -> 200
    DELETE /api/v1/silences/{id}                                                  -> 200
    POST   /api/v1/nodes/{node_id}/ack {"note": "…"}                              -> 200

A silence names exactly one of `node`, `waba` or `space`, and exactly one of `for`
(`90s`, `30m`, `2h`, `1d`, `1h30m`) or `until` (ISO 8601 with a zone). Authenticated
and rate-limited like the history API (`Authorization: Bearer <Graph token>`); the
token's label is recorded as who acted. An account sees and changes only its own
spaces: anything else is not found. Errors are `{"error": "…"}` with the status of the
history API's table, plus 409 for acknowledging a node that has no problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wahealth.core.alerting import (
    Alerting,
    NothingToAcknowledge,
    Scope,
    acknowledgement_json,
    parse_duration,
    parse_time,
    silence_json,
)
from wahealth.core.errors import CoreError, InvalidRequest, NodeNotFound, RequestTooLarge
from wahealth.core.ports import Principal
from wahealth.core.queries import BearerToken, HealthQueries
from wahealth.core.validate import is_node_id
from wahealth.domain.records import SilenceScope
from wahealth.http_body import BodyTooLarge, NotJson, loads_bounded, read_bounded
from wahealth.httputil import ErrorTable
from wahealth.web.history import ERRORS as HISTORY_ERRORS
from wahealth.web.history import _bearer, _error

MAX_BODY_BYTES = 8 * 1024

ERRORS: ErrorTable[JSONResponse] = ErrorTable(
    {
        **HISTORY_ERRORS._renderers,
        NothingToAcknowledge: lambda exc: _error(409, str(exc)),
    }
)


async def _body(request: Request) -> dict[str, Any]:
    try:
        raw = await read_bounded(request, MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        raise RequestTooLarge(str(exc)) from None
    if not raw.strip():
        return {}
    try:
        value = loads_bounded(raw)
    except NotJson as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", parameter=name)
    return value


def _scope(body: dict[str, Any]) -> Scope:
    given = [(kind, _string(body, kind.value)) for kind in SilenceScope]
    named = [(kind, value) for kind, value in given if value is not None]
    if len(named) != 1:
        raise InvalidRequest("name exactly one of node, waba or space", parameter="scope")
    kind, value = named[0]
    if kind is not SilenceScope.SPACE and not is_node_id(value):
        raise NodeNotFound(f"{kind.value} {value[:64]} is not known to this account")
    if kind is SilenceScope.SPACE and not 0 < len(value) <= 128:
        raise NodeNotFound("this space is not known to this account", what="space")
    return Scope(kind, value)


def _until(body: dict[str, Any], now: datetime) -> datetime:
    duration, until = _string(body, "for"), _string(body, "until")
    if (duration is None) == (until is None):
        raise InvalidRequest("give exactly one of for or until", parameter="for")
    if duration is not None:
        return now + parse_duration(duration)
    assert until is not None
    return parse_time(until)


class SilenceEndpoints:
    def __init__(self, queries: HealthQueries, alerting: Alerting) -> None:
        self._queries = queries
        self._alerting = alerting

    async def _answer(
        self, request: Request, work: Callable[[Principal], Awaitable[JSONResponse]]
    ) -> JSONResponse:
        try:
            principal = await self._queries.caller(BearerToken(_bearer(request)))
            return await work(principal)
        except CoreError as exc:
            return ERRORS.render(exc)

    async def create(self, request: Request) -> JSONResponse:
        async def work(principal: Principal) -> JSONResponse:
            body = await _body(request)
            scope = _scope(body)
            until = _until(body, self._alerting.clock())
            created = await self._alerting.silence(principal, scope, until, _string(body, "reason"))
            return JSONResponse(silence_json(created), status_code=201)

        return await self._answer(request, work)

    async def list(self, request: Request) -> JSONResponse:
        async def work(principal: Principal) -> JSONResponse:
            found = await self._alerting.silences(principal)
            return JSONResponse({"data": [silence_json(s) for s in found]})

        return await self._answer(request, work)

    async def delete(self, request: Request) -> JSONResponse:
        raw: str = request.path_params["silence_id"]

        async def work(principal: Principal) -> JSONResponse:
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
                raise NodeNotFound(f"silence {raw[:32]} is not known to this account")
            lifted = await self._alerting.unsilence(principal, int(raw))
            return JSONResponse(silence_json(lifted))

        return await self._answer(request, work)

    async def ack(self, request: Request) -> JSONResponse:
        node_id: str = request.path_params["node_id"]

        async def work(principal: Principal) -> JSONResponse:
            body = await _body(request)
            if not is_node_id(node_id):
                raise NodeNotFound(f"node {node_id[:64]} is not known to this account")
            ack = await self._alerting.ack(principal, node_id, _string(body, "note"))
            return JSONResponse(acknowledgement_json(ack))

        return await self._answer(request, work)


def silence_routes(queries: HealthQueries, alerting: Alerting) -> list[Route]:
    endpoints = SilenceEndpoints(queries, alerting)
    return [
        Route("/api/v1/silences", endpoints.create, methods=["POST"]),
        Route("/api/v1/silences", endpoints.list, methods=["GET"]),
        Route("/api/v1/silences/{silence_id}", endpoints.delete, methods=["DELETE"]),
        Route("/api/v1/nodes/{node_id}/ack", endpoints.ack, methods=["POST"]),
    ]
