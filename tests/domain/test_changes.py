"""Change detection, by property: what counts as a change in a node's health and what does not.

Payloads are Meta documents `{"health_status": {"can_send_message", "entities"}, "id"}`;
the overall status and the error codes are derived from the entities the way the
recorder derives them, so `summary(payload)` is what gets compared when a report is stored.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wahealth.domain.changes import changes_between, entity_changes, entity_states, signature

STATUSES = ("AVAILABLE", "LIMITED", "BLOCKED")
SEVERITY = {status: rank for rank, status in enumerate(STATUSES)}
ENTITY_TYPES = ("PHONE_NUMBER", "WABA", "BUSINESS", "APP", "MESSAGE_TEMPLATE")

ids = st.text(alphabet="0123456789", min_size=1, max_size=16)
texts = st.text(max_size=30)
codes = st.one_of(st.integers(min_value=100_000, max_value=199_999), ids)


@st.composite
def errors(draw: st.DrawFn) -> dict[str, Any]:
    error: dict[str, Any] = {"error_code": draw(codes)}
    if draw(st.booleans()):
        error["error_description"] = draw(texts)
    if draw(st.booleans()):
        error["possible_solution"] = draw(texts)
    return error


@st.composite
def entity(draw: st.DrawFn, entity_type: str, entity_id: str) -> dict[str, Any]:
    status = draw(st.sampled_from(STATUSES))
    entry: dict[str, Any] = {
        "entity_type": entity_type,
        "id": entity_id,
        "can_send_message": status,
    }
    if draw(st.booleans()):
        entry["can_receive_call_sip"] = draw(st.sampled_from(STATUSES))
    if status != "AVAILABLE" or draw(st.booleans()):
        entry["errors"] = draw(st.lists(errors(), max_size=3))
    if status == "LIMITED" or draw(st.booleans()):
        entry["additional_info"] = draw(st.lists(texts, max_size=2))
    return entry


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A health document whose entities have distinct (type, id) keys, as Meta's do."""
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(ENTITY_TYPES), ids),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    entities = [draw(entity(kind, entity_id)) for kind, entity_id in keys]
    return {"health_status": {"can_send_message": overall(entities), "entities": entities}}


def overall(entities: list[dict[str, Any]]) -> str:
    return max((e["can_send_message"] for e in entities), key=SEVERITY.__getitem__)


def error_codes(payload: dict[str, Any]) -> list[str]:
    return sorted(
        {
            str(error["error_code"])
            for e in payload["health_status"]["entities"]
            for error in e.get("errors", [])
        }
    )


def summary(payload: dict[str, Any]) -> dict[str, Any]:
    """What the recorder compares: signature(overall, payload, error codes)."""
    status = payload["health_status"]
    return signature(status["can_send_message"], payload, error_codes(payload))


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = entity_changes(before, after)["entities"]
    return found


