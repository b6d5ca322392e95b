"""The catalog fields kept beside health: quality, messaging limits, number and template status.

Each is kept under Meta's own field name, as the string Meta sends. Two arrive as
objects and are kept by their one meaningful member: `throughput` as its `level`
(`{"level": "STANDARD"}` -> `STANDARD`) and a template's `quality_score` as its
`score` (`{"score": "GREEN", "date": ...}` -> `GREEN`). Anything else that is not a
non-empty string counts as not seen (None): a value is never cleared by an answer
that lacks it, only replaced by another value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wahealth.domain.model import HealthReport, NodeKind

PHONE_NUMBER_FIELDS: tuple[str, ...] = (
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "messaging_limit_tier",
    "whatsapp_business_manager_messaging_limit",
    "throughput",
    "status",
    "name_status",
    "code_verification_status",
)
TEMPLATE_FIELDS: tuple[str, ...] = ("status", "quality_score", "category", "rejected_reason")

FIELDS: dict[NodeKind, tuple[str, ...]] = {
    NodeKind.PHONE_NUMBER: PHONE_NUMBER_FIELDS,
    NodeKind.MESSAGE_TEMPLATE: TEMPLATE_FIELDS,
}

# Objects Meta sends for a field, and the member that is its value.
_MEMBER = {"throughput": "level", "quality_score": "score"}


def fields_of(kind: NodeKind | str) -> tuple[str, ...]:
    """The fields kept for a kind of node (none for WABAs and unknown kinds)."""
    try:
        return FIELDS.get(NodeKind(kind), ())
    except ValueError:
        return ()


def field_value(name: str, raw: Any) -> str | None:
    """The kept value of a field as Meta sends it, or None when there is none."""
    member = _MEMBER.get(name)
    if member is not None and isinstance(raw, Mapping):
        raw = raw.get(member)
    return raw if isinstance(raw, str) and raw else None


def properties_of(kind: NodeKind | str, document: Mapping[str, Any]) -> dict[str, str | None]:
    """The kind's fields read from a Graph node or edge item (absent ones as None)."""
    return {name: field_value(name, document.get(name)) for name in fields_of(kind)}


def split_properties(report: HealthReport) -> tuple[HealthReport, dict[str, str | None]]:
    """The report without its node's kept fields (so a health answer never carries them)
    and the fields it carried; an answer with none of them comes back unchanged."""
    if not report.extra:
        return report, {}
    names = [name for name in fields_of(report.node_kind) if name in report.extra]
    if not names:
        return report, {}
    values = {name: field_value(name, report.extra[name]) for name in names}
    rest = {key: value for key, value in report.extra.items() if key not in values}
    return replace(report, extra=rest), values
