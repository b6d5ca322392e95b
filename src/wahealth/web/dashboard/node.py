"""The node page: what is wrong and how to fix it, in the reader's language, and its history.

The entities come from the node's last stored report, with the catalog's descriptions
and solutions (and LIMITED reasons) in the chosen language; uptime is computed from
the node's transitions; the deliveries are the outbox rows of those transitions. The
controls (see `controls`) show the node's acknowledgement and the silences covering it,
with the forms that change them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wahealth.core.alerting import Alerting
from wahealth.core.validate import is_node_id
from wahealth.domain.catalog import localize
from wahealth.domain.model import Entity
from wahealth.domain.records import Silence
from wahealth.domain.wire import MalformedHealthStatus, parse_health_status
from wahealth.web.dashboard.console import BadRequest, Console, NotFound, Visit
from wahealth.web.dashboard.ports import Alerts, Fleet, FleetNode, HealthLog
from wahealth.web.dashboard.uptime import WINDOWS, uptimes

TIMELINE_LENGTH = 50
# Meta's names of the kept catalog fields, as the page labels them.
FIELD_LABELS = {
    "quality_rating": "Quality",
    "messaging_limit_tier": "Messaging limit tier",
    "whatsapp_business_manager_messaging_limit": "Business Manager messaging limit",
    "throughput": "Throughput",
    "status": "Meta status",
    "name_status": "Display name status",
    "code_verification_status": "Code verification",
    "quality_score": "Quality",
    "category": "Category",
    "rejected_reason": "Rejected reason",
}
DELIVERIES_SHOWN = 50
# What a control answered, as the page tells it after the redirect.
NOTICES = {
    "acknowledged": "Acknowledged: no repeat alert for this node until its status changes.",
    "silenced": "Silenced: alerts in its scope are stored as suppressed, not delivered.",
    "unsilenced": "The silence has ended; if nodes are still not AVAILABLE, one alert says so.",
}
DURATIONS = ("30m", "1h", "2h", "4h", "8h", "1d", "3d", "7d")


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or int(raw) < 1:
        raise BadRequest("before must be a transition id (a positive whole number).")
    return int(raw)


def scopes(node: FleetNode) -> dict[str, tuple[str, str]]:
    """What a silence from this node's page may cover: kind -> (id, how the page says it)."""
    waba = node.node_id if node.kind == "WABA" else node.waba_id
    found = {"node": (node.node_id, "this node")}
    if node.kind != "WABA":
        found["waba"] = (waba, f"its WABA {node.waba_name or waba}")
    else:
        found["waba"] = (waba, "this WABA and its numbers and templates")
    found["space"] = (node.space_id, f"its space {node.space_id}")
    return found


def covering(silences: Iterable[Silence], node: FleetNode) -> list[Silence]:
    """The silences whose scope takes in this node (itself, its WABA or its space)."""
    waba = node.node_id if node.kind == "WABA" else node.waba_id
    return [
        s
        for s in silences
        if s.space_id == node.space_id and s.covers(node.node_id, waba, node.space_id)
    ]


class NodePage:
    def __init__(
        self,
        console: Console,
        fleet: Fleet,
        health: HealthLog,
        alerts: Alerts,
        alerting: Alerting,
    ) -> None:
        self._console = console
        self._fleet = fleet
        self._health = health
        self._alerts = alerts
        self._alerting = alerting

    async def node_of(self, visit: Visit, node_id: str) -> FleetNode:
        """The account's node by id; NotFound for any other."""
        missing = NotFound(f"Node {node_id[:64]} is not known to this account.")
        if not is_node_id(node_id):
            raise missing
        node = await self._fleet.node(visit.account, node_id)
        if node is None:
            raise missing
        return node

    async def show(self, request: Request, visit: Visit) -> Response:
        before = _before(request)
        node = await self.node_of(visit, request.path_params["node_id"])
        notice = NOTICES.get(request.query_params.get("notice", ""), "")
        return await self.render(request, visit, node, {"notice": notice}, before=before)

    async def render(
        self,
        request: Request,
        visit: Visit,
        node: FleetNode,
        extra: Mapping[str, Any],
        *,
        before: int | None = None,
        status_code: int = 200,
    ) -> Response:
        """The node's page; `extra` says what a control answered (notice, error, form)."""
        node_id = node.node_id
        now = datetime.now(UTC)
        health = await self._health.get(node_id)
        entities: tuple[Entity, ...] = ()
        if health is not None and health.payload is not None and health.fetched_at is not None:
            try:
                report = parse_health_status(
                    health.payload, fetched_at=health.fetched_at, node_id=node_id
                )
            except MalformedHealthStatus:
                report = None
            if report is not None:
                entities = localize(report, visit.language).entities
        fields = await self._fleet.kept_fields(node_id, node.kind)
        longest = max(span for _, span in WINDOWS)
        prior, changes = await self._fleet.status_changes(node_id, now - longest)
        timeline = await self._health.history(node_id, TIMELINE_LENGTH + 1, before)
        deliveries = await self._alerts.alerts_of_node(visit.account, node_id, DELIVERIES_SHOWN)
        context = {
            "nav": "fleet",
            "title": node_id,
            "node": node,
            "health": health,
            "fields": [
                (name, FIELD_LABELS.get(name, name), value) for name, value in fields.items()
            ],
            "entities": entities,
            "problems": [e for e in entities if e.errors or e.additional_info],
            "uptimes": uptimes(now, prior, changes),
            "timeline": timeline[:TIMELINE_LENGTH],
            "older": timeline[TIMELINE_LENGTH - 1].id if len(timeline) > TIMELINE_LENGTH else None,
            "newest_first": before is None,
            "deliveries": deliveries,
            "now": now,
            "window_days": longest / timedelta(days=1),
            **await self._controls(visit, node),
            "notice": "",
            "control_error": "",
            "filled": {},
            **extra,
        }
        return self._console.page(request, visit, "node.html", context, status_code)

    async def _controls(self, visit: Visit, node: FleetNode) -> dict[str, Any]:
        return {
            "ack": await self._alerting.acknowledgement_of(node.node_id),
            "can_ack": node.status in ("LIMITED", "BLOCKED"),
            "silences": covering(await self._alerting.silences(visit.principal), node),
            "scopes": scopes(node),
            "durations": DURATIONS,
        }
