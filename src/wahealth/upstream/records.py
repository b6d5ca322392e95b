"""Catalog records read from a WABA's `phone_numbers` and `message_templates` edges."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wahealth.domain import MalformedHealthStatus, parse_health_status
from wahealth.domain.model import NodeKind
from wahealth.domain.properties import fields_of, properties_of
from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.upstream.errors import GraphBadResponse

__all__ = [
    "PhoneNumberRecord",
    "TemplateRecord",
    "kept_fields",
    "phone_number_from_graph",
    "template_from_graph",
]

# Meta serves the messaging limit as `messaging_limit_tier` up to v23.0 and as
# `whatsapp_business_manager_messaging_limit` from v24.0 (its "Messaging limits" page):
# each version is asked only the field it has, since a field a node lacks fails the call.
_LIMIT_FIELDS = ("messaging_limit_tier", "whatsapp_business_manager_messaging_limit")
_FIRST_VERSION_WITHOUT_TIER = 24
_VERSION = re.compile(r"^v(\d+)\.\d+$")


def kept_fields(kind: NodeKind | str, api_version: str) -> tuple[str, ...]:
    """The kept fields (see `wahealth.domain.properties`) this Graph version serves for a
    kind of node."""
    match = _VERSION.match(api_version)
    major = int(match.group(1)) if match else _FIRST_VERSION_WITHOUT_TIER
    dropped = _LIMIT_FIELDS[0] if major >= _FIRST_VERSION_WITHOUT_TIER else _LIMIT_FIELDS[1]
    return tuple(name for name in fields_of(kind) if name != dropped)


def phone_number_from_graph(
    item: Mapping[str, Any], fetched_at: datetime | None = None
) -> PhoneNumberRecord:
    """A `phone_numbers` edge item; GraphBadResponse when it lacks an id or a number.

    An item that carries `health_status` gives the record its health report, fetched at
    `fetched_at`; one whose health_status is not a health answer gives none (the number's
    own refresh will fetch it, and say what is wrong), rather than failing the page.
    """
    kept = properties_of(NodeKind.PHONE_NUMBER, item)
    del kept["display_phone_number"]
    node_id = _required(item, "id", "phone number")
    health = None
    status = item.get("health_status")
    if status is not None:
        try:
            health = parse_health_status(
                {"health_status": status, "id": node_id},
                fetched_at=fetched_at or datetime.now(UTC),
                node_id=node_id,
            )
        except MalformedHealthStatus:
            health = None
    return PhoneNumberRecord(
        id=node_id,
        display_phone_number=_required(item, "display_phone_number", "phone number"),
        **kept,
        health=health,
    )


def template_from_graph(item: Mapping[str, Any]) -> TemplateRecord:
    """A `message_templates` edge item; GraphBadResponse when it lacks an id, name or language."""
    return TemplateRecord(
        id=_required(item, "id", "template"),
        name=_required(item, "name", "template"),
        language=_required(item, "language", "template"),
        **properties_of(NodeKind.MESSAGE_TEMPLATE, item),
    )


def _required(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise GraphBadResponse(f"{what} without a {key}: {dict(item)!r:.200}")
    return value
