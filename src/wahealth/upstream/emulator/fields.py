"""Which fields each kind of node has, and how they read on the wire.

Answers list the requested fields in the order asked, then `id` if it was not
asked for, as Graph does; fields without a value are left out. Every field the
WhatsApp SDKs ask for is here, in Meta's shape (facebook-business's
`WhatsAppBusinessAccount` fields, pywa's `BusinessPhoneNumber`,
`WhatsAppBusinessAccount` and `TemplateDetails`). A value the scenario gives a node
(an attribute of its spec named as Meta names the field) wins over the default here.
"""

from __future__ import annotations

import functools
import hashlib
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

# When the scenario's nodes were "onboarded": a fixed moment, so answers are reproducible.
ONBOARDED_AT = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
_COUNTRIES = {"1": "US", "44": "GB", "49": "DE", "55": "BR", "62": "ID", "86": "CN", "91": "IN"}


def _health_status(state: EmulatorState, node: Node) -> Any:
    entities = state.health_entities(node)
    assert entities is not None  # only registered for nodes that have one
    report = HealthReport(node.spec.id, tuple(entities), fetched_at=datetime.now(UTC))
    return render_health_status(report)["health_status"]


def _attr(name: str) -> FieldGetter:
    return lambda _state, node: getattr(node.spec, name)


def _spec_or(name: str, default: Any) -> FieldGetter:
    """The spec's value for the field when the scenario has one, else `default`."""

    def get(_state: EmulatorState, node: Node) -> Any:
        value = getattr(node.spec, name, None)
        return default if value is None else value

    return get


def _const(value: Any) -> FieldGetter:
    return lambda _state, _node: value


def _dial_code(_state: EmulatorState, node: Node) -> str | None:
    number = str(getattr(node.spec, "display_phone_number", ""))
    if not number.startswith("+"):
        return None
    head = number[1:].split(" ", 1)[0].split("-", 1)[0]
    return head if head.isdigit() else None


def _country(state: EmulatorState, node: Node) -> str | None:
    code = _dial_code(state, node)
    return _COUNTRIES.get(code) if code is not None else None


def _throughput(_state: EmulatorState, node: Node) -> Any:
    value = getattr(node.spec, "throughput", None)
    return {"level": value or "STANDARD"} if not isinstance(value, dict) else value


def _phone_quality_score(_state: EmulatorState, node: Node) -> Any:
    return {"score": getattr(node.spec, "quality_rating", None) or "UNKNOWN"}


def _template_quality_score(_state: EmulatorState, node: Node) -> Any:
    value = getattr(node.spec, "quality_score", None)
    if isinstance(value, dict):
        return value
    return {"score": value or "UNKNOWN", "date": int(ONBOARDED_AT.timestamp())}


def _conversational_automation(_state: EmulatorState, node: Node) -> Any:
    return {"enable_welcome_message": False, "prompts": [], "id": node.spec.id}


def _certificate(_state: EmulatorState, node: Node) -> str:
    # Meta's certificate is an opaque base64 blob; a stable stand-in per number.
    return hashlib.sha256(f"certificate:{node.spec.id}".encode()).hexdigest()


def _namespace(_state: EmulatorState, node: Node) -> str:
    digest = hashlib.sha256(f"namespace:{node.spec.id}".encode()).hexdigest()
    return f"{digest[:8]}_{digest[8:12]}_{digest[12:16]}_{digest[16:20]}_{digest[20:32]}"


def _waba_business(state: EmulatorState, node: Node) -> Any:
    business = state.node(getattr(node.spec, "business", ""))
    if business is None:
        return None
    return {"id": business.spec.id, "name": getattr(business.spec, "name", None) or ""}


def _subscribed_apps(state: EmulatorState, node: Node) -> Any:
    app = state.node(getattr(node.spec, "app", ""))
    if app is None:
        return {"data": []}
    name = getattr(app.spec, "name", None) or ""
    link = f"https://www.facebook.com/games/?app_id={app.spec.id}"
    return {
        "data": [{"whatsapp_business_api_data": {"id": app.spec.id, "name": name, "link": link}}]
    }


def _components(_state: EmulatorState, node: Node) -> Any:
    name = getattr(node.spec, "name", "template")
    return [
        {"type": "HEADER", "format": "TEXT", "text": "Order update"},
        {
            "type": "BODY",
            "text": f"Hello {{{{1}}}}, this is {name}: your order {{{{2}}}} has shipped.",
            "example": {"body_text": [["Maria", "A-1024"]]},
        },
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
    ]


_ID: FieldGetter = _attr("id")
_NAME: FieldGetter = _attr("name")
_ONBOARDED = ONBOARDED_AT.strftime("%Y-%m-%dT%H:%M:%S+0000")

