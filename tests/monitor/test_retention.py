"""Retention keeps the history and outbox bounded under a steady stream of transitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.monitor.retention import Retention, cutoffs
from wahealth.settings import RetentionSettings
from wahealth.storage import (
    HealthRepository,
    OutboxRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.storage.models import (
    AccountRow,
    AlertSubscriptionRow,
    OutboxRow,
    SpaceRow,
    TransitionRow,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_cutoffs_follow_the_configured_ages() -> None:
    at = cutoffs(NOW, RetentionSettings(history_days=90, delivered_alerts_days=7))
    assert at.history == NOW - timedelta(days=90)
    assert at.delivered_alerts == NOW - timedelta(days=7)
    assert RetentionSettings().history_days >= 90


async def _add_round(
    sessions: async_sessionmaker[AsyncSession], subscription: int, at: datetime, state: str
) -> None:
    async with sessions() as session, session.begin():
        for n in range(20):
            row = TransitionRow(
                node_id=f"node-{n}",
                node_kind="PHONE_NUMBER",
                space_id="s",
                before="AVAILABLE",
                after="LIMITED",
                changes={},
                error_codes=[],
                cause="poll",
                occurred_at=at,
            )
            session.add(row)
            await session.flush()
            session.add(
                OutboxRow(
                    id=uuid.uuid4().hex,
                    subscription_id=subscription,
                    transition_id=row.id,
                    event="LIMITED",
                    payload={},
                    state=state,
                    next_attempt_at=at,
                    created_at=at,
                    delivered_at=at if state == "delivered" else None,
                )
            )


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_steady_stream_of_old_transitions_stays_bounded(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(AccountRow(name="a", qps=5, created_at=NOW))
        await session.flush()
        account = await session.scalar(select(AccountRow.id))
        session.add(SpaceRow(id="s", account_id=account, created_at=NOW))
        await session.flush()
        sub = AlertSubscriptionRow(
            space_id="s", url="http://127.0.0.1/x", on_events=["ANY"], format="json", created_at=NOW
        )
        session.add(sub)
        await session.flush()
        subscription = sub.id
    clock = {"now": NOW}
    retention = Retention(
        RetentionSettings(history_days=90, batch_size=7),
        HealthRepository(sessions),
        OutboxRepository(sessions),
        clock=lambda: clock["now"],
    )
    sizes = []
    try:
        for day in range(30):
            clock["now"] = NOW + timedelta(days=day)
            # Each day: 20 transitions from 200 days ago (delivered), 20 from today (pending).
            await _add_round(
                sessions, subscription, clock["now"] - timedelta(days=200), "delivered"
            )
            await _add_round(sessions, subscription, clock["now"], "pending")
            await retention.step()
            sizes.append(await _count(sessions, TransitionRow))
        # Only today's (and earlier recent) pending transitions remain: 20 per day, none old.
        assert sizes == [20 * (day + 1) for day in range(30)]
        async with sessions() as session:
            oldest = await session.scalar(select(func.min(TransitionRow.occurred_at)))
        assert oldest is not None
        assert await _count(sessions, OutboxRow) == 20 * 30
        # A pending alert keeps its transition even past the cut-off.
        clock["now"] = NOW + timedelta(days=400)
        await retention.step()
        assert await _count(sessions, TransitionRow) == 20 * 30
    finally:
        await engine.dispose()
