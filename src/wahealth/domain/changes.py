"""What counts as a change in a node's health or in its kept fields.

Health: computed from stored documents.

Two reports differ when the overall status, any entity's status, the set of
error codes, or any entity's additional info differs. Descriptions, solutions,
field order and calling fields (`can_receive_call_sip`) do not count: a
reworded message or a SIP setting must not fill the history with noise.

Payloads are Meta's documents, `{"health_status": {...}, "id": ...}` or the
inner `{"can_send_message", "entities"}`; anything unexpected in them is
skipped rather than raised, since they were already accepted upstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

EntityKey = str  # "<ENTITY_TYPE>:<id>"


def _is_mapping(value: object) -> bool:
    # Parsed JSON is made of dicts: check that first (a Mapping check is an ABC lookup).
    return type(value) is dict or isinstance(value, Mapping)


def _entities(payload: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if payload is None:
        return []
    status = payload.get("health_status", payload)
    entities = status.get("entities") if _is_mapping(status) else None
    if not isinstance(entities, list):
        return []
    return [entity for entity in entities if _is_mapping(entity)]


def _codes(entity: Mapping[str, Any]) -> list[str]:
    errors = entity.get("errors")
    if not errors or type(errors) is not list:  # most entities have none
        return []
    return sorted(
        {
            str(error["error_code"])
            for error in errors
            if _is_mapping(error) and "error_code" in error
        }
    )


def _info(entity: Mapping[str, Any]) -> list[str]:
    info = entity.get("additional_info")
    if not info or type(info) is not list:
        return []
    return [item if type(item) is str else str(item) for item in info]


States = dict[EntityKey, dict[str, Any]]


def entity_states(payload: Mapping[str, Any] | None) -> States:
    """Per entity, what matters for change detection: status, error codes, additional info."""
    states: States = {}
    for entity in _entities(payload):
        entity_type, entity_id = entity.get("entity_type"), entity.get("id")
        states[f"{entity_type}:{entity_id}"] = {
            "entity_type": entity_type,
            "id": None if entity_id is None else str(entity_id),
            "can_send_message": entity.get("can_send_message"),
            "error_codes": _codes(entity),
            "additional_info": _info(entity),
        }
    return states


def signature(
    overall: str | None, payload: Mapping[str, Any] | None, error_codes: Iterable[str]
) -> dict[str, Any]:
    """A comparable summary of a report; equal signatures mean "nothing changed"."""
    return signature_of(overall, entity_states(payload), error_codes)


def signature_of(overall: str | None, states: States, error_codes: Iterable[str]) -> dict[str, Any]:
    """`signature` from `entity_states` already computed (each payload's states once)."""
    return {
        "overall": overall,
        "error_codes": sorted({str(code) for code in error_codes}),
        "entities": states,
    }


def entity_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The entities whose state differs, each with its state before and after (None if absent)."""
    return changes_between(entity_states(before), entity_states(after))


def changes_between(old: States, new: States) -> dict[str, Any]:
    """`entity_changes` from the states of both sides, already computed."""
    if not old:  # a first sighting (every report of a new fleet): each entity is new
        return {
            "entities": [
                {
                    "entity_type": state["entity_type"],
                    "id": state["id"],
                    "before": None,
                    "after": _state_only(state),
                }
                for _, state in sorted(new.items())
            ]
        }
    changed = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            current = new.get(key) or old[key]
            changed.append(
                {
                    "entity_type": current["entity_type"],
                    "id": current["id"],
                    "before": _state_only(old.get(key)),
                    "after": _state_only(new.get(key)),
                }
            )
    return {"entities": changed}


def _state_only(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {k: state[k] for k in ("can_send_message", "error_codes", "additional_info")}


class FieldChange(NamedTuple):
    """One kept field (quality, limit, status, ...) that went from one value to another."""

    field: str
    before: str
    after: str


def field_changes(
    stored: Mapping[str, str | None], seen: Mapping[str, str | None]
) -> tuple[dict[str, str], list[FieldChange]]:
    """What an observation `seen` does to the `stored` values of a node's kept fields.

    Returns the values to write (every seen value that differs from the stored one)
    and the changes among them. A value not seen (None) changes nothing; a value seen
    for the first time (stored None) is written but is a baseline, not a change: a
    new install, or a field Meta just started sending, must not fill the history.
    Changes come in the order of `seen`.
    """
    writes: dict[str, str] = {}
    changes: list[FieldChange] = []
    for name, value in seen.items():
        if value is None:
            continue
        before = stored.get(name)
        if value == before:
            continue
        writes[name] = value
        if before is not None:
            changes.append(FieldChange(name, before, value))
    return writes, changes
