"""Kept fields of numbers and templates: stored per field, each change a transition with its
alerts in one transaction; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.domain.records import (
    PlannedAlert,
    PropertyObservation,
    Subscription,
    Transition,
    TransitionCause,
)
from wahealth.storage.catalog import CatalogRepository, PhoneNumberRecord, TemplateRecord
from wahealth.storage.errors import StorageError
from wahealth.storage.health import HealthRepository
from wahealth.storage.models import TransitionRow
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.properties import PropertyRepository

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PHONE = "106540352242922"
TEMPLATE = "2632273056924580"
PHONE_VALUES = {
    "verified_name": "Acme",
    "quality_rating": "GREEN",
    "messaging_limit_tier": "TIER_1K",
    "whatsapp_business_manager_messaging_limit": "TIER_2K",
    "throughput": "STANDARD",
    "status": "CONNECTED",
    "name_status": "APPROVED",
    "code_verification_status": "VERIFIED",
}
TEMPLATE_VALUES = {
    "status": "APPROVED",
    "category": "UTILITY",
    "quality_score": "GREEN",
    "rejected_reason": "NONE",
}
PHONE_CHANGES = {
    "display_phone_number": "+86 138 0000 0077",
    "verified_name": "Acme Ltd",
    "quality_rating": "YELLOW",
    "messaging_limit_tier": "TIER_250",
    "whatsapp_business_manager_messaging_limit": "TIER_250",
    "throughput": "HIGH",
    "status": "FLAGGED",
    "name_status": "DECLINED",
    "code_verification_status": "EXPIRED",
}
TEMPLATE_CHANGES = {
    "status": "REJECTED",
    "category": "MARKETING",
    "quality_score": "RED",
    "rejected_reason": "PROMOTIONAL",
}


@pytest.fixture
def properties(sessions: async_sessionmaker[AsyncSession]) -> PropertyRepository:
    return PropertyRepository(sessions)


@pytest.fixture
async def synced(catalog: CatalogRepository, acme: str) -> str:
    await catalog.replace_phone_numbers(
        "waba-1", [PhoneNumberRecord(PHONE, "+86 138 0000 0001", **PHONE_VALUES)], T0
    )
    await catalog.replace_templates(
        "waba-1", [TemplateRecord(TEMPLATE, "order_update", "en", **TEMPLATE_VALUES)], T0
    )
    return acme


def _seen(node_id: str, at: datetime, **values: str | None) -> PropertyObservation:
    return PropertyObservation(node_id, values, at)


class Planner:
    """Plans one alert per transition for every subscription, recording what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[Transition, list[int]]] = []

    def __call__(
        self, transition: Transition, subscriptions: Sequence[Subscription]
    ) -> list[PlannedAlert]:
        self.seen.append((transition, [s.id for s in subscriptions]))
        return [
            PlannedAlert(s.id, "QUALITY", {"field": transition.field, "after": transition.after})
            for s in subscriptions
        ]


async def test_a_sync_stores_every_kept_field(catalog: CatalogRepository, synced: str) -> None:
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert {name: getattr(phone, name) for name in PHONE_VALUES} == PHONE_VALUES
    [template] = await catalog.templates_of_waba("waba-1")
    assert {name: getattr(template, name) for name in TEMPLATE_VALUES} == TEMPLATE_VALUES


async def test_a_replace_never_clears_a_value_meta_did_not_send(
    catalog: CatalogRepository, synced: str
) -> None:
    summary = await catalog.replace_phone_numbers(
        "waba-1", [PhoneNumberRecord(PHONE, "+86 138 0000 0001", quality_rating="RED")]
    )
    assert summary.updated == 1
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert (phone.quality_rating, phone.status, phone.verified_name) == ("RED", "CONNECTED", "Acme")


async def test_each_changed_field_is_a_transition_of_its_own(
    properties: PropertyRepository,
    catalog: CatalogRepository,
    health: HealthRepository,
    synced: str,
) -> None:
    at = T0 + timedelta(minutes=1)
    ids = await properties.record(
        [_seen(PHONE, at, **PHONE_CHANGES), _seen(TEMPLATE, at, **TEMPLATE_CHANGES)],
        TransitionCause.POLL,
    )
    assert len(ids) == len(PHONE_CHANGES) + len(TEMPLATE_CHANGES)
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert {name: getattr(phone, name) for name in PHONE_CHANGES} == PHONE_CHANGES
    assert (phone.digits, phone.observed_at) == ("8613800000077", at)
    assert await catalog.phone_number_by_digits(synced, "8613800000077") == (PHONE, "waba-1")
    [template] = await catalog.templates_of_waba("waba-1")
    assert {name: getattr(template, name) for name in TEMPLATE_CHANGES} == TEMPLATE_CHANGES

    phone_history = {t.field: t for t in await health.history(PHONE)}
    assert set(phone_history) == set(PHONE_CHANGES)
    quality = phone_history["quality_rating"]
    assert (quality.before, quality.after, quality.cause, quality.occurred_at) == (
        "GREEN",
        "YELLOW",
        TransitionCause.POLL,
        at,
    )
    assert (quality.node_kind, quality.space_id, quality.error_codes) == (
        "PHONE_NUMBER",
        synced,
        (),
    )
    assert quality.changes == {"field": "quality_rating", "before": "GREEN", "after": "YELLOW"}
    template_history = {t.field: (t.before, t.after) for t in await health.history(TEMPLATE)}
    assert template_history == {
        name: (TEMPLATE_VALUES[name], value) for name, value in TEMPLATE_CHANGES.items()
    }


