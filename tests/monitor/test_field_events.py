"""Which alert a change of a kept field is, and what the alert says (JSON and Slack)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from wahealth.domain.properties import PHONE_NUMBER_FIELDS, TEMPLATE_FIELDS
from wahealth.domain.records import (
    AlertEvent,
    AlertFormat,
    AlertState,
    OutboxItem,
    Subscription,
    Transition,
    TransitionCause,
)
from wahealth.monitor.events import (
    FIELD_EVENTS,
    event_for,
    field_alert_document,
    subscriptions_wanting,
)
from wahealth.monitor.payloads import render

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PHONE, TEMPLATE = "PHONE_NUMBER", "MESSAGE_TEMPLATE"


def _subscription(sub_id: int, *events: str) -> Subscription:
    return Subscription(
        sub_id,
        "demo-space",
        f"https://a.example/{sub_id}",
        None,
        events,
        AlertFormat.JSON,
        T0,
        None,
    )


def _transition(field: str | None, before: str, after: str, kind: str = PHONE) -> Transition:
    return Transition(
        9,
        "106540352242922",
        kind,
        "demo-space",
        before,
        after,
        {},
        (),
        TransitionCause.WEBHOOK,
        T0,
        field,
    )


@pytest.mark.parametrize(
    ("kind", "field", "event"),
    [
        (PHONE, "quality_rating", AlertEvent.QUALITY),
        (PHONE, "messaging_limit_tier", AlertEvent.LIMIT),
        (PHONE, "whatsapp_business_manager_messaging_limit", AlertEvent.LIMIT),
        (PHONE, "throughput", AlertEvent.LIMIT),
        (PHONE, "status", AlertEvent.NUMBER_STATUS),
        (PHONE, "name_status", AlertEvent.NUMBER_STATUS),
        (PHONE, "code_verification_status", AlertEvent.NUMBER_STATUS),
        (PHONE, "verified_name", None),
        (PHONE, "display_phone_number", None),
        (TEMPLATE, "quality_score", AlertEvent.QUALITY),
        (TEMPLATE, "status", AlertEvent.TEMPLATE_STATUS),
        (TEMPLATE, "rejected_reason", AlertEvent.TEMPLATE_STATUS),
        (TEMPLATE, "category", AlertEvent.TEMPLATE_STATUS),
    ],
)
def test_each_kept_field_is_its_event_and_any_gets_them_all(
    kind: str, field: str, event: AlertEvent | None
) -> None:
    assert event_for([event or "ANY"], "A", "B", field=field, node_kind=kind) == (
        event or AlertEvent.ANY
    )
    assert event_for(["ANY"], "A", "B", field=field, node_kind=kind) == (event or AlertEvent.ANY)
    # The health events never see a field change, whatever its values look like.
    assert (
        event_for(["BLOCKED", "LIMITED", "RECOVERED"], "AVAILABLE", "BLOCKED", field=field) is None
    )


def test_every_kept_field_is_classified_and_only_those() -> None:
    named = {(PHONE, f) for f in PHONE_NUMBER_FIELDS} | {(TEMPLATE, f) for f in TEMPLATE_FIELDS}
    assert set(FIELD_EVENTS) <= named
    assert named - set(FIELD_EVENTS) == {(PHONE, "verified_name"), (PHONE, "display_phone_number")}


def test_a_subscription_to_quality_gets_only_quality_changes() -> None:
    quality, limit, status, anything = (
        _subscription(1, "QUALITY"),
        _subscription(2, "LIMIT", "NUMBER_STATUS"),
        _subscription(3, "BLOCKED", "LIMITED", "RECOVERED"),
        _subscription(4, "ANY"),
    )
    subscriptions = [quality, limit, status, anything]

    def chosen(
        field: str | None, before: str, after: str, kind: str = PHONE
    ) -> list[tuple[int, str]]:
        return [
            (sub.id, event.value)
            for sub, event in subscriptions_wanting(
                subscriptions, before, after, field=field, node_kind=kind
            )
        ]

    assert chosen("quality_rating", "GREEN", "YELLOW") == [(1, "QUALITY"), (4, "QUALITY")]
    assert chosen("messaging_limit_tier", "TIER_1K", "TIER_250") == [(2, "LIMIT"), (4, "LIMIT")]
    assert chosen("status", "CONNECTED", "FLAGGED") == [(2, "NUMBER_STATUS"), (4, "NUMBER_STATUS")]
    assert chosen("status", "APPROVED", "PAUSED", TEMPLATE) == [(4, "TEMPLATE_STATUS")]
    assert chosen(None, "AVAILABLE", "BLOCKED") == [(3, "BLOCKED"), (4, "BLOCKED")]


def test_a_field_alert_names_the_field_and_its_values() -> None:
    transition = _transition("quality_rating", "GREEN", "RED")
    document = field_alert_document(AlertEvent.QUALITY, transition)
    assert document == {
        "event": "QUALITY",
        "node_id": "106540352242922",
        "node_kind": "PHONE_NUMBER",
        "space_id": "demo-space",
        "field": "quality_rating",
        "before": "GREEN",
        "after": "RED",
        "error_codes": [],
        "errors": [],
        "additional_info": [],
        "cause": "webhook",
        "occurred_at": "2026-12-01T09:00:00Z",
        "transition_id": 9,
        "grouped": 1,
    }
    item = OutboxItem("a1", 3, 9, "QUALITY", document, AlertState.PENDING, 0, T0, None, T0, None)
    slack = json.loads(render(item, AlertFormat.SLACK))
    assert slack["text"] == (
        ":red_circle: QUALITY: Phone number 106540352242922 quality_rating is RED (GREEN → RED)"
    )
    assert slack["blocks"][0]["text"]["text"] == (
        "QUALITY: Phone number 106540352242922 quality_rating is RED"
    )
    assert slack["blocks"][1]["fields"][1]["text"] == "*quality_rating*\nGREEN → RED"
