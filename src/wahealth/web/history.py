"""`GET /api/v1/nodes/{node_id}/history`: a node's transitions, newest first.

A transition is a change of health (`field` null; `before`/`after` are overall
statuses) or of one kept field (`field` names it, e.g. `quality_rating`;
`before`/`after` are its values, e.g. `GREEN` -> `YELLOW`).

Authenticated like the Graph dialect (`Authorization: Bearer <Graph token>`) and
counted against the account's rate limit; an account sees only nodes in its own
spaces, and any other node is simply not found, so ids of other tenants cannot be
probed. Paged by transition id: `next` is the cursor to pass as `before` for the
following page, null on the last one.

    {"node_id": "106540352242922",
     "data": [{"id": 8, "field": "quality_rating", "before": "GREEN", "after": "YELLOW", ...},
              {"id": 7, "field": null, "before": "AVAILABLE", "after": "BLOCKED", ...}],
     "next": "7"}
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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
from wahealth.core.queries import BearerToken, HealthQueries, HistoryPage
from wahealth.core.validate import is_node_id
from wahealth.domain.records import Transition, iso_utc
from wahealth.httputil import ErrorTable, retry_after_header

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def transition_json(transition: Transition) -> dict[str, Any]:
    """A transition as the API and `wahealth history --json` show it."""
    return {
        "id": transition.id,
        "node_id": transition.node_id,
        "node_kind": transition.node_kind,
        "space_id": transition.space_id,
        "field": transition.field,
        "before": transition.before,
        "after": transition.after,
        "error_codes": list(transition.error_codes),
        "changes": transition.changes,
        "cause": transition.cause.value,
        "occurred_at": iso_utc(transition.occurred_at),
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _retry(status: int, exc: Throttled | ServiceUnavailable | UpstreamUnavailable) -> JSONResponse:
    return _error(status, str(exc), {"Retry-After": retry_after_header(exc.retry_after)})


def _not_found(exc: CoreError) -> JSONResponse:
    return _error(404, str(exc))


ERRORS: ErrorTable[JSONResponse] = ErrorTable(
    {
        Unauthenticated: lambda exc: _error(
            401, str(exc), {"WWW-Authenticate": 'Bearer realm="wahealth"'}
        ),
        Throttled: lambda exc: _retry(429, exc),
        ServiceUnavailable: lambda exc: _retry(503, exc),
        UpstreamUnavailable: lambda exc: _retry(503, exc),
        InvalidRequest: lambda exc: _error(400, str(exc)),
        RequestTooLarge: lambda exc: _error(413, str(exc)),
        NodeNotFound: _not_found,
        AccessDenied: _not_found,
    }
)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", parameter=name)
    return int(raw)


class HistoryEndpoint:
    def __init__(self, queries: HealthQueries) -> None:
        self._queries = queries

    async def handle(self, request: Request) -> JSONResponse:
        node_id: str = request.path_params["node_id"]

        def parse() -> HistoryPage:
            limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
            before = _int_param(request, "before", None, 1, 2**63 - 1)
            if not is_node_id(node_id):
                raise NodeNotFound(f"node {node_id[:64]} is not known to this account")
            return HistoryPage(node_id, limit, before)

        try:
            answer = await self._queries.history_of(BearerToken(_bearer(request)), parse)
        except CoreError as exc:
            return ERRORS.render(exc)
        return JSONResponse(
            {
                "node_id": answer.node_id,
                "data": [transition_json(t) for t in answer.transitions],
                "next": None if answer.next_before is None else str(answer.next_before),
            }
        )


def history_routes(queries: HealthQueries) -> list[Route]:
    return [
        Route("/api/v1/nodes/{node_id}/history", HistoryEndpoint(queries).handle, methods=["GET"])
    ]
