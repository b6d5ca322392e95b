"""The node page's controls: acknowledge its problem, silence it (or its WABA or space),
and end a silence (from the node page or the alerts page).

Each is a form posted with the session's form token; "who" is the signed-in
credential's label, as in the JSON API. A silence's scope is named by kind only
(`node`, `waba`, `space`): its id is the node's own, its WABA's or its space's, so a
form can name nothing outside the account. A value the use case refuses (a duration
that is not one, an end in the past) shows the node page again with the reason and
what was typed; a success redirects to the page with a notice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wahealth.core.alerting import Alerting, Scope, parse_duration, parse_time
from wahealth.core.errors import InvalidRequest, NodeNotFound
from wahealth.domain.records import SilenceScope
from wahealth.web.dashboard.console import BadRequest, NotFound, Visit, safe_next
from wahealth.web.dashboard.node import NodePage, scopes

MAX_SILENCE_ID_CHARS = 18


def _until(duration: str, until: str, now: datetime) -> datetime:
    """The end of a silence from the form: a duration (`2h`) or an end time.

    A time without a zone (what a browser's date-and-time field sends) is UTC, as the
    form says.
    """
    duration, until = duration.strip(), until.strip()
    if duration and until:
        raise InvalidRequest("Give a duration or an end time, not both.", parameter="for")
    if duration:
        return now + parse_duration(duration)
    if not until:
        raise InvalidRequest("Give a duration (like 2h or 1d) or an end time.", parameter="for")
    try:
        naive = datetime.fromisoformat(until)
    except ValueError:
        naive = None
    if naive is not None and naive.tzinfo is None:
        return naive.replace(tzinfo=UTC)
    return parse_time(until)


def _with_notice(target: str, notice: str) -> str:
    """The page to go back to, telling it what happened (in place of any earlier notice)."""
    path, _, query = target.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "notice"]
    return f"{path}?{urlencode([*kept, ('notice', notice)])}"


class Controls:
    def __init__(self, nodes: NodePage, alerting: Alerting) -> None:
        self._nodes = nodes
        self._alerting = alerting

    async def ack(self, request: Request, visit: Visit) -> Response:
        node = await self._nodes.node_of(visit, request.path_params["node_id"])
        note = visit.form.get("note", "")
        try:
            await self._alerting.ack(visit.principal, node.node_id, note)
        except NodeNotFound as exc:
            raise NotFound(str(exc)) from None
        except InvalidRequest as exc:
            extra = {"control_error": _sentence(exc), "filled": {"note": note}}
            return await self._nodes.render(request, visit, node, extra, status_code=400)
        return RedirectResponse(
            _with_notice(f"/dashboard/nodes/{node.node_id}", "acknowledged"), status_code=303
        )

    async def silence(self, request: Request, visit: Visit) -> Response:
        node = await self._nodes.node_of(visit, request.path_params["node_id"])
        form = visit.form
        kind = form.get("scope", "")
        choices = scopes(node)
        if kind not in choices:
            raise BadRequest("Choose what to silence: this node, its WABA or its space.")
        scope = Scope(SilenceScope(kind), choices[kind][0])
        filled = {name: form.get(name, "") for name in ("scope", "for", "until", "reason")}
        try:
            until = _until(form.get("for", ""), form.get("until", ""), self._alerting.clock())
            await self._alerting.silence(visit.principal, scope, until, form.get("reason"))
        except NodeNotFound as exc:
            raise NotFound(str(exc)) from None
        except InvalidRequest as exc:
            extra = {"control_error": _sentence(exc), "filled": filled}
            return await self._nodes.render(request, visit, node, extra, status_code=400)
        return RedirectResponse(
            _with_notice(f"/dashboard/nodes/{node.node_id}", "silenced"), status_code=303
        )

    async def unsilence(self, request: Request, visit: Visit) -> Response:
        raw: str = request.path_params["silence_id"]
        missing = NotFound(f"Silence {raw[:32]} is not known to this account.")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_SILENCE_ID_CHARS):
            raise missing
        try:
            await self._alerting.unsilence(visit.principal, int(raw))
        except NodeNotFound:
            raise missing from None
        target = safe_next(visit.form.get("next") or "/dashboard/alerts")
        return RedirectResponse(_with_notice(target, "unsilenced"), status_code=303)


def _sentence(exc: Exception) -> str:
    """A use case's message as the page writes it: capitalised, with a full stop."""
    text = str(exc).strip()
    if not text:
        return "That value cannot be used."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."
