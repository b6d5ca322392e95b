"""Node ids of what a BSP answers without a Meta id: stable, derived, never colliding.

Alibaba CAMS names a phone number by its digits and a template by (code, language); its
answers carry the WABA and Business ids but no phone-number or template id. wahealth
gives such a node the id `cams-p-<20 hex>` (phone) or `cams-t-<20 hex>` (template): the
first 80 bits of SHA-256 over the space id and the number's digits, or over the space
id, the code and the language. The same space and number always give the same id, on
every replica and across restarts; history, the gate and badges use it like any other.
Entities a BSP names without any id (an APP) get `cams-a-…` (per space and type).
"""

from __future__ import annotations

import hashlib

from wahealth.domain import normalize_phone_number

_HEX = 20


def _derived(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return f"cams-{prefix}-{digest[:_HEX]}"


def phone_node_id(space_id: str, phone_number: str) -> str:
    """The id of a CAMS space's phone number (digits only count: `+86 138…` = `86138…`)."""
    return _derived("p", space_id, "phone", normalize_phone_number(phone_number))


def template_node_id(space_id: str, code: str, language: str) -> str:
    return _derived("t", space_id, "template", code, language)


def entity_id(space_id: str, entity_type: str) -> str:
    """An id for an entity the answer names without one (one per space and type)."""
    return _derived("a", space_id, "entity", entity_type)
