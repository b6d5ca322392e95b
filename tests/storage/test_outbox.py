"""The alert outbox: subscriptions, and due -> claim -> delivered / failed / dead -> retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.domain.records import AlertFormat, AlertState, Claim, PlannedAlert
from wahealth.storage.errors import (
    Conflict,
    LostClaim,
    UnknownAlert,
    UnknownSpace,
    UnknownSubscription,
)
from wahealth.storage.health import HealthRepository
from wahealth.storage.models import OutboxRow
from wahealth.storage.outbox import OutboxRepository

from ._reports import PHONE, codes, overall, report

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def _alerts(
    health: HealthRepository, subscription_ids: list[int], count: int = 1
) -> list[str]:
    """Record `count` transitions of one node, each with an alert per subscription."""
    ids = []
    for n in range(count):
        status = "BLOCKED" if n % 2 == 0 else "AVAILABLE"
        payload = report(waba=status, waba_errors=(141006,) if status == "BLOCKED" else ())
        alert_ids = [f"alert-{n}-{sub}" for sub in subscription_ids]
        await health.record(
            PHONE,
            "PHONE_NUMBER",
            "acme-space",
            overall(payload),
            payload,
            codes(payload),
            T0 + timedelta(seconds=n),
            "poll",
            alerts=[
                PlannedAlert(sub, status, {"n": n}, alert_id=alert_id)
                for sub, alert_id in zip(subscription_ids, alert_ids, strict=True)
            ],
        )
        ids.extend(alert_ids)
    return ids


async def test_subscriptions_per_space(outbox: OutboxRepository, acme: str) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a", secret_encrypted="enc")
    slack = await outbox.add_subscription(
        acme, "https://hooks.slack.example/T/B", on_events=["BLOCKED"], format="slack"
    )
    assert (hook.on_events, hook.format, hook.secret_encrypted) == (
        ("BLOCKED", "LIMITED", "RECOVERED"),
        AlertFormat.JSON,
        "enc",
    )
    assert slack.format is AlertFormat.SLACK
    assert await outbox.get_subscription(hook.id) == hook
    assert await outbox.list_subscriptions(acme) == [hook, slack]
    assert await outbox.list_subscriptions("other-space") == []

    with pytest.raises(Conflict):
        await outbox.add_subscription(acme, "https://hooks.example/a")
    with pytest.raises(UnknownSpace):
        await outbox.add_subscription("no-space", "https://hooks.example/a")
    with pytest.raises(ValueError, match="AlertFormat"):
        await outbox.add_subscription(acme, "https://hooks.example/x", format="xml")

    paused = await outbox.set_subscription_disabled(slack.id, True)
    assert paused.disabled_at is not None
    assert not paused.wants("BLOCKED")
    assert await outbox.list_subscriptions(acme) == [hook]
    assert len(await outbox.list_subscriptions(acme, include_disabled=True)) == 2

    assert await outbox.remove_subscription(hook.id) is True
    assert await outbox.remove_subscription(hook.id) is False
    assert await outbox.get_subscription(hook.id) is None


async def test_claim_deliver_fail_dead_retry(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a")
    [first, second] = await _alerts(health, [hook.id], count=2)

    due = await outbox.due(T0 + timedelta(seconds=5))
    assert [d.item.id for d in due] == [first, second]
    assert due[0].subscription == hook
    assert await outbox.due(T0 - timedelta(seconds=1)) == []

    claimed = await outbox.claim(T0 + timedelta(seconds=5), limit=1, lease=LEASE)
    assert [(d.item.id, d.item.attempts) for d in claimed] == [(first, 1)]
    # Leased: hidden from others until the lease runs out.
    assert [d.item.id for d in await outbox.due(T0 + timedelta(seconds=5))] == [second]

    delivered = await outbox.mark_delivered(first, T0 + timedelta(seconds=6))
    assert (delivered.state, delivered.delivered_at) == (
        AlertState.DELIVERED,
        T0 + timedelta(seconds=6),
    )

    await outbox.claim(T0 + timedelta(seconds=7), lease=LEASE)
    retry_at = T0 + timedelta(minutes=5)
    failed = await outbox.mark_failed(second, "HTTP 503", retry_at)
    assert (failed.state, failed.attempts, failed.last_error) == (AlertState.PENDING, 1, "HTTP 503")
    assert await outbox.due(retry_at - timedelta(seconds=1)) == []
    [again] = await outbox.claim(retry_at, lease=LEASE)
    assert again.item.attempts == 2

    dead = await outbox.mark_dead(second, "HTTP 410")
    assert dead.state is AlertState.DEAD
    assert await outbox.due(T0 + timedelta(days=1)) == []
    assert [a.id for a in await outbox.list_alerts(AlertState.DEAD)] == [second]
    assert [a.id for a in await outbox.list_alerts("delivered")] == [first]
    assert [a.id for a in await outbox.list_alerts(space_id=acme)] == [second, first]

    with pytest.raises(Conflict):
        await outbox.retry_dead(first)
    revived = await outbox.retry_dead(second, now=T0 + timedelta(hours=1))
    assert (revived.state, revived.attempts, revived.next_attempt_at) == (
        AlertState.PENDING,
        0,
        T0 + timedelta(hours=1),
    )
    assert [d.item.id for d in await outbox.due(T0 + timedelta(hours=1))] == [second]
    with pytest.raises(UnknownAlert):
        await outbox.mark_delivered("nope", T0)


async def test_an_expired_lease_makes_the_alert_due_again(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a")
    [alert] = await _alerts(health, [hook.id])
    await outbox.claim(T0, lease=LEASE)
    assert await outbox.claim(T0 + LEASE - timedelta(seconds=1), lease=LEASE) == []
    [retaken] = await outbox.claim(T0 + LEASE, lease=LEASE)
    assert (retaken.item.id, retaken.item.attempts) == (alert, 2)


async def test_a_claim_names_its_sender_and_only_the_current_claim_records_an_outcome(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a")
    [alert] = await _alerts(health, [hook.id])
    [first] = await outbox.claim(T0, lease=LEASE, by="replica-a")
    assert first.item.claim == Claim("replica-a", T0 + LEASE)
    stored = await outbox.get(alert)
    assert stored is not None
    assert (stored.claimed_by, stored.claimed_until) == ("replica-a", T0 + LEASE)

    # replica-a stalls past its lease; replica-b takes the alert and delivers it.
    [second] = await outbox.claim(T0 + LEASE, lease=LEASE, by="replica-b")
    assert (second.item.id, second.item.attempts) == (alert, 2)
    assert second.item.claim == Claim("replica-b", T0 + 2 * LEASE)
    delivered_at = T0 + LEASE + timedelta(seconds=1)
    await outbox.mark_delivered(alert, delivered_at, held=second.item.claim)

    # replica-a's late answer (a failure) is refused: the delivery stands, nothing is due.
    with pytest.raises(LostClaim):
        await outbox.mark_failed(alert, "HTTP 500", T0 + LEASE, held=first.item.claim)
    with pytest.raises(LostClaim):
        await outbox.mark_dead(alert, "HTTP 410", held=first.item.claim)
    stored = await outbox.get(alert)
    assert stored is not None
    assert (stored.state, stored.delivered_at, stored.last_error) == (
        AlertState.DELIVERED,
        delivered_at,
        None,
    )
    assert (stored.claimed_by, stored.claimed_until) == (None, None)
    assert await outbox.due(T0 + timedelta(days=1)) == []


async def test_a_claim_past_its_lease_still_records_if_nobody_took_over(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a")
    [alert] = await _alerts(health, [hook.id])
    [mine] = await outbox.claim(T0, lease=LEASE, by="replica-a")
    # The same sender claims it again after its lease: a new claim, the old one is stale.
    [again] = await outbox.claim(T0 + LEASE, lease=LEASE, by="replica-a")
    with pytest.raises(LostClaim):
        await outbox.mark_delivered(alert, T0 + LEASE, held=mine.item.claim)
    late = T0 + 3 * LEASE
    failed = await outbox.mark_failed(alert, "HTTP 503", late, held=again.item.claim)
    assert (failed.state, failed.attempts, failed.claim) == (AlertState.PENDING, 2, None)
    assert await outbox.due(late - timedelta(seconds=1)) == []
    assert [d.item.id for d in await outbox.due(late)] == [alert]


async def test_claims_skip_rows_another_transaction_has_locked(
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxRepository,
    health: HealthRepository,
    acme: str,
) -> None:
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite has one writer")
    hook = await outbox.add_subscription(acme, "https://hooks.example/a")
    [locked, free] = await _alerts(health, [hook.id], count=2)
    async with sessions() as session, session.begin():
        # Another replica's claim, still in its transaction.
        await session.execute(select(OutboxRow.id).where(OutboxRow.id == locked).with_for_update())
        async with asyncio.timeout(30):  # a claim that waited on the lock would hang here
            claimed = await outbox.claim(T0 + timedelta(minutes=1), lease=LEASE, by="replica-b")
        assert [d.item.id for d in claimed] == [free]
    [later] = await outbox.claim(T0 + timedelta(minutes=1), lease=LEASE, by="replica-b")
    assert later.item.id == locked


async def test_concurrent_claims_never_share_an_alert(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    hooks = [await outbox.add_subscription(acme, f"https://hooks.example/{n}") for n in range(3)]
    alerts = await _alerts(health, [hook.id for hook in hooks], count=4)

    batches = await asyncio.gather(
        *(outbox.claim(T0 + timedelta(minutes=1), limit=5, lease=LEASE) for _ in range(4))
    )
    claimed = [d.item.id for batch in batches for d in batch]
    assert sorted(claimed) == sorted(alerts)


async def test_paused_and_removed_subscriptions(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    kept = await outbox.add_subscription(acme, "https://hooks.example/kept")
    gone = await outbox.add_subscription(acme, "https://hooks.example/gone")
    await _alerts(health, [kept.id, gone.id])

    await outbox.set_subscription_disabled(kept.id, True)
    assert [d.subscription.id for d in await outbox.due(T0)] == [gone.id]
    await outbox.remove_subscription(gone.id)
    assert [a.subscription_id for a in await outbox.list_alerts()] == [kept.id]
    assert await outbox.due(T0) == []
    await outbox.set_subscription_disabled(kept.id, False)
    assert [d.subscription.id for d in await outbox.due(T0)] == [kept.id]


async def test_updating_a_subscription_keeps_its_id_pause_and_alerts(
    outbox: OutboxRepository, health: HealthRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a", secret_encrypted="old")
    alerts = await _alerts(health, [hook.id], count=2)
    await outbox.claim(T0 + timedelta(seconds=5), limit=1, lease=LEASE)  # one attempt made
    await outbox.set_subscription_disabled(hook.id, True)
    before = {a.id: a for a in await outbox.list_alerts()}

    updated = await outbox.update_subscription(
        hook.id, secret_encrypted="new", on_events=["BLOCKED", "BLOCKED", "ANY"], format="slack"
    )

    assert (updated.id, updated.url, updated.created_at) == (hook.id, hook.url, hook.created_at)
    assert (updated.secret_encrypted, updated.on_events, updated.format) == (
        "new",
        ("BLOCKED", "ANY"),
        AlertFormat.SLACK,
    )
    assert updated.disabled_at is not None  # still paused: the pause is the operator's
    assert await outbox.get_subscription(hook.id) == updated
    assert {a.id: a for a in await outbox.list_alerts()} == before
    assert sorted(before) == sorted(alerts)

    await outbox.set_subscription_disabled(hook.id, False)
    due = await outbox.due(T0 + timedelta(days=1))
    assert sorted(d.item.id for d in due) == sorted(alerts)
    assert {(d.subscription.secret_encrypted, d.subscription.format) for d in due} == {
        ("new", AlertFormat.SLACK)
    }


async def test_updating_only_some_fields_leaves_the_others(
    outbox: OutboxRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(
        acme, "https://hooks.example/a", secret_encrypted="enc", on_events=["LIMITED"]
    )
    formatted = await outbox.update_subscription(hook.id, format=AlertFormat.SLACK)
    assert (formatted.secret_encrypted, formatted.on_events, formatted.format) == (
        "enc",
        ("LIMITED",),
        AlertFormat.SLACK,
    )
    unsigned = await outbox.update_subscription(hook.id, secret_encrypted=None)
    assert (unsigned.secret_encrypted, unsigned.on_events, unsigned.format) == (
        None,
        ("LIMITED",),
        AlertFormat.SLACK,
    )
    assert await outbox.update_subscription(hook.id) == unsigned
    assert await outbox.get_subscription(hook.id) == unsigned


async def test_updating_refuses_unknown_subscriptions_and_bad_values(
    outbox: OutboxRepository, acme: str
) -> None:
    hook = await outbox.add_subscription(acme, "https://hooks.example/a", secret_encrypted="enc")
    with pytest.raises(UnknownSubscription):
        await outbox.update_subscription(hook.id + 1000, secret_encrypted="x")
    with pytest.raises(ValueError, match="at least one event"):
        await outbox.update_subscription(hook.id, secret_encrypted="x", on_events=[])
    with pytest.raises(ValueError, match="AlertFormat"):
        await outbox.update_subscription(hook.id, secret_encrypted="x", format="xml")
    assert await outbox.get_subscription(hook.id) == hook  # a refused update changes nothing
