"""Node health: transitions only on change, atomic with their alerts, paged newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wahealth.domain.model import NodeKind
from wahealth.domain.records import DueNode, PlannedAlert, Subscription, Transition, TransitionCause
from wahealth.storage.catalog import CatalogRepository, PhoneNumberRecord
from wahealth.storage.errors import Conflict
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.tenancy import TenancyRepository

from ._reports import PHONE, codes, overall, report

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def _record(
    health: HealthRepository,
    payload: dict[str, Any],
    at: datetime,
    space_id: str | None = "acme-space",
    **options: Any,
) -> int | None:
    return await health.record(
        PHONE,
        "PHONE_NUMBER",
        space_id,
        overall(payload),
        payload,
        codes(payload),
        at,
        options.pop("cause", TransitionCause.POLL),
        **options,
    )


async def test_first_report_is_a_transition_from_nothing(health: HealthRepository) -> None:
    first = await _record(health, report(), T0, next_due_at=T0 + timedelta(minutes=5))
    assert first is not None
    stored = await health.get(PHONE)
    assert stored is not None
    assert (stored.can_send_message, stored.fetched_at, stored.next_due_at) == (
        "AVAILABLE",
        T0,
        T0 + timedelta(minutes=5),
    )
    assert stored.payload == report()
    [transition] = await health.history(PHONE)
    assert (transition.id, transition.before, transition.after, transition.cause) == (
        first,
        None,
        "AVAILABLE",
        TransitionCause.POLL,
    )
    assert [e["id"] for e in transition.changes["entities"]] == [PHONE, "waba-1"]


async def test_an_unchanged_refresh_stores_no_transition(health: HealthRepository) -> None:
    await _record(health, report(waba="BLOCKED", waba_errors=(141006,)), T0)
    # Same statuses and codes; reworded description and a calling-only change do not count.
    same = report(waba="BLOCKED", waba_errors=(141006,), description="Reworded.", sip="BLOCKED")
    assert await _record(health, same, T0 + timedelta(minutes=1)) is None

    assert len(await health.history(PHONE)) == 1
    stored = await health.get(PHONE)
    assert stored is not None
    assert stored.fetched_at == T0 + timedelta(minutes=1)
    assert stored.payload == same


BLOCKED_141006 = report(waba="BLOCKED", waba_errors=(141006,))


@pytest.mark.parametrize(
    ("before", "after", "changed_entity"),
    [
        (report(), BLOCKED_141006, "waba-1"),
        (
            report(waba="BLOCKED", waba_errors=(141010,)),
            report(phone="LIMITED", waba="BLOCKED", waba_errors=(141010,)),
            PHONE,
        ),
        (BLOCKED_141006, report(waba="BLOCKED", waba_errors=(141006, 141010)), "waba-1"),
        (report(phone="LIMITED"), report(phone="LIMITED", phone_info=("Name pending",)), PHONE),
    ],
    ids=["overall-status", "entity-status-only", "error-codes", "additional-info"],
)
async def test_each_kind_of_change_is_a_transition(
    health: HealthRepository,
    before: dict[str, Any],
    after: dict[str, Any],
    changed_entity: str,
) -> None:
    await _record(health, before, T0)
    transition_id = await _record(health, after, T0 + timedelta(minutes=1), cause="webhook")
    assert transition_id is not None
    newest = (await health.history(PHONE))[0]
    assert (newest.id, newest.before, newest.after, newest.cause) == (
        transition_id,
        overall(before),
        overall(after),
        TransitionCause.WEBHOOK,
    )
    assert [e["id"] for e in newest.changes["entities"]] == [changed_entity]
    assert list(newest.error_codes) == codes(after)


async def test_the_entity_diff_says_what_changed(health: HealthRepository) -> None:
    await _record(health, report(), T0)
    await _record(health, report(waba="BLOCKED", waba_errors=(141006,)), T0 + timedelta(1))
    [change] = (await health.history(PHONE))[0].changes["entities"]
    assert change == {
        "entity_type": "WABA",
        "id": "waba-1",
        "before": {"can_send_message": "AVAILABLE", "error_codes": [], "additional_info": []},
        "after": {"can_send_message": "BLOCKED", "error_codes": ["141006"], "additional_info": []},
    }


async def test_a_report_older_than_the_stored_one_is_ignored(health: HealthRepository) -> None:
    await _record(health, report(waba="BLOCKED", waba_errors=(141006,)), T0)
    assert await _record(health, report(), T0 - timedelta(seconds=1)) is None
    stored = await health.get(PHONE)
    assert stored is not None
    assert stored.can_send_message == "BLOCKED"
    assert len(await health.history(PHONE)) == 1


async def test_alerts_are_enqueued_with_their_transition(
    health: HealthRepository, outbox: OutboxRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a", on_events=["BLOCKED"])
    await outbox.add_subscription(acme, "https://hooks.example/b", on_events=["RECOVERED"])
    seen: list[tuple[Transition, Sequence[Subscription]]] = []

    def plan(transition: Transition, subscriptions: Sequence[Subscription]) -> list[PlannedAlert]:
        seen.append((transition, subscriptions))
        return [
            PlannedAlert(s.id, transition.after, {"node": transition.node_id})
            for s in subscriptions
            if s.wants(transition.after)
        ]

    transition_id = await _record(
        health, report(waba="BLOCKED", waba_errors=(141006,)), T0, alerts=plan
    )
    [(transition, subscriptions)] = seen
    assert transition.id == transition_id
    assert [s.url for s in subscriptions] == ["https://hooks.example/a", "https://hooks.example/b"]
    [alert] = await outbox.list_alerts()
    assert (alert.subscription_id, alert.transition_id, alert.event, alert.payload) == (
        hook.id,
        transition_id,
        "BLOCKED",
        {"node": PHONE},
    )
    assert len(alert.id) == 32

    # No change, no transition, no planner call, no alert.
    await _record(
        health, report(waba="BLOCKED", waba_errors=(141006,)), T0 + timedelta(1), alerts=plan
    )
    assert len(seen) == 1
    assert len(await outbox.list_alerts()) == 1


async def test_a_failing_alert_insert_rolls_back_the_transition(
    health: HealthRepository, outbox: OutboxRepository, acme: str
) -> None:
    await _record(health, report(), T0)
    before = await health.get(PHONE)
    broken = [PlannedAlert(subscription_id=424242, event="BLOCKED", payload={})]

    with pytest.raises(Conflict):
        await _record(
            health, report(waba="BLOCKED", waba_errors=(141006,)), T0 + timedelta(1), alerts=broken
        )

    assert len(await health.history(PHONE)) == 1
    assert await health.get(PHONE) == before
    assert await outbox.list_alerts() == []


async def test_history_pages_newest_first(health: HealthRepository) -> None:
    statuses = ["AVAILABLE", "BLOCKED", "AVAILABLE", "BLOCKED", "AVAILABLE"]
    ids = []
    for minute, status in enumerate(statuses):
        payload = report(waba=status, waba_errors=(141006,) if status == "BLOCKED" else ())
        transition_id = await _record(health, payload, T0 + timedelta(minutes=minute))
        assert transition_id is not None
        ids.append(transition_id)
    newest_first = ids[::-1]

    page1 = await health.history(PHONE, limit=2)
    page2 = await health.history(PHONE, limit=2, before_id=page1[-1].id)
    page3 = await health.history(PHONE, limit=2, before_id=page2[-1].id)
    assert [t.id for t in page1 + page2 + page3] == newest_first
    assert [t.occurred_at for t in page1] == [T0 + timedelta(minutes=4), T0 + timedelta(minutes=3)]
    assert await health.history(PHONE, before_id=ids[0]) == []
    assert await health.history("other-node") == []
    assert [t.id for t in await health.recent(limit=3, space_id="acme-space")] == newest_first[:3]
    assert await health.recent(space_id="elsewhere") == []


async def test_due_nodes_come_from_the_catalog_oldest_first(
    health: HealthRepository,
    catalog: CatalogRepository,
    tenancy: TenancyRepository,
    acme: str,
) -> None:
    await catalog.replace_phone_numbers(
        "waba-1", [PhoneNumberRecord(PHONE, "8613800000001"), PhoneNumberRecord("p2", "2")]
    )
    await tenancy.upsert_account("idle")
    await tenancy.upsert_space("idle-space", "idle")
    await tenancy.upsert_waba("waba-idle", "idle-space")
    await tenancy.disable_account("idle")

    await _record(health, report(), T0, next_due_at=T0 + timedelta(minutes=10))
    await health.set_next_due("waba-1", T0 - timedelta(minutes=1), node_kind="WABA", space_id=acme)
    placeholder = await health.get("waba-1")
    assert placeholder is not None
    assert (placeholder.node_kind, placeholder.payload, placeholder.fetched_at) == (
        "WABA",
        None,
        None,
    )

    assert await health.due_nodes(T0) == [
        DueNode("p2", NodeKind.PHONE_NUMBER, acme, None),
        DueNode("waba-1", NodeKind.WABA, acme, T0 - timedelta(minutes=1)),
    ]
    assert await health.due_nodes(T0, limit=1) == [DueNode("p2", NodeKind.PHONE_NUMBER, acme, None)]
    later = await health.due_nodes(T0 + timedelta(minutes=10))
    assert [n.node_id for n in later] == ["p2", "waba-1", PHONE]
    pages = health.due_pages(T0 + timedelta(minutes=10), limit=3, page=2)
    assert [page async for page in pages] == [later[:2], later[2:]]
    pages = health.due_pages(T0 + timedelta(minutes=10), limit=2, page=5)
    assert [page async for page in pages] == [later[:2]]

    await health.set_next_due(PHONE, T0 + timedelta(hours=1), checked_at=T0 + timedelta(1))
    stored = await health.get(PHONE)
    assert stored is not None
    assert (stored.next_due_at, stored.checked_at, stored.payload) == (
        T0 + timedelta(hours=1),
        T0 + timedelta(1),
        report(),
    )
    assert PHONE not in [n.node_id for n in await health.due_nodes(T0 + timedelta(minutes=10))]


async def test_first_report_after_a_failed_first_check_starts_the_history(
    health: HealthRepository,
) -> None:
    await health.set_next_due(PHONE, T0, checked_at=T0, node_kind="PHONE_NUMBER")
    transition_id = await _record(health, report(), T0 + timedelta(minutes=1))
    assert transition_id is not None
    [transition] = await health.history(PHONE)
    assert (transition.before, transition.after) == (None, "AVAILABLE")
