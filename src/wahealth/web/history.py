"""`GET /api/v1/nodes/{node_id}/history`: a node's status transitions, newest first.

Authenticated like the Graph dialect (`Authorization: Bearer <Graph token>`);
an account sees only nodes in its own spaces, and any other node is simply
not found, so ids of other tenants cannot be probed. Paged by transition id:
`next` is the cursor to pass as `before` for the following page, null on the
last one.

    {"node_id": "106540352242922",
     "data": [{"id": 7, "before": "AVAILABLE", "after": "BLOCKED", "cause": "poll", ...}],
     "next": "7"}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wahealth.core.directory import Principal
from wahealth.core.errors import NodeNotFound, ServiceUnavailable, Throttled, Unauthenticated
from wahealth.dialects.common import retry_after_header
from wahealth.monitor.events import iso_utc
from wahealth.storage.health import Transition

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class NodeAccess(Protocol):
    """Who is calling and whether the node is theirs (the gateway's directory)."""

    async def graph_principal(self, token: str | None) -> Principal: ...

    async def check_node(self, principal: Principal, node_id: str) -> str: ...


class TransitionLog(Protocol):
    """A node's transitions, newest first (the health repository)."""

    async def history(
        self, node_id: str, limit: int = 50, before_id: int | None = None
    ) -> list[Transition]: ...


class _BadParameter(ValueError):
    pass


def transition_json(transition: Transition) -> dict[str, Any]:
    """A transition as the API and `wahealth history --json` show it."""
    return {
        "id": transition.id,
        "node_id": transition.node_id,
        "node_kind": transition.node_kind,
        "space_id": transition.space_id,
        "before": transition.before,
        "after": transition.after,
        "error_codes": list(transition.error_codes),
        "changes": transition.changes,
        "cause": transition.cause.value,
        "occurred_at": iso_utc(transition.occurred_at),
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise _BadParameter(f"{name} must be an integer from {low} to {high}")
    return int(raw)


Admit = Callable[[Principal], Awaitable[None]]


class HistoryEndpoint:
    def __init__(
        self, access: NodeAccess, transitions: TransitionLog, admit: Admit | None = None
    ) -> None:
        self._access = access
        self._transitions = transitions
        self._admit = admit

    async def handle(self, request: Request) -> JSONResponse:
        node_id: str = request.path_params["node_id"]
        try:
            principal = await self._access.graph_principal(_bearer(request))
        except Unauthenticated as exc:
            return _error(401, str(exc), {"WWW-Authenticate": 'Bearer realm="wahealth"'})
        if self._admit is not None:
            # The account's request rate covers this API too, as it does the dialects.
            try:
                await self._admit(principal)
            except Throttled as exc:
                return _error(429, str(exc), {"Retry-After": retry_after_header(exc.retry_after)})
            except ServiceUnavailable as exc:
                return _error(503, str(exc), {"Retry-After": retry_after_header(exc.retry_after)})
        try:
            limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
            before = _int_param(request, "before", None, 1, 2**63 - 1)
        except _BadParameter as exc:
            return _error(400, str(exc))
        try:
            await self._access.check_node(principal, node_id)
        except NodeNotFound:
            return _error(404, f"node {node_id} is not known to this account")
        rows = await self._transitions.history(node_id, limit + 1, before)
        page = rows[:limit]
        more = len(rows) > limit
        return JSONResponse(
            {
                "node_id": node_id,
                "data": [transition_json(t) for t in page],
                "next": str(page[-1].id) if more and page else None,
            }
        )


def history_routes(
    access: NodeAccess, transitions: TransitionLog, admit: Admit | None = None
) -> list[Route]:
    return [
        Route(
            "/api/v1/nodes/{node_id}/history",
            HistoryEndpoint(access, transitions, admit).handle,
            methods=["GET"],
        )
    ]
