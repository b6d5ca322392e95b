"""The schedule every replica shares: due nodes are claimed, each by one replica at a time.

The claim SQL runs on both backends (on SQLite without row locks: one writer at a time);
the tests of concurrent claimers and of locked rows are PostgreSQL's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.domain.model import NodeKind
from wahealth.domain.records import Claim, DueNode
from wahealth.storage.catalog import CatalogRepository, PhoneNumberRecord
from wahealth.storage.health import HealthRepository
from wahealth.storage.metrics_view import MetricsView
from wahealth.storage.models import NodeHealthRow
from wahealth.storage.schedule import ClaimedSchedule
from wahealth.storage.tenancy import TenancyRepository

from ._reports import PHONE, codes, overall, report

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
INTERVAL = timedelta(seconds=20)


def _schedule(sessions: async_sessionmaker[AsyncSession], replica: str) -> ClaimedSchedule:
    # The claims' clock is the test's: a lease runs from the `now` each claim is given.
    return ClaimedSchedule(sessions, by=replica, lease=LEASE, clock=lambda: T0 - timedelta(days=1))


def _postgresql_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite has one writer")


async def _phones(catalog: CatalogRepository, count: int) -> list[str]:
    """`count` phone numbers on WABA `waba-1` (`p000`, `p001`, ...), besides the WABA."""
    ids = [f"p{n:03d}" for n in range(count)]
    await catalog.replace_phone_numbers("waba-1", [PhoneNumberRecord(i, i) for i in ids])
    return ids


async def _claims(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Claim | None]:
    """The claim stored on each node_health row."""
    query = select(NodeHealthRow.node_id, NodeHealthRow.claimed_by, NodeHealthRow.claimed_until)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return {
        node_id: None if by is None or until is None else Claim(by, until)
        for node_id, by, until in rows
    }


async def _fetched(health: HealthRepository, node_id: str, at: datetime) -> None:
    """Record a report of `node_id` fetched at `at`, as the refresh's recorder does."""
    payload = report()
    await health.record(
        node_id,
        "PHONE_NUMBER",
        "acme-space",
        overall(payload),
        payload,
        codes(payload),
        at,
        "poll",
        next_due_at=at + INTERVAL,
    )


async def test_two_claimers_take_disjoint_nodes_oldest_first(
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogRepository,
    health: HealthRepository,
    acme: str,
) -> None:
    phones = await _phones(catalog, 3)
    await _fetched(health, phones[0], T0 - timedelta(minutes=5))  # due since T0 - 4:40
    a, b = _schedule(sessions, "replica-a"), _schedule(sessions, "replica-b")

    first = await a.due_nodes(T0, limit=2)
    # Never scheduled first (by id), then the oldest due.
    until = T0 + LEASE
    assert first == [
        DueNode(phones[1], NodeKind.PHONE_NUMBER, acme, None, Claim("replica-a", until)),
        DueNode(phones[2], NodeKind.PHONE_NUMBER, acme, None, Claim("replica-a", until)),
    ]
    second = await b.due_nodes(T0, limit=10)
    assert [n.node_id for n in second] == ["waba-1", phones[0]]
    assert {n.claim for n in second} == {Claim("replica-b", until)}
    assert second[1].next_due_at == T0 - timedelta(minutes=5) + INTERVAL
    assert await a.due_nodes(T0, limit=10) == []
    assert await b.due_nodes(T0 + LEASE - timedelta(seconds=1), limit=10) == []

    stored = await _claims(sessions)
    assert stored == {
        phones[1]: Claim("replica-a", until),
        phones[2]: Claim("replica-a", until),
        "waba-1": Claim("replica-b", until),
        phones[0]: Claim("replica-b", until),
    }
    # What /metrics shows as wahealth_schedule_claims_held: live claims only.
    view = MetricsView(sessions)
    assert await view.schedule_claims_held(T0) == 4
    assert await view.schedule_claims_held(until) == 0
    # The rows written for never-scheduled nodes are placeholders without a report.
    placeholder = await health.get(phones[1])
    assert placeholder is not None
    assert (placeholder.node_kind, placeholder.space_id, placeholder.payload) == (
        "PHONE_NUMBER",
        acme,
        None,
    )


async def test_a_released_node_is_due_again_one_interval_after_its_fetch(
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogRepository,
    health: HealthRepository,
    acme: str,
) -> None:
    [phone] = await _phones(catalog, 1)
    a, b = _schedule(sessions, "replica-a"), _schedule(sessions, "replica-b")
    claimed = [n for n in await a.due_nodes(T0, limit=10) if n.node_id == phone]
    await _fetched(health, phone, T0 + timedelta(seconds=1))
    assert await a.release(claimed) == 1
    assert await a.release(claimed) == 0  # let go already

    assert (await _claims(sessions))[phone] is None
    # The fetch is shared through storage: not due on the other replica within the interval.
    assert phone not in [n.node_id for n in await b.due_nodes(T0 + INTERVAL, limit=10)]
    due_again = T0 + timedelta(seconds=1) + INTERVAL
    [again] = [n for n in await b.due_nodes(due_again, limit=10) if n.node_id == phone]
    assert again.claim == Claim("replica-b", due_again + LEASE)


