"""A small server-rendered dashboard: each space's nodes, their status and recent transitions.

Signed in with a Graph token of the account (a form sets an HttpOnly cookie; a
Bearer header or `access_token=` works too), it shows only that account's spaces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any, Protocol
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from wahealth.core.directory import Directory
from wahealth.core.errors import Unauthenticated
from wahealth.domain.records import NodeHealth, Transition
from wahealth.httputil import BodyTooLarge, read_body

LOGIN_MAX_BYTES = 4096


class Spaces(Protocol):
    """The spaces of an account (each with an `id`): the tenancy repository."""

    async def list_spaces(self, account: str | None = None) -> Sequence[Any]: ...


class Nodes(Protocol):
    """A space's catalog nodes (each with `node_id` and `kind`): the catalog repository."""

    async def nodes_of_space(self, space_id: str) -> Sequence[Any]: ...


class HealthLog(Protocol):
    """Last known health and recent transitions: the health repository."""

    async def of_space(self, space_id: str) -> Sequence[NodeHealth]: ...

    async def recent(
        self, limit: int = 50, before_id: int | None = None, space_id: str | None = None
    ) -> Sequence[Transition]: ...


COOKIE = "wahealth_token"
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2733}
table{border-collapse:collapse;width:100%;margin-bottom:2rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #dde3ea;font-size:.9rem}
th{background:#f3f6f9}.s{font-weight:600;padding:.1rem .45rem;border-radius:.3rem}
.AVAILABLE{background:#d8f3dc;color:#1b5e20}.LIMITED{background:#fff3c4;color:#7a5a00}
.BLOCKED{background:#ffd6d6;color:#8e0000}.UNKNOWN{background:#e6e9ee;color:#444}
.summary span{margin-right:1rem}code{font-size:.85rem}
"""


def _badge(status: str | None) -> str:
    label = status or "UNKNOWN"
    css = label if label in {"AVAILABLE", "LIMITED", "BLOCKED"} else "UNKNOWN"
    return f'<span class="s {css}">{escape(label)}</span>'


def _when(at: datetime | None) -> str:
    return "never" if at is None else escape(at.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='30'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _login(message: str = "") -> HTMLResponse:
    note = f"<p>{escape(message)}</p>" if message else ""
    response = HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'><title>wahealth</title>"
        f"<style>{_STYLE}</style></head><body><h1>wahealth</h1>{note}"
        "<form method='post' action='/dashboard/login'>"
        "<label>Graph token <input type='password' name='token' autocomplete='off'></label> "
        "<button>Sign in</button></form></body></html>",
        status_code=401 if message else 200,
    )
    return response


def _nodes_table(nodes: list[tuple[str, str, NodeHealth | None]]) -> str:
    rows = []
    for node_id, kind, health in nodes:
        status = health.can_send_message if health else None
        codes = ", ".join(health.error_codes) if health else ""
        rows.append(
            f"<tr><td><code>{escape(node_id)}</code></td><td>{escape(kind)}</td>"
            f"<td>{_badge(status)}</td><td>{escape(codes)}</td>"
            f"<td>{_when(health.fetched_at if health else None)}</td></tr>"
        )
    return (
        "<table><tr><th>node</th><th>kind</th><th>status</th><th>error codes</th>"
        "<th>fetched</th></tr>" + "".join(rows) + "</table>"
    )


def _transitions_table(transitions: Sequence[Transition]) -> str:
    if not transitions:
        return "<p>No transitions yet.</p>"
    rows = [
        f"<tr><td>{_when(t.occurred_at)}</td><td><code>{escape(t.node_id)}</code></td>"
        f"<td>{_badge(t.before)} → {_badge(t.after)}</td>"
        f"<td>{escape(', '.join(t.error_codes))}</td><td>{escape(t.cause.value)}</td></tr>"
        for t in transitions
    ]
    return (
        "<table><tr><th>when</th><th>node</th><th>change</th><th>error codes</th>"
        "<th>cause</th></tr>" + "".join(rows) + "</table>"
    )


class Dashboard:
    def __init__(
        self,
        directory: Directory,
        tenancy: Spaces,
        catalog: Nodes,
        health: HealthLog,
    ):
        self._directory = directory
        self._tenancy = tenancy
        self._catalog = catalog
        self._health = health

    async def show(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = (
            auth[7:].strip()
            if auth.lower().startswith("bearer ")
            else request.query_params.get("access_token") or request.cookies.get(COOKIE)
        )
        if not token:
            return _login()
        try:
            principal = await self._directory.graph_principal(token)
        except Unauthenticated:
            return _login("That token is not valid (or was revoked).")
        sections = []
        for space in await self._tenancy.list_spaces(principal.account):
            known = {h.node_id: h for h in await self._health.of_space(space.id)}
            nodes = [
                (ref.node_id, str(ref.kind), known.get(ref.node_id))
                for ref in await self._catalog.nodes_of_space(space.id)
            ]
            counts = Counter((h.can_send_message if h else "UNKNOWN") for _, _, h in nodes)
            summary = "".join(
                f"<span>{_badge(status)} {counts.get(status, 0)}</span>"
                for status in ("AVAILABLE", "LIMITED", "BLOCKED", "UNKNOWN")
            )
            recent = await self._health.recent(limit=20, space_id=space.id)
            sections.append(
                f"<h2>Space <code>{escape(space.id)}</code></h2>"
                f"<p class='summary'>{summary}</p>"
                + _nodes_table(nodes)
                + "<h3>Recent transitions</h3>"
                + _transitions_table(recent)
            )
        if not sections:
            sections.append("<p>This account has no spaces yet.</p>")
        title = f"wahealth — {principal.account}"
        return _page(title, f"<h1>{escape(title)}</h1>" + "".join(sections))

    async def login(self, request: Request) -> Response:
        try:
            body = await read_body(request, LOGIN_MAX_BYTES)
        except BodyTooLarge:
            return _login("Enter a Graph token.")
        fields = parse_qs(body.decode("utf-8", errors="replace"))
        token = (fields.get("token") or [""])[0].strip()
        if not token:
            return _login("Enter a Graph token.")
        try:
            await self._directory.graph_principal(token)
        except Unauthenticated:
            return _login("That token is not valid (or was revoked).")
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/dashboard")
        return response


def dashboard_routes(dashboard: Dashboard) -> list[Route]:
    return [
        Route("/dashboard", dashboard.show, methods=["GET"]),
        Route("/dashboard/login", dashboard.login, methods=["POST"]),
    ]
