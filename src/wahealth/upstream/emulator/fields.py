"""Which fields each kind of node has, and how they read on the wire.

Answers list the requested fields in the order asked, then `id` if it was not
asked for, as Graph does; fields without a value are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from wahealth.domain import HealthReport, render_health_status
from wahealth.upstream.emulator.envelopes import GraphAnswer, nonexisting_field
from wahealth.upstream.emulator.state import EmulatorState, Node, NodeType

FieldGetter = Callable[[EmulatorState, Node], Any]

GRAPH_NODE_TYPES: dict[NodeType, str] = {
    "business": "Business",
    "app": "Application",
    "waba": "WhatsAppBusinessAccount",
    "phone_number": "WhatsAppBusinessPhoneNumber",
    "template": "WhatsAppMessageTemplate",
}

DEFAULT_FIELDS: dict[NodeType, tuple[str, ...]] = {
    "business": ("id", "name"),
    "app": ("name", "id"),
    "waba": ("id", "name"),
    "phone_number": (
        "verified_name",
        "code_verification_status",
        "display_phone_number",
        "quality_rating",
        "platform_type",
        "throughput",
        "id",
    ),
    "template": ("name", "language", "status", "category", "id"),
}


def _health_status(state: EmulatorState, node: Node) -> Any:
    entities = state.health_entities(node)
    assert entities is not None  # only registered for nodes that have one
    report = HealthReport(node.spec.id, tuple(entities), fetched_at=datetime.now(UTC))
    return render_health_status(report)["health_status"]


def _attr(name: str) -> FieldGetter:
    return lambda _state, node: getattr(node.spec, name)


def _member(name: str, member: str) -> FieldGetter:
    """A field Meta sends as an object: `{"level": "STANDARD"}` for `throughput`."""
    return lambda _state, node: {member: getattr(node.spec, name)}


def _const(value: Any) -> FieldGetter:
    return lambda _state, _node: value


_ID: FieldGetter = _attr("id")
_NAME: FieldGetter = _attr("name")

FIELDS: dict[NodeType, dict[str, FieldGetter]] = {
    "business": {"id": _ID, "name": _NAME},
    "app": {"id": _ID, "name": _NAME},
    "waba": {"id": _ID, "name": _NAME, "health_status": _health_status},
    "phone_number": {
        "id": _ID,
        "display_phone_number": _attr("display_phone_number"),
        "verified_name": _attr("verified_name"),
        "quality_rating": _attr("quality_rating"),
        "messaging_limit_tier": _attr("messaging_limit_tier"),
        "whatsapp_business_manager_messaging_limit": _attr(
            "whatsapp_business_manager_messaging_limit"
        ),
        "status": _attr("status"),
        "name_status": _attr("name_status"),
        "code_verification_status": _attr("code_verification_status"),
        "platform_type": _const("CLOUD_API"),
        "throughput": _member("throughput", "level"),
        "health_status": _health_status,
    },
    "template": {
        "id": _ID,
        "name": _attr("name"),
        "language": _attr("language"),
        "status": _attr("status"),
        "category": _attr("category"),
        "quality_score": _member("quality_score", "score"),
        "rejected_reason": _attr("rejected_reason"),
        "health_status": _health_status,
    },
}


def parse_fields(raw: str | None) -> list[str] | None:
    """`fields=a,b{x},c` -> ["a", "b", "c"]; nested selections are accepted and ignored."""
    if raw is None:
        return None
    names: list[str] = []
    depth = 0
    current = ""
    for ch in raw:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            names.append(current.strip())
            current = ""
        elif depth == 0:
            current += ch
    names.append(current.strip())
    return [n for n in names if n]


def check_fields(node_type: NodeType, fields: Sequence[str] | None) -> GraphAnswer | None:
    """The Graph error for the first field this kind of node does not have, if any."""
    known = FIELDS[node_type]
    for name in fields or ():
        if name not in known:
            return nonexisting_field(name, GRAPH_NODE_TYPES[node_type])
    return None


def render_node(state: EmulatorState, node: Node, fields: Sequence[str] | None) -> dict[str, Any]:
    """The node's fields (checked beforehand with `check_fields`)."""
    getters = FIELDS[node.type]
    names = list(fields) if fields else list(DEFAULT_FIELDS[node.type])
    if "id" not in names:
        names.append("id")
    out: dict[str, Any] = {}
    for name in names:
        value = getters[name](state, node)
        if value is not None:
            out[name] = value
    return out
