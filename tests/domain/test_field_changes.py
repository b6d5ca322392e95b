"""Change detection of kept fields (quality, limits, statuses), by property.

`field_changes(stored, seen)` is what an observation does to a node's stored values:
the values to write and the transitions among them. Stored values are what earlier
observations left, so applying the writes and observing again must be a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wahealth.domain import Entity, HealthReport, render_health_status
from wahealth.domain.changes import FieldChange, field_changes
from wahealth.domain.properties import (
    PHONE_NUMBER_FIELDS,
    TEMPLATE_FIELDS,
    field_value,
    fields_of,
    properties_of,
    split_properties,
)

NAMES = st.sampled_from(PHONE_NUMBER_FIELDS + TEMPLATE_FIELDS)
VALUES = st.sampled_from(("GREEN", "YELLOW", "RED", "TIER_1K", "TIER_250", "FLAGGED"))
maybe = st.none() | VALUES
stored_values = st.dictionaries(NAMES, maybe, max_size=6)
observations = st.dictionaries(NAMES, maybe, max_size=6)


def _apply(stored: dict[str, str | None], writes: dict[str, str]) -> dict[str, str | None]:
    return {**stored, **writes}


@given(stored_values, observations)
def test_a_change_is_a_known_value_replaced_by_another(
    stored: dict[str, str | None], seen: dict[str, str | None]
) -> None:
    writes, changes = field_changes(stored, seen)
    expected = [
        FieldChange(name, before, value)
        for name, value in seen.items()
        if value is not None and (before := stored.get(name)) is not None and before != value
    ]
    assert changes == expected
    # Every change is written; a first sighting is written without being a change.
    assert {c.field: c.after for c in changes}.items() <= writes.items()
    assert writes == {
        name: value
        for name, value in seen.items()
        if value is not None and stored.get(name) != value
    }


@given(stored_values, observations)
def test_observing_the_same_again_changes_nothing(
    stored: dict[str, str | None], seen: dict[str, str | None]
) -> None:
    writes, _ = field_changes(stored, seen)
    assert field_changes(_apply(stored, writes), seen) == ({}, [])


@given(stored_values, st.lists(observations, min_size=1, max_size=5))
def test_unseen_values_are_never_cleared(
    stored: dict[str, str | None], seen_in_turn: list[dict[str, str | None]]
) -> None:
    current = dict(stored)
    for seen in seen_in_turn:
        writes, _ = field_changes(current, seen)
        current = _apply(current, writes)
    for name, value in stored.items():
        if value is not None:
            assert current[name] is not None
    last_known = {}
    for seen in seen_in_turn:
        last_known.update({k: v for k, v in seen.items() if v is not None})
    assert {k: current[k] for k in last_known} == last_known


@given(stored_values, st.lists(observations, min_size=1, max_size=5))
def test_the_changes_of_a_sequence_chain_from_the_stored_values(
    stored: dict[str, str | None], seen_in_turn: list[dict[str, str | None]]
) -> None:
    """Per field, each change starts where the previous one ended: the history is a path."""
    current = dict(stored)
    ends: dict[str, str | None] = dict(stored)
    for seen in seen_in_turn:
        writes, changes = field_changes(current, seen)
        for change in changes:
            assert ends.get(change.field) == change.before != change.after
            ends[change.field] = change.after
        for name, value in writes.items():
            ends[name] = value
        current = _apply(current, writes)
    assert ends == current


@pytest.mark.parametrize(
    ("name", "raw", "kept"),
    [
        ("quality_rating", "YELLOW", "YELLOW"),
        ("throughput", {"level": "HIGH"}, "HIGH"),
        ("quality_score", {"score": "RED", "date": 1767225600}, "RED"),
        ("quality_score", "GREEN", "GREEN"),  # as a webhook states it
        ("status", "", None),
        ("status", 7, None),
        ("throughput", {"tier": "HIGH"}, None),
        ("verified_name", None, None),
    ],
)
def test_values_are_kept_as_meta_spells_them(name: str, raw: object, kept: str | None) -> None:
    assert field_value(name, raw) == kept


def test_each_kind_keeps_its_own_fields() -> None:
    assert fields_of("PHONE_NUMBER") == PHONE_NUMBER_FIELDS
    assert fields_of("MESSAGE_TEMPLATE") == TEMPLATE_FIELDS
    assert fields_of("WABA") == fields_of("nonsense") == ()
    item = {"id": "1", "status": "PAUSED", "quality_score": {"score": "RED"}, "extra": "x"}
    assert properties_of("MESSAGE_TEMPLATE", item) == {
        "status": "PAUSED",
        "quality_score": "RED",
        "category": None,
        "rejected_reason": None,
    }


def test_split_takes_the_fields_out_of_a_health_answer() -> None:
    phone = Entity("PHONE_NUMBER", "106540352242922", "AVAILABLE")
    report = HealthReport(
        "106540352242922",
        (phone, Entity("WABA", "1", "AVAILABLE")),
        datetime(2026, 12, 1, tzinfo=UTC),
        extra={"quality_rating": "RED", "throughput": {"level": "HIGH"}, "kept": True},
    )
    bare, values = split_properties(report)
    assert values == {"quality_rating": "RED", "throughput": "HIGH"}
    assert render_health_status(bare) == {
        "health_status": {
            "can_send_message": "AVAILABLE",
            "entities": [
                {
                    "entity_type": "PHONE_NUMBER",
                    "id": "106540352242922",
                    "can_send_message": "AVAILABLE",
                },
                {"entity_type": "WABA", "id": "1", "can_send_message": "AVAILABLE"},
            ],
        },
        "id": "106540352242922",
        "kept": True,  # what is not a kept field of the node stays as Meta sent it
    }
    plain = HealthReport("106540352242922", (phone,), report.fetched_at)
    assert split_properties(plain) == (plain, {})
