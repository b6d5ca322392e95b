"""Catalog records from a WABA's `phone_numbers` and `message_templates` edges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wahealth.domain import normalize_phone_number
from wahealth.upstream.errors import GraphBadResponse


@dataclass(frozen=True, slots=True)
class PhoneNumberRecord:
    """A business phone number; `phone_number` is `display_phone_number` as digits only."""

    id: str
    display_phone_number: str
    phone_number: str
    verified_name: str | None = None
    quality_rating: str | None = None

    @classmethod
    def from_graph(cls, item: Mapping[str, Any]) -> PhoneNumberRecord:
        display = _required(item, "display_phone_number", "phone number")
        return cls(
            id=_required(item, "id", "phone number"),
            display_phone_number=display,
            phone_number=normalize_phone_number(display),
            verified_name=_optional(item, "verified_name"),
            quality_rating=_optional(item, "quality_rating"),
        )


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """A message template; (name, language) is what CAMS calls (TemplateCode, Language)."""

    id: str
    name: str
    language: str
    status: str | None = None
    category: str | None = None

    @classmethod
    def from_graph(cls, item: Mapping[str, Any]) -> TemplateRecord:
        return cls(
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