async def test_an_expired_claim_is_taken_over_and_only_the_current_claim_records(
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogRepository,
    health: HealthRepository,
    acme: str,
) -> None:
    [phone] = await _phones(catalog, 1)
    a, b = _schedule(sessions, "replica-a"), _schedule(sessions, "replica-b")
    [dead] = [n for n in await a.due_nodes(T0, limit=10) if n.node_id == phone]

    # Replica A died holding it: nobody takes it before the lease ends, B takes it then.
    assert await b.due_nodes(T0 + LEASE - timedelta(microseconds=1), limit=10) == []
    taken = await b.due_nodes(T0 + LEASE, limit=10)
    [mine] = [n for n in taken if n.node_id == phone]
    assert mine.claim == Claim("replica-b", T0 + 2 * LEASE)

    # A comes back late: its outcome is refused and B's claim stands.
    late = await a.set_next_due(phone, T0 + timedelta(hours=1), held=dead.claim)
    assert late is False
    assert await a.release([dead]) == 0
    assert (await _claims(sessions))[phone] == mine.claim
    stored = await health.get(phone)
    assert stored is not None
    assert stored.next_due_at is None

    # B's failure reschedules the node and lets it go.
    retry_at = T0 + LEASE + timedelta(minutes=2)
    assert await b.set_next_due(phone, retry_at, checked_at=T0 + LEASE, held=mine.claim)
    stored = await health.get(phone)
    assert stored is not None
    assert (stored.next_due_at, stored.checked_at) == (retry_at, T0 + LEASE)
    assert (await _claims(sessions))[phone] is None
    assert phone not in [n.node_id for n in await a.due_nodes(retry_at - LEASE, limit=10)]
    assert phone in [n.node_id for n in await a.due_nodes(retry_at, limit=10)]


async def test_pages_claim_up_to_the_limit_and_disabled_accounts_are_skipped(
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogRepository,
    tenancy: TenancyRepository,
    acme: str,
) -> None:
    phones = await _phones(catalog, 5)
    await tenancy.upsert_account("idle")
    await tenancy.upsert_space("idle-space", "idle")
    await tenancy.upsert_waba("waba-idle", "idle-space")
    await tenancy.disable_account("idle")
    a = _schedule(sessions, "replica-a")

    pages = [page async for page in a.due_pages(T0, limit=5, page=2)]
    assert [[n.node_id for n in page] for page in pages] == [phones[:2], phones[2:4], phones[4:5]]
    rest = [page async for page in a.due_pages(T0, limit=5, page=2)]
    assert [[n.node_id for n in page] for page in rest] == [["waba-1"]]
    assert [page async for page in a.due_pages(T0, limit=5, page=2)] == []
    assert "waba-idle" not in await _claims(sessions)
    assert await a.count_nodes() == 6


async def test_concurrent_claimers_never_get_the_same_node(
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogRepository,
    health: HealthRepository,
    acme: str,
) -> None:
    _postgresql_only(sessions)
    phones = await _phones(catalog, 120)
    # Half were fetched before (rows exist), half never were (rows written by the claims).
    for phone in phones[::2]:
        await _fetched(health, phone, T0 - timedelta(minutes=1))
    claimers = [_schedule(sessions, f"replica-{n}") for n in range(4)]

    rounds = await asyncio.gather(
        *(claimer.due_nodes(T0, limit=25) for claimer in claimers for _ in range(2))
    )
    claimed = [n.node_id for batch in rounds for n in batch]
    assert len(claimed) == len(set(claimed)) == 121  # 120 numbers and the WABA, each once
    stored = await _claims(sessions)
    for batch in rounds:
        for node in batch:
            assert stored[node.node_id] == node.claim


async def test_claims_skip_rows_another_transaction_has_locked(
    sessions: async_sessionmaker[AsyncSession],
    catalog: CatalogRepository,
    health: HealthRepository,
    acme: str,
) -> None:
    _postgresql_only(sessions)
    [locked, free] = await _phones(catalog, 2)
    for phone in (locked, free):
        await _fetched(health, phone, T0 - timedelta(minutes=1))
    async with sessions() as session, session.begin():
        # Another replica's claim, still in its transaction.
        await session.execute(
            select(NodeHealthRow.node_id).where(NodeHealthRow.node_id == locked).with_for_update()
        )
        async with asyncio.timeout(30):  # a claim that waited on the lock would hang here
            claimed = await _schedule(sessions, "replica-b").due_nodes(T0, limit=10)
        assert [n.node_id for n in claimed] == ["waba-1", free]
    [later] = await _schedule(sessions, "replica-b").due_nodes(T0, limit=10)
    assert later.node_id == locked
    assert PHONE not in (locked, free)