def _reordered(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's keys in a shuffled order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _reordered(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_reordered(item, rng) for item in value]
    return value


# --- cosmetic edits: never a change -----------------------------------------------------------


@st.composite
def cosmetic_edit(draw: st.DrawFn, payload: dict[str, Any]) -> dict[str, Any]:
    """Reword descriptions and solutions, flip SIP, reorder keys, entities and errors."""
    edited = copy.deepcopy(payload)
    entities = edited["health_status"]["entities"]
    for e in entities:
        if draw(st.booleans()):
            e["can_receive_call_sip"] = draw(st.sampled_from(STATUSES))
        elif "can_receive_call_sip" in e and draw(st.booleans()):
            del e["can_receive_call_sip"]
        for error in e.get("errors", []):
            if draw(st.booleans()):
                error["error_description"] = draw(texts)
            if draw(st.booleans()):
                error["possible_solution"] = draw(texts)
            if "error_description" in error and draw(st.booleans()):
                del error["error_description"]
        if e.get("errors"):
            e["errors"] = draw(st.permutations(e["errors"]))
    edited["health_status"]["entities"] = draw(st.permutations(entities))
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    reordered: dict[str, Any] = _reordered(edited, rng)
    return reordered


@given(st.data())
def test_rewording_reordering_and_sip_changes_do_not_count(data: st.DataObject) -> None:
    before = data.draw(payloads())
    after = data.draw(cosmetic_edit(before))
    assert summary(before) == summary(after)
    assert changed(before, after) == []


@given(payloads())
def test_a_report_compared_with_itself_has_no_changes(payload: dict[str, Any]) -> None:
    assert summary(payload) == summary(copy.deepcopy(payload))
    assert changed(payload, payload) == []


# --- meaningful edits: always a change --------------------------------------------------------


def _entity_key(e: dict[str, Any]) -> tuple[str, str]:
    return (e["entity_type"], e["id"])


def _names(found: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(c["entity_type"], c["id"]) for c in found}


def _reoverall(payload: dict[str, Any]) -> None:
    status = payload["health_status"]
    status["can_send_message"] = overall(status["entities"])


@given(st.data())
def test_an_entity_status_change_counts(data: st.DataObject) -> None:
    before = data.draw(payloads())
    after = copy.deepcopy(before)
    target = data.draw(st.sampled_from(after["health_status"]["entities"]))
    target["can_send_message"] = data.draw(
        st.sampled_from([s for s in STATUSES if s != target["can_send_message"]])
    )
    _reoverall(after)
    assert summary(before) != summary(after)
    assert _names(changed(before, after)) == {_entity_key(target)}


@given(st.data())
def test_an_error_code_set_change_counts(data: st.DataObject) -> None:
    before = data.draw(payloads())
    after = copy.deepcopy(before)
    target = data.draw(st.sampled_from(after["health_status"]["entities"]))
    had = {str(error["error_code"]) for error in target.get("errors", [])}
    if had and data.draw(st.booleans()):
        gone = data.draw(st.sampled_from(sorted(had)))
        target["errors"] = [e for e in target["errors"] if str(e["error_code"]) != gone]
    else:
        new = data.draw(codes.filter(lambda code: str(code) not in had))
        target["errors"] = [*target.get("errors", []), {"error_code": new}]
    assert summary(before) != summary(after)
    assert _names(changed(before, after)) == {_entity_key(target)}


@given(st.data())
def test_an_additional_info_change_counts(data: st.DataObject) -> None:
    before = data.draw(payloads())
    after = copy.deepcopy(before)
    target = data.draw(st.sampled_from(after["health_status"]["entities"]))
    had = [str(item) for item in target.get("additional_info", [])]
    new = data.draw(st.lists(texts, max_size=3).filter(lambda info: info != had))
    target["additional_info"] = new
    assert summary(before) != summary(after)
    assert _names(changed(before, after)) == {_entity_key(target)}


@given(st.data())
def test_an_entity_appearing_or_disappearing_counts(data: st.DataObject) -> None:
    before = data.draw(payloads())
    entities = before["health_status"]["entities"]
    taken = {_entity_key(e) for e in entities}
    key = data.draw(
        st.tuples(st.sampled_from(ENTITY_TYPES), ids).filter(lambda key: key not in taken)
    )
    after = copy.deepcopy(before)
    after["health_status"]["entities"].append(data.draw(entity(*key)))
    _reoverall(after)
    assert summary(before) != summary(after)
    assert _names(changed(before, after)) == {key}
    gone = changed(after, before)
    assert _names(gone) == {key}
    assert gone[0]["after"] is None


@given(payloads(), st.sampled_from(STATUSES))
def test_an_overall_status_change_counts(payload: dict[str, Any], other: str) -> None:
    status = payload["health_status"]["can_send_message"]
    codes_now = error_codes(payload)
    if other != status:
        assert signature(status, payload, codes_now) != signature(other, payload, codes_now)


@given(payloads(), payloads())
def test_equal_signatures_exactly_when_no_entity_changed(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert (summary(before) == summary(after)) == (changed(before, after) == [])


@given(st.data())
def test_equal_signatures_exactly_when_no_entity_changed_for_close_pairs(
    data: st.DataObject,
) -> None:
    """The same equivalence on pairs that differ by one small edit, cosmetic or not."""
    before = data.draw(payloads())
    after = copy.deepcopy(before)
    target = data.draw(st.sampled_from(after["health_status"]["entities"]))
    edit = data.draw(st.sampled_from(["status", "code", "info", "sip", "description"]))
    if edit == "status":
        target["can_send_message"] = data.draw(st.sampled_from(STATUSES))
    elif edit == "code":
        target["errors"] = [*target.get("errors", []), {"error_code": data.draw(codes)}]
    elif edit == "info":
        target["additional_info"] = data.draw(st.lists(texts, max_size=2))
    elif edit == "sip":
        target["can_receive_call_sip"] = data.draw(st.sampled_from(STATUSES))
    else:
        for error in target.get("errors", []):
            error["error_description"] = data.draw(texts)
    _reoverall(after)
    assert (summary(before) == summary(after)) == (changed(before, after) == [])


# --- garbage in: never raises -----------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
# Shapes close enough to Meta's that the code walks into them before meeting the garbage.
garbage_errors = st.one_of(
    json_values,
    st.lists(st.one_of(json_values, st.fixed_dictionaries({"error_code": json_values}))),
)
garbage_entities = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "entity_type": json_values,
                "id": json_values,
                "can_send_message": json_values,
                "errors": garbage_errors,
                "additional_info": json_values,
            },
        ),
    ),
    max_size=4,
)
garbage_payloads = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    st.fixed_dictionaries({"health_status": json_values}),
    st.fixed_dictionaries({"health_status": st.fixed_dictionaries({"entities": json_values})}),
    st.fixed_dictionaries({"health_status": st.fixed_dictionaries({"entities": garbage_entities})}),
    st.fixed_dictionaries({"entities": garbage_entities}),
)


@given(garbage_payloads, garbage_payloads, json_values)
def test_garbage_payloads_never_raise(before: Any, after: Any, overall_value: Any) -> None:
    states = entity_states(before)
    assert isinstance(states, dict)
    found = entity_changes(before, after)["entities"]
    assert isinstance(found, list)
    # No entity changed exactly when both sides read as the same entity states.
    assert (found == []) == (entity_states(before) == entity_states(after))
    overall_text = (
        overall_value if isinstance(overall_value, str) or overall_value is None else None
    )
    first = signature(overall_text, before, ["141006"])
    assert first == signature(overall_text, copy.deepcopy(before), ["141006"])


@given(payloads())
def test_a_first_sighting_lists_every_entity_as_the_general_comparison_does(
    payload: dict[str, Any],
) -> None:
    # The general comparison, made to run by an unrelated entity on the old side.
    new = entity_states(payload)
    dummy = {"entity_type": "\x00", "id": "\x00", "can_send_message": "AVAILABLE"}
    old = {"\x00:\x00": {**dummy, "error_codes": [], "additional_info": []}}
    general = [e for e in changes_between(old, new)["entities"] if e["entity_type"] != "\x00"]
    assert changes_between({}, new) == {"entities": general}
    assert all(entity["before"] is None for entity in general)