FIELDS: dict[NodeType, dict[str, FieldGetter]] = {
    "business": {"id": _ID, "name": _NAME},
    "app": {"id": _ID, "name": _NAME},
    "waba": {
        "id": _ID,
        "name": _NAME,
        "health_status": _health_status,
        "timezone_id": _spec_or("timezone_id", "1"),
        "message_template_namespace": _namespace,
        "status": _spec_or("status", "ACTIVE"),
        "account_review_status": _spec_or("account_review_status", "APPROVED"),
        "business_verification_status": _spec_or("business_verification_status", "verified"),
        "is_enabled_for_insights": _const(True),
        "marketing_messages_lite_api_status": _const("INELIGIBLE"),
        "marketing_messages_onboarding_status": _const("INELIGIBLE_INACTIVE_OR_RESTRICTED"),
        "ownership_type": _const("SELF"),
        "owner_business_info": _waba_business,
        "on_behalf_of_business_info": lambda state, node: {
            **(_waba_business(state, node) or {"id": "", "name": ""}),
            "status": "APPROVED",
            "type": "SELF",
        },
        "currency": _spec_or("currency", "USD"),
        "country": _spec_or("country", "CN"),
        "subscribed_apps": _subscribed_apps,
        "disable_marketing_messages_on_cloud_api": _const(False),
        "creation_time": _const(_ONBOARDED),
        "is_shared_with_partners": _const(False),
        "template_auto_archival_enabled": _const(False),
        "whatsapp_business_manager_messaging_limit": _spec_or(
            "whatsapp_business_manager_messaging_limit", "TIER_2K"
        ),
    },
    "phone_number": {
        "id": _ID,
        "display_phone_number": _attr("display_phone_number"),
        "verified_name": _attr("verified_name"),
        "quality_rating": _attr("quality_rating"),
        "quality_score": _phone_quality_score,
        "messaging_limit_tier": _spec_or("messaging_limit_tier", "TIER_1K"),
        "whatsapp_business_manager_messaging_limit": _spec_or(
            "whatsapp_business_manager_messaging_limit", "TIER_2K"
        ),
        "status": _spec_or("status", "CONNECTED"),
        "name_status": _spec_or("name_status", "APPROVED"),
        "new_name_status": _spec_or("new_name_status", "NONE"),
        "code_verification_status": _spec_or("code_verification_status", "VERIFIED"),
        "platform_type": _spec_or("platform_type", "CLOUD_API"),
        "account_mode": _spec_or("account_mode", "LIVE"),
        "throughput": _throughput,
        "conversational_automation": _conversational_automation,
        "webhook_configuration": _const({"application": "https://example.com/webhooks/meta"}),
        "is_on_biz_app": _const(False),
        "is_official_business_account": _const(False),
        "is_pin_enabled": _const(True),
        "is_preverified_number": _const(False),
        "search_visibility": _const("VISIBLE"),
        "eligibility_for_api_business_global_search": _const("NON_ELIGIBLE_UNDEFINED_COUNTRY"),
        "certificate": _certificate,
        "new_certificate": _spec_or("new_certificate", None),
        "last_onboarded_time": _const(_ONBOARDED),
        "country_code": _country,
        "country_dial_code": _dial_code,
        "health_status": _health_status,
    },
    "template": {
        "id": _ID,
        "name": _attr("name"),
        "language": _attr("language"),
        "status": _attr("status"),
        "category": _attr("category"),
        "quality_score": _template_quality_score,
        "rejected_reason": _spec_or("rejected_reason", "NONE"),
        "components": _components,
        "parameter_format": _spec_or("parameter_format", "POSITIONAL"),
        "previous_category": _spec_or("previous_category", None),
        "correct_category": _spec_or("correct_category", None),
        "sub_category": _spec_or("sub_category", None),
        "message_send_ttl_seconds": _spec_or("message_send_ttl_seconds", None),
        "library_template_name": _spec_or("library_template_name", None),
        "cta_url_link_tracking_opted_out": _const(False),
        "degrees_of_freedom_spec": _spec_or("degrees_of_freedom_spec", None),
        "health_status": _health_status,
    },
}


def parse_fields(raw: str | None) -> list[str] | None:
    """`fields=a,b{x},c.limit(1)` -> ["a", "b", "c"]; nested selections and modifiers are
    accepted and ignored."""
    if raw is None:
        return None
    return list(_parsed_fields(raw))


@functools.lru_cache(maxsize=256)
def _parsed_fields(raw: str) -> tuple[str, ...]:
    # A fleet refresh sends the same few field lists tens of thousands of times a minute.
    if not any(ch in raw for ch in "{}()."):
        return tuple(name for name in (part.strip() for part in raw.split(",")) if name)
    names: list[str] = []
    depth = 0
    current = ""
    for ch in raw:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            names.append(current.split(".", 1)[0].strip())
            current = ""
        elif depth == 0:
            current += ch
    names.append(current.split(".", 1)[0].strip())
    return tuple(n for n in names if n)


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
