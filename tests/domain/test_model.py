"""The domain: overall rule, parse/render round trip, tolerance of Meta's changes, catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wahealth.domain import (
    Entity,
    EntityType,
    HealthError,
    HealthReport,
    MalformedHealthStatus,
    NodeKind,
    Status,
    describe_error,
    fill_error,
    normalize_phone_number,
    overall_status,
    parse_health_status,
    render_health_status,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

ids = st.text(alphabet="0123456789", min_size=1, max_size=16)
texts = st.text(min_size=1, max_size=40)
extra_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).map(
    lambda k: f"x_{k}"
)
extras = st.dictionaries(extra_keys, st.one_of(st.integers(), texts, st.booleans()), max_size=2)
errors = st.builds(
    HealthError,
    error_code=st.one_of(st.integers(min_value=0, max_value=999_999), ids),
    error_description=st.one_of(st.none(), texts),
    possible_solution=st.one_of(st.none(), texts),
    extra=extras,
)
statuses = st.sampled_from(["AVAILABLE", "LIMITED", "BLOCKED"])
entity_types = st.one_of(st.sampled_from([t.value for t in EntityType]), st.just("NEW_KIND"))


@st.composite
def entities(draw: st.DrawFn) -> Entity:
    status = draw(statuses)
    # Meta sends errors on BLOCKED (and sometimes on LIMITED) and additional_info on LIMITED.
    errs = draw(st.lists(errors, min_size=1 if status == "BLOCKED" else 0, max_size=3))
    info = draw(st.lists(texts, min_size=1 if status == "LIMITED" else 0, max_size=2))
    return Entity(
        entity_type=draw(entity_types),
        id=draw(ids),
        can_send_message=status,
        can_receive_call_sip=draw(st.one_of(st.none(), statuses)),
        errors=tuple(errs) if status != "AVAILABLE" else (),
        additional_info=tuple(info) if status == "LIMITED" else (),
        extra=draw(extras),
    )


@st.composite
def reports(draw: st.DrawFn) -> HealthReport:
    ents = tuple(draw(st.lists(entities(), min_size=1, max_size=5)))
    return HealthReport(
        node_id=draw(ids),
        entities=ents,
        fetched_at=NOW,
        upstream_can_send_message=overall_status(ents).value,
        extra=draw(extras),
    )


@given(st.lists(entities(), min_size=1, max_size=6))
def test_overall_status_is_the_most_severe_entity_status(ents: list[Entity]) -> None:
    expected = max((Status(e.can_send_message) for e in ents), key=lambda s: s.severity)
    assert overall_status(ents) is expected


def test_overall_status_of_no_entities_is_available() -> None:
    assert overall_status([]) is Status.AVAILABLE


@given(reports())
def test_parse_render_round_trip(report: HealthReport) -> None:
    assert parse_health_status(render_health_status(report), fetched_at=NOW) == report


@given(reports())
def test_rendered_blocked_entities_carry_errors_and_limited_carry_info(
    report: HealthReport,
) -> None:
    rendered = render_health_status(report)
    for entity in rendered["health_status"]["entities"]:
        if entity["can_send_message"] == "BLOCKED":
            assert entity["errors"]
        if entity["can_send_message"] == "LIMITED":
            assert entity["additional_info"]
    assert rendered["health_status"]["can_send_message"] == report.can_send_message.value


SEED_BLOCKED: dict[str, Any] = {
    "health_status": {
        "can_send_message": "BLOCKED",
        "entities": [
            {
                "entity_type": "MESSAGE_TEMPLATE",
                "id": "2632273056924580",
                "can_send_message": "BLOCKED",
                "errors": [
                    {
                        "error_code": 141002,
                        "error_description": "Message templates can only be sent out if they are approved.",
                        "possible_solution": "Edit or appeal the message template review decision.",
                    }
                ],
            },
            {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"},
            {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
            {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE"},
        ],
    },
    "id": "2632273056924580",
}


def test_seed_blocked_template_parses_and_renders_back_identically() -> None:
    report = parse_health_status(SEED_BLOCKED, fetched_at=NOW)
    assert report.can_send_message is Status.BLOCKED
    assert report.node_kind is NodeKind.MESSAGE_TEMPLATE
    assert report.error_codes() == ("141002",)
    assert render_health_status(report) == SEED_BLOCKED


def test_unknown_types_statuses_and_fields_are_kept() -> None:
    payload = {
        "health_status": {
            "can_send_message": "AVAILABLE",
            "entities": [
                {
                    "entity_type": "PHONE_NUMBER",
                    "id": "1",
                    "can_send_message": "AVAILABLE",
                    "can_receive_call_sip": "UNAVAILABLE",
                },
                {
                    "entity_type": "FLOW",
                    "id": "2",
                    "can_send_message": "THROTTLED",
                    "new_field": {"nested": [1, 2]},
                    "errors": [{"error_code": "X-9", "error_description": "new"}],
                },
            ],
            "calling_status": "ENABLED",
        },
        "id": "1",
        "quality_rating": "GREEN",
    }
    report = parse_health_status(payload, fetched_at=NOW)
    # An unknown status counts as LIMITED: we cannot vouch for AVAILABLE.
    assert report.can_send_message is Status.LIMITED
    assert report.upstream_can_send_message == "AVAILABLE"
    rendered = render_health_status(report)
    assert rendered["health_status"]["entities"] == payload["health_status"]["entities"]  # type: ignore[index]
    assert rendered["health_status"]["calling_status"] == "ENABLED"
    assert rendered["quality_rating"] == "GREEN"


def test_errors_are_read_on_limited_entities() -> None:
    payload = {
        "health_status": {
            "can_send_message": "LIMITED",
            "entities": [
                {
                    "entity_type": "BUSINESS",
                    "id": "9",
                    "can_send_message": "LIMITED",
                    "errors": [{"error_code": 141010}],
                }
            ],
        },
        "id": "9",
    }
    report = parse_health_status(payload, fetched_at=NOW)
    assert report.error_codes() == ("141010",)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"health_status": None, "id": "1"},
        {"health_status": {"entities": "nope"}, "id": "1"},
        {"health_status": {"entities": [1]}, "id": "1"},
        {"health_status": {"entities": [{"entity_type": "WABA", "id": "1"}]}, "id": "1"},
        {"health_status": {"entities": []}},
        {
            "health_status": {
                "entities": [
                    {"entity_type": "WABA", "id": "1", "can_send_message": "X", "errors": [None]}
                ]
            },
            "id": "1",
        },
    ],
)
def test_malformed_payloads_raise_a_domain_error(payload: dict[str, Any]) -> None:
    with pytest.raises(MalformedHealthStatus):
        parse_health_status(payload, fetched_at=NOW)


def test_catalog_fills_gaps_but_never_overwrites_or_filters() -> None:
    filled = fill_error(HealthError(error_code=141006))
    assert filled.error_description == "There is an error with the payment method."
    assert filled.possible_solution is not None
    assert filled.possible_solution.startswith("There was an error with your payment method")
    meta_text = HealthError(error_code=141002, error_description="Meta's own words")
    assert fill_error(meta_text).error_description == "Meta's own words"
    unknown = HealthError(error_code=199999, extra={"x": 1})
    assert fill_error(unknown) is unknown
    assert describe_error("141010") is not None
    assert describe_error(1) is None


def test_phone_numbers_normalize_to_digits() -> None:
    assert normalize_phone_number("+86 138-0000 0001") == "8613800000001"
    assert normalize_phone_number("8613800000001") == "8613800000001"
