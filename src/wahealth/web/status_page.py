"""Public status pages: `GET /status/{space_id}` (HTML) and `GET /status/{space_id}.json`.

For spaces that opt in (`public_status = true`), like Atlassian Statuspage: each phone
number and template of the space with its current status and 90 daily bars (the worst
status of each UTC day, from its stored transitions; days before its first report say
"no data"). Only the space's own nodes are shown, and of their errors only the public
text: the status and the error catalog's description (in the language asked for with
`?lang=` or Accept-Language). A space that did not opt in is the same 404 as one that
does not exist. Server-rendered from a Jinja2 template; nothing is loaded from elsewhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wahealth.domain.catalog import describe
from wahealth.domain.languages import Language, choose
from wahealth.domain.model import Status
from wahealth.domain.public import BAR_DAYS, DayBar, PublicNode, StatusChange, daily_bars
from wahealth.domain.public import window_start as bars_start

PAGE_SIZE = 100
MAX_PAGE = 100_000
CACHE_CONTROL = "max-age=60, public"
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("wahealth.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


class StatusPages(Protocol):
    """What a status page reads (the public views repository)."""

    async def public_space(self, space_id: str) -> bool: ...

    async def space_nodes(
        self, space_id: str, *, offset: int = 0, limit: int = 100
    ) -> tuple[Sequence[PublicNode], int]: ...

    async def space_statuses(self, space_id: str) -> Mapping[Status | None, int]: ...

    async def status_changes(
        self, node_ids: Sequence[str], since: datetime
    ) -> Mapping[str, Sequence[StatusChange]]: ...


def _label(status: Status | None) -> str:
    return "unknown" if status is None else status.value


def _overall(counts: Mapping[Status | None, int]) -> str:
    """The space's headline: the worst known status, or unknown when nothing is known."""
    known = [s for s, n in counts.items() if s is not None and n]
    return _label(max(known, key=lambda s: s.severity)) if known else "unknown"


def _descriptions(node: PublicNode, language: Language) -> list[str]:
    texts = []
    for code in node.error_codes:
        found = describe(code, language)
        if found is not None and found[0] not in texts:
            texts.append(found[0])
    return texts


class StatusPage:
    """One space's public page, assembled from storage."""

    def __init__(self, pages: StatusPages, clock: Callable[[], float] = time.time) -> None:
        self._pages = pages
        self._clock = clock

    async def view(self, space_id: str, page: int, language: Language) -> dict[str, Any] | None:
        """The page's content (the JSON answer), or None when the space has no public page."""
        if not await self._pages.public_space(space_id):
            return None
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        nodes, total = await self._pages.space_nodes(
            space_id, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        counts = await self._pages.space_statuses(space_id)
        changes = await self._pages.status_changes(
            [n.node_id for n in nodes], bars_start(today, BAR_DAYS)
        )
        pages = max(1, math.ceil(total / PAGE_SIZE))
        return {
            "space": space_id,
            "status": _overall(counts),
            "counts": {_label(s): counts.get(s, 0) for s in (*Status, None)},
            "from": _day(today, -(BAR_DAYS - 1)),
            "to": today.isoformat(),
            "nodes": [
                _node(node, daily_bars(changes.get(node.node_id, ()), today=today), language)
                for node in nodes
            ],
            "page": page,
            "pages": pages,
            "total": total,
        }


def _day(today: date, offset: int) -> str:
    return date.fromordinal(today.toordinal() + offset).isoformat()


def _node(node: PublicNode, bars: Sequence[DayBar], language: Language) -> dict[str, Any]:
    return {
        "id": node.node_id,
        "kind": node.kind.value,
        "name": node.name,
        "status": _label(node.status),
        "description": _descriptions(node, language),
        "bars": [None if bar.status is None else bar.status.value for bar in bars],
    }


def _page_number(raw: str | None) -> int | None:
    if raw is None:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        return None
    return int(raw)


def status_page_routes(pages: StatusPages) -> list[BaseRoute]:
    status_page = StatusPage(pages)
    template = _ENV.get_template("status_page.html")

    async def page(request: Request) -> Response:
        name: str = request.path_params["space_id"]
        as_json = name.endswith(".json")
        space_id = name.removesuffix(".json") if as_json else name
        number = _page_number(request.query_params.get("page"))
        headers = {"Cache-Control": CACHE_CONTROL, "Vary": "Accept-Language"}
        if number is None:
            message = f"page must be a whole number from 1 to {MAX_PAGE}"
            if as_json:
                return JSONResponse({"error": message}, status_code=400, headers=headers)
            return HTMLResponse(_ENV.get_template("status_error.html").render(
                message=message), status_code=400, headers=headers)  # fmt: skip
        language = choose(request.query_params.get("lang"), request.headers.get("accept-language"))
        view = await status_page.view(space_id, number, language)
        if view is None:
            if as_json:
                return JSONResponse({"error": "no status page here"}, 404, headers=headers)
            return HTMLResponse(_ENV.get_template("status_error.html").render(
                message="No status page here."), status_code=404, headers=headers)  # fmt: skip
        if as_json:
            return JSONResponse(view, headers=headers)
        last = date.fromisoformat(view["to"])
        dates = [_day(last, offset) for offset in range(1 - BAR_DAYS, 1)]
        return HTMLResponse(template.render(view=view, days=BAR_DAYS, dates=dates), headers=headers)

    return [Route("/status/{space_id}", page, methods=["GET", "HEAD"])]
