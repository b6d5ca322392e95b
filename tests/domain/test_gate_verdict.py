"""The gate's verdict: health, catalog statuses and strictness combined, as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wahealth.domain import Entity, HealthError, HealthReport, NodeKind, ReportSource, Status
from wahealth.domain.gate import (
    PHONE_NUMBER_NOT_CONNECTED,
    TEMPLATE_NOT_APPROVED,
    GateNode,
    Reason,
    gate_verdict,
    health_reasons,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PHONE, TEMPLATE, WABA, BUSINESS = "106540352242922", "2632273056924580", "1022", "5069"


def _entity(kind: str, node_id: str, status: str = "AVAILABLE", **more: object) -> Entity:
    return Entity(kind, node_id, status, **more)  # type: ignore[arg-type]


def report(
    node_id: str,
    kind: str,
    status: str = "AVAILABLE",
    *,
    waba: str = "AVAILABLE",
    fetched_at: datetime = NOW,
    source: ReportSource = ReportSource.CACHE,
    **more: object,
) -> HealthReport:
    entities = (
        _entity(kind, node_id, status, **more),
        _entity("WABA", WABA, waba),
        _entity("BUSINESS", BUSINESS),
    )
    return HealthReport(node_id, entities, fetched_at, source)


def phone(status: str = "AVAILABLE", catalog: str | None = None, **more: object) -> GateNode:
    return GateNode(report(PHONE, "PHONE_NUMBER", status, **more), NodeKind.PHONE_NUMBER, catalog)


def template(
    status: str = "AVAILABLE", catalog: str | None = "APPROVED", **more: object
) -> GateNode:
    return GateNode(
        report(TEMPLATE, "MESSAGE_TEMPLATE", status, **more), NodeKind.MESSAGE_TEMPLATE, catalog
    )


LIMITED_INFO = ("Your display name has not been approved yet.",)
BLOCKED_ERROR = (HealthError(141002),)


@pytest.mark.parametrize(
    ("nodes", "strict", "allow", "status"),
    [
        ([phone()], False, True, Status.AVAILABLE),
        ([phone()], True, True, Status.AVAILABLE),
        ([phone("LIMITED", additional_info=LIMITED_INFO)], False, True, Status.LIMITED),
        ([phone("LIMITED", additional_info=LIMITED_INFO)], True, False, Status.LIMITED),
        ([phone("BLOCKED", errors=BLOCKED_ERROR)], False, False, Status.BLOCKED),
        ([phone(), template()], False, True, Status.AVAILABLE),
        ([phone(), template("BLOCKED", errors=BLOCKED_ERROR)], False, False, Status.BLOCKED),
        ([phone("LIMITED"), template()], False, True, Status.LIMITED),
        ([phone(), template("LIMITED")], True, False, Status.LIMITED),
    ],
)
def test_health_decides_and_strict_refuses_limited(
    nodes: list[GateNode], strict: bool, allow: bool, status: Status
) -> None:
    verdict = gate_verdict(nodes, strict=strict)
    assert (verdict.allow, verdict.status) == (allow, status)


def test_a_blocked_waba_blocks_the_number_that_is_available_itself() -> None:
    node = GateNode(
        report(PHONE, "PHONE_NUMBER", waba="BLOCKED", fetched_at=NOW),
        NodeKind.PHONE_NUMBER,
    )
    verdict = gate_verdict([node])
    assert not verdict.allow
    assert verdict.status is Status.BLOCKED
    assert verdict.reasons == (
        Reason("WABA", WABA, None, "Meta reports this WABA as BLOCKED.", None),
    )


@pytest.mark.parametrize(
    "status", ["PENDING", "PAUSED", "DISABLED", "REJECTED", "IN_APPEAL", "SOMETHING_NEW"]
)
def test_a_template_not_approved_denies_even_when_healthy(status: str) -> None:
    verdict = gate_verdict([phone(), template(catalog=status)])
    assert not verdict.allow
    assert verdict.status is Status.AVAILABLE  # Meta's health, unchanged
    (reason,) = verdict.reasons
    assert reason.entity_type == "MESSAGE_TEMPLATE"
    assert reason.entity_id == TEMPLATE
    assert reason.error_code == TEMPLATE_NOT_APPROVED
    assert reason.description is not None
    assert status in reason.description
    assert reason.solution


@pytest.mark.parametrize("status", ["FLAGGED", "RESTRICTED", "PENDING", "BANNED", "DISCONNECTED"])
def test_a_number_not_connected_denies(status: str) -> None:
    verdict = gate_verdict([phone(catalog=status)])
    assert not verdict.allow
    (reason,) = verdict.reasons
    assert (reason.entity_type, reason.entity_id, reason.error_code) == (
        "PHONE_NUMBER",
        PHONE,
        PHONE_NUMBER_NOT_CONNECTED,
    )
    assert reason.description is not None
    assert status in reason.description


@pytest.mark.parametrize("status", [None, "", "UNKNOWN", "unknown", "CONNECTED", "connected"])
def test_an_unknown_or_connected_number_status_denies_nothing(status: str | None) -> None:
    verdict = gate_verdict([phone(catalog=status), template(catalog="approved")])
    assert verdict.allow
    assert verdict.reasons == ()


def test_a_template_status_applies_to_templates_only() -> None:
    # "APPROVED" on a number, or "CONNECTED" on a template, is not theirs to weigh.
    assert not gate_verdict([phone(catalog="APPROVED")]).allow
    assert not gate_verdict([phone(), template(catalog="CONNECTED")]).allow
    assert gate_verdict([phone(), template(catalog=None)]).allow


def test_reasons_are_filled_from_the_catalog_and_deduplicated() -> None:
    blocked_waba = {"waba": "BLOCKED"}
    verdict = gate_verdict(
        [
            phone("LIMITED", additional_info=LIMITED_INFO, **blocked_waba),
            template("BLOCKED", errors=BLOCKED_ERROR, catalog="PENDING", **blocked_waba),
        ]
    )
    assert [(r.entity_type, r.error_code) for r in verdict.reasons] == [
        ("PHONE_NUMBER", None),
        ("WABA", None),  # once, though both reports carry the WABA
        ("MESSAGE_TEMPLATE", "141002"),
        ("MESSAGE_TEMPLATE", TEMPLATE_NOT_APPROVED),
    ]
    filled = verdict.reasons[2]
    assert filled.description == "Message templates can only be sent out if they are approved."
    assert filled.solution == "Edit or appeal the message template review decision."
    assert verdict.reasons[0].description == LIMITED_INFO[0]


def test_metas_own_texts_are_kept() -> None:
    own = HealthError(141002, "Meta's words", "Meta's fix")
    (reason,) = health_reasons(report(TEMPLATE, "MESSAGE_TEMPLATE", "BLOCKED", errors=(own,)))
    assert (reason.description, reason.solution) == ("Meta's words", "Meta's fix")


def test_errors_of_available_entities_are_not_reasons() -> None:
    # Calling (SIP) errors ride on a number that can still send messages.
    sip = HealthError(138024, "SIP is not enabled")
    assert health_reasons(report(PHONE, "PHONE_NUMBER", errors=(sip,))) == []


def test_age_staleness_and_nodes_come_from_the_oldest_report() -> None:
    older = NOW - timedelta(seconds=90)
    verdict = gate_verdict(
        [phone(), template(fetched_at=older, source=ReportSource.STALE)], strict=True
    )
    assert verdict.nodes == (PHONE, TEMPLATE)
    assert verdict.fetched_at == older
    assert verdict.stale
    assert verdict.age_seconds(NOW) == 90.0
    assert verdict.age_seconds(older - timedelta(seconds=5)) == 0.0
    assert not gate_verdict([phone()]).stale


def test_no_nodes_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        gate_verdict([])


health = st.sampled_from(["AVAILABLE", "LIMITED", "BLOCKED"])
template_statuses = st.sampled_from([None, "APPROVED", "PENDING", "PAUSED", "REJECTED"])
number_statuses = st.sampled_from([None, "UNKNOWN", "CONNECTED", "FLAGGED", "RESTRICTED"])


@given(health, health, template_statuses, number_statuses, st.booleans())
def test_allow_is_exactly_the_rule(
    phone_health: str, template_health: str, template_status: str | None,
    number_status: str | None, strict: bool,
) -> None:  # fmt: skip
    verdict = gate_verdict(
        [phone(phone_health, number_status), template(template_health, template_status)],
        strict=strict,
    )
    worst = max((Status(phone_health), Status(template_health)), key=lambda s: s.severity)
    expected = (
        worst is not Status.BLOCKED
        and template_status in (None, "APPROVED")
        and number_status in (None, "UNKNOWN", "CONNECTED")
        and not (strict and worst is Status.LIMITED)
    )
    assert verdict.allow is expected
    assert verdict.status is worst
    # A denial always says why, and so does every LIMITED.
    if not verdict.allow or worst is Status.LIMITED:
        assert verdict.reasons
