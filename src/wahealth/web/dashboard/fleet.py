"""The fleet page: every node of the account, filtered, searched, sorted and paged.

All of it is done by the database (see the `Fleet` port); the page only reads its
parameters, refusing values it cannot use with a 400 that says which and why. Nodes
acknowledged or under a silence are marked (two more reads: the page's nodes'
acknowledgements, and the account's silences).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wahealth.core.alerting import Alerting
from wahealth.web.dashboard.console import BadRequest, Console, NotFound, Visit
from wahealth.web.dashboard.node import covering
from wahealth.web.dashboard.ports import ConnectionTrouble, Fleet

STATUSES = ("BLOCKED", "LIMITED", "UNKNOWN", "AVAILABLE")  # as the page lists them
KINDS = {"phone": "PHONE_NUMBER", "template": "MESSAGE_TEMPLATE", "waba": "WABA"}
SORTS = ("status", "name", "kind", "age", "id")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 100_000
MAX_SEARCH_CHARS = 100


@dataclass(frozen=True, slots=True)
class FleetQuery:
    """The fleet page's parameters, as they appear in its URL."""

    status: str = ""
    kind: str = ""
    space: str = ""
    q: str = ""
    sort: str = "status"
    dir: str = "asc"
    page: int = 1
    per: int = DEFAULT_PAGE_SIZE

    def params(self) -> dict[str, Any]:
        """Only the parameters that differ from the defaults (for links)."""
        defaults = asdict(FleetQuery())
        return {k: v for k, v in asdict(self).items() if v != defaults[k]}


def _choice(request: Request, name: str, allowed: tuple[str, ...] | list[str]) -> str:
    value = request.query_params.get(name, "")
    if value and value not in allowed:
        raise BadRequest(f"{name} must be one of: {', '.join(allowed)}.")
    return value


def _number(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from 1 to {high}.")
    return int(raw)


def parse_query(request: Request, space_ids: tuple[str, ...]) -> FleetQuery:
    """The page's parameters, checked; BadRequest or NotFound for ones it cannot use."""
    q = request.query_params.get("q", "").strip()
    if len(q) > MAX_SEARCH_CHARS:
        raise BadRequest(f"Search for at most {MAX_SEARCH_CHARS} characters.")
    space = request.query_params.get("space", "")
    if space and space not in space_ids:
        raise NotFound(f"Space {space[:64]} is not one of this account's spaces.")
    per = _number(request, "per", DEFAULT_PAGE_SIZE, max(PAGE_SIZES))
    if per not in PAGE_SIZES:
        raise BadRequest(f"per must be one of: {', '.join(map(str, PAGE_SIZES))}.")
    return FleetQuery(
        status=_choice(request, "status", STATUSES),
        kind=_choice(request, "kind", list(KINDS)),
        space=space,
        q=q,
        sort=_choice(request, "sort", SORTS) or "status",
        dir=_choice(request, "dir", ("asc", "desc")) or "asc",
        page=_number(request, "page", 1, MAX_PAGE),
        per=per,
    )


class FleetPage:
    def __init__(
        self,
        console: Console,
        fleet: Fleet,
        alerting: Alerting,
        connections: ConnectionTrouble | None = None,
    ) -> None:
        self._console = console
        self._fleet = fleet
        self._alerting = alerting
        self._connections = connections

    async def show(self, request: Request, visit: Visit) -> Response:
        query = parse_query(request, visit.space_ids)
        found = await self._fleet.page(
            visit.account,
            status=query.status or None,
            kind=KINDS.get(query.kind),
            space_id=query.space or None,
            search=query.q or None,
            sort=query.sort,
            descending=query.dir == "desc",
            offset=(query.page - 1) * query.per,
            limit=query.per,
        )
        acks = await self._alerting.acknowledgements([n.node_id for n in found.nodes])
        now = self._alerting.clock()
        silences = await self._alerting.silences(visit.principal) if found.nodes else []
        active = [s for s in silences if s.active_at(now)]
        silenced = {}
        for node in found.nodes:
            ends = [s.effective_end() for s in covering(active, node)]
            if ends:
                silenced[node.node_id] = max(ends)
        refused = (
            await self._connections.refused_for(visit.space_ids)
            if self._connections is not None
            else []
        )
        pages = max(1, -(-found.total // query.per))
        first = (query.page - 1) * query.per + 1 if found.nodes else 0
        context = {
            "nav": "fleet",
            "title": "Fleet",
            "q": query,
            "params": query.params(),
            "nodes": found.nodes,
            "refused_connections": refused,
            "acks": acks,
            "silenced": silenced,
            "total": found.total,
            "counts": {status: found.counts.get(status, 0) for status in STATUSES},
            "counted": sum(found.counts.values()),
            "statuses": STATUSES,
            "kinds": list(KINDS),
            "sorts": SORTS,
            "page_sizes": PAGE_SIZES,
            "pages": pages,
            "first": first,
            "last": first + len(found.nodes) - 1 if found.nodes else 0,
        }
        return self._console.page(request, visit, "fleet.html", context)
