"""parse_health_status on any shape: a report or MalformedHealthStatus, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wahealth.domain import MalformedHealthStatus, parse_health_status, render_health_status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**4400, max_value=10**4401),  # too long for str()
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
# Mostly right, sometimes anything: so that both reports and refusals are exercised.
texty = st.one_of(st.sampled_from(["AVAILABLE", "LIMITED", "BLOCKED", "1"]), json_like)
error_like = st.fixed_dictionaries(
    {"error_code": st.one_of(st.integers(), texty)},
    optional={"error_description": texty, "possible_solution": texty, "x": json_like},
)
entity_like = st.fixed_dictionaries(
    {"entity_type": texty, "id": texty, "can_send_message": texty},
    optional={
        "can_receive_call_sip": texty,
        "errors": st.one_of(st.lists(error_like, max_size=2), json_like),
        "additional_info": st.one_of(st.lists(texty, max_size=2), json_like),
        "x_extra": json_like,
    },
)
health_like = st.fixed_dictionaries(
    {"entities": st.one_of(st.lists(entity_like, max_size=3), json_like)},
    optional={"can_send_message": texty, "x": json_like},
)
answer_like = st.one_of(
    st.fixed_dictionaries(
        {"health_status": st.one_of(health_like, health_like, json_like)},
        optional={"id": texty, "x": json_like},
    ),
    json_like,
)


@settings(max_examples=400)
@given(answer_like)
def test_any_shape_is_a_report_or_malformed(payload: Any) -> None:
    try:
        report = parse_health_status(payload, fetched_at=NOW, node_id="1")
    except MalformedHealthStatus:
        return
    # What parsed renders back, and a report never carries what cannot be rendered as JSON.
    rendered = render_health_status(report)
    assert rendered["id"] == report.node_id
    assert report.can_send_message.value in {"AVAILABLE", "LIMITED", "BLOCKED"}
    report.error_codes()


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "health",
        None,
        {"health_status": {"entities": [{"entity_type": "WABA", "id": 10**5000}]}},
        {"health_status": {"entities": [{"entity_type": "WABA", "id": "1", "errors": [5]}]}},
        {"health_status": {"entities": [{"entity_type": [], "id": "1"}]}},
        {"health_status": {"entities": {"not": "a list"}}},
        {"health_status": [], "id": "1"},
        {"id": "1"},
        {1: "non-string key", "health_status": {"entities": []}},
        {
            "health_status": {
                "entities": [
                    {
                        "entity_type": "WABA",
                        "id": "1",
                        "can_send_message": "BLOCKED",
                        "errors": [{"error_code": 2**70}],
                    }
                ]
            }
        },
    ],
)
def test_odd_shapes_are_malformed(payload: Any) -> None:
    with pytest.raises(MalformedHealthStatus):
        parse_health_status(payload, fetched_at=NOW, node_id="1")


def test_a_wellformed_answer_still_parses_and_renders_as_json() -> None:
    payload = {
        "id": "1",
        "health_status": {
            "can_send_message": "LIMITED",
            "entities": [{"entity_type": "PHONE_NUMBER", "id": "1", "can_send_message": "LIMITED"}],
        },
    }
    report = parse_health_status(payload, fetched_at=NOW)
    assert orjson.loads(orjson.dumps(render_health_status(report))) == payload
