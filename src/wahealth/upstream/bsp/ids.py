"""Node ids of what a BSP answers without a Meta id: stable, derived, digits like Meta's.

Alibaba CAMS names a phone number by its digits and a template by (code, language); its
answers carry the WABA and Business ids but no phone-number or template id. wahealth
gives such a node a 24-digit id: `991` (phone number) or `992` (template), then 21
digits of SHA-256 over the space id and the number's digits, or over the space id, the
code and the language. Meta's ids are shorter (15 to 17 digits), so a derived id never
names a Meta node; the same space and number always give the same id, on every replica
and across restarts; history, the gate and badges take it like any other id.
Entities an answer names without any id (an APP) get `993…` (per space and type).
"""

from __future__ import annotations

import hashlib

from wahealth.domain import normalize_phone_number

_DIGITS = 21


def _derived(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    number = int.from_bytes(digest[:16], "big") % 10**_DIGITS
    return f"{prefix}{number:0{_DIGITS}d}"


def phone_node_id(space_id: str, phone_number: str) -> str:
    """The id of a CAMS space's phone number (digits only count: `+86 138…` = `86138…`)."""
    return _derived("991", space_id, "phone", normalize_phone_number(phone_number))


def template_node_id(space_id: str, code: str, language: str) -> str:
    return _derived("992", space_id, "template", code, language)


def entity_id(space_id: str, entity_type: str) -> str:
    """An id for an entity the answer names without one (one per space and type)."""
    return _derived("993", space_id, "entity", entity_type)
