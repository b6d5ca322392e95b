"""Catalog records read from a WABA's `phone_numbers` and `message_templates` edges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.upstream.errors import GraphBadResponse

__all__ = ["PhoneNumberRecord", "TemplateRecord", "phone_number_from_graph", "template_from_graph"]


def phone_number_from_graph(item: Mapping[str, Any]) -> PhoneNumberRecord:
    """A `phone_numbers` edge item; GraphBadResponse when it lacks an id or a number."""
    return PhoneNumberRecord(
        id=_required(item, "id", "phone number"),
        display_phone_number=_required(item, "display_phone_number", "phone number"),
        verified_name=_optional(item, "verified_name"),
        quality_rating=_optional(item, "quality_rating"),
    )


def template_from_graph(item: Mapping[str, Any]) -> TemplateRecord:
    """A `message_templates` edge item; GraphBadResponse when it lacks an id, name or language."""
    return TemplateRecord(
        id=_required(item, "id", "template"),
        name=_required(item, "name", "template"),
        language=_required(item, "language", "template"),
        status=_optional(item, "status"),
        category=_optional(item, "category"),
    )


def _required(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise GraphBadResponse(f"{what} without a {key}: {dict(item)!r:.200}")
    return value


def _optional(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None
