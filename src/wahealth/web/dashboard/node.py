"""The node page: what is wrong and how to fix it, in the reader's language, and its history.

The entities come from the node's last stored report, with the catalog's descriptions
and solutions (and LIMITED reasons) in the chosen language; uptime is computed from
the node's transitions; the deliveries are the outbox rows of those transitions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from wahealth.core.validate import is_node_id
from wahealth.domain.catalog import localize
from wahealth.domain.model import Entity
from wahealth.domain.wire import MalformedHealthStatus, parse_health_status
from wahealth.web.dashboard.console import BadRequest, Console, NotFound, Visit
from wahealth.web.dashboard.ports import Alerts, Fleet, HealthLog
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


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or int(raw) < 1:
        raise BadRequest("before must be a transition id (a positive whole number).")
    return int(raw)


class NodePage:
    def __init__(self, console: Console, fleet: Fleet, health: HealthLog, alerts: Alerts) -> None:
        self._console = console
        self._fleet = fleet
        self._health = health
        self._alerts = alerts

    async def show(self, request: Request, visit: Visit) -> Response:
        node_id: str = request.path_params["node_id"]
        missing = NotFound(f"Node {node_id[:64]} is not known to this account.")
        if not is_node_id(node_id):
            raise missing
        before = _before(request)
        node = await self._fleet.node(visit.account, node_id)
        if node is None:
            raise missing
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
        }
        return self._console.page(request, visit, "node.html", context)