async def test_nothing_new_writes_nothing(
    properties: PropertyRepository, catalog: CatalogRepository, synced: str
) -> None:
    later = T0 + timedelta(hours=1)
    assert await properties.record([_seen(PHONE, later, **PHONE_VALUES)], "poll") == []
    assert await properties.record([_seen(PHONE, later, quality_rating=None)], "poll") == []
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert phone.observed_at is None  # never written: a fleet of unchanged nodes costs no write


async def test_a_first_value_is_a_baseline_not_a_change(
    properties: PropertyRepository, catalog: CatalogRepository, acme: str
) -> None:
    await catalog.replace_phone_numbers("waba-1", [PhoneNumberRecord(PHONE, "+1 555 0100")])
    at = T0 + timedelta(minutes=1)
    assert await properties.record([_seen(PHONE, at, quality_rating="GREEN")], "poll") == []
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert (phone.quality_rating, phone.observed_at) == ("GREEN", at)
    [later] = await properties.record([_seen(PHONE, at, quality_rating="RED")], "poll")
    assert later > 0


async def test_an_older_observation_is_not_applied_over_a_newer_one(
    properties: PropertyRepository, catalog: CatalogRepository, synced: str
) -> None:
    newer, older = T0 + timedelta(minutes=5), T0 + timedelta(minutes=1)
    assert len(await properties.record([_seen(PHONE, newer, status="FLAGGED")], "webhook")) == 1
    assert await properties.record([_seen(PHONE, older, status="CONNECTED")], "poll") == []
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert phone.status == "FLAGGED"


async def test_observations_apply_in_order_and_unknown_nodes_are_skipped(
    properties: PropertyRepository, health: HealthRepository, synced: str
) -> None:
    at = T0 + timedelta(minutes=1)
    ids = await properties.record(
        [
            _seen(PHONE, at, quality_rating="YELLOW"),
            _seen("not-in-the-catalog", at, quality_rating="RED"),
            _seen(PHONE, at + timedelta(seconds=1), quality_rating="RED"),
        ],
        "poll",
    )
    assert len(ids) == 2
    steps = [(t.before, t.after) for t in await health.history(PHONE)]
    assert steps == [("YELLOW", "RED"), ("GREEN", "YELLOW")]


async def test_alerts_are_planned_and_enqueued_with_their_transition(
    properties: PropertyRepository, outbox: OutboxRepository, synced: str
) -> None:
    first = await outbox.add_subscription(synced, "https://alerts.example/a", on_events=["QUALITY"])
    second = await outbox.add_subscription(synced, "https://alerts.example/b", on_events=["ANY"])
    planner = Planner()
    at = T0 + timedelta(minutes=1)
    [transition_id] = await properties.record(
        [_seen(TEMPLATE, at, quality_score="RED")], "webhook", alerts=planner
    )
    [(transition, subscriptions)] = planner.seen
    assert (transition.id, transition.field, transition.before, transition.after) == (
        transition_id,
        "quality_score",
        "GREEN",
        "RED",
    )
    assert transition.cause is TransitionCause.WEBHOOK
    assert subscriptions == [first.id, second.id]
    alerts = await outbox.list_alerts()
    assert sorted((a.subscription_id, a.transition_id, a.next_attempt_at) for a in alerts) == [
        (first.id, transition_id, at),
        (second.id, transition_id, at),
    ]
    assert all(a.payload == {"field": "quality_score", "after": "RED"} for a in alerts)


async def test_a_failing_alert_plan_stores_nothing_at_all(
    properties: PropertyRepository,
    catalog: CatalogRepository,
    outbox: OutboxRepository,
    sessions: async_sessionmaker[AsyncSession],
    synced: str,
) -> None:
    await outbox.add_subscription(synced, "https://alerts.example/a", on_events=["QUALITY"])

    def broken(transition: Transition, subscriptions: Sequence[Subscription]) -> list[PlannedAlert]:
        return [PlannedAlert(999_999, "QUALITY", {})]  # no such subscription: the insert fails

    with pytest.raises(StorageError):
        await properties.record(
            [_seen(PHONE, T0 + timedelta(minutes=1), quality_rating="RED")], "poll", alerts=broken
        )
    [phone] = await catalog.phone_numbers_of_waba("waba-1")
    assert phone.quality_rating == "GREEN"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TransitionRow)) == 0


async def test_kinds_names_the_catalog_numbers_and_templates(
    properties: PropertyRepository, synced: str
) -> None:
    kinds = await properties.kinds([PHONE, TEMPLATE, "waba-1", "nope"])
    assert {node_id: kind.value for node_id, kind in kinds.items()} == {
        PHONE: "PHONE_NUMBER",
        TEMPLATE: "MESSAGE_TEMPLATE",
    }
