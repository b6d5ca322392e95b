"""Bulk writes: a fleet's rows go in as a few multi-row statements and come back intact.

A chunk of reports bigger than one statement's page (1,000 rows) must store every row, give
each report the id of its own transition, and keep every time exactly; on SQLite the
transitions go in as multi-row INSERTs (a statement per page, not a step per row), and times
repeated across rows (a page's fetch time) are converted once but stored as given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wahealth.domain.records import TransitionCause
from wahealth.storage.health import HealthRepository, ReportRecord
from wahealth.storage.models import NodeHealthRow, TransitionRow

from ._reports import codes, overall, report

Factory = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NODES = 2_500  # three pages of rows


def _records() -> list[ReportRecord]:
    records = []
    for i in range(NODES):
        # Ten fetch times, each shared by a run of reports, as a page's reports share one.
        fetched = T0 + timedelta(seconds=i // 250)
        status = "BLOCKED" if i % 7 == 0 else "AVAILABLE"
        document = (
            report(waba="BLOCKED", waba_errors=(141006,)) if status == "BLOCKED" else report()
        )
        payload = {**document, "id": f"n{i:05d}"}
        records.append(
            ReportRecord(
                f"n{i:05d}",
                "PHONE_NUMBER",
                "acme-space",
                overall(payload),
                payload,
                codes(payload),
                fetched,
                TransitionCause.POLL,
                next_due_at=fetched + timedelta(minutes=1),
                # The same instant in another zone is the same time.
                checked_at=(T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=5))),
            )
        )
    return records


@contextlib.contextmanager
def _rows_per_insert(engine: AsyncEngine, table: str) -> Iterator[list[int]]:
    """The rows each INSERT into `table` carries (SQLite's `?` markers), while it is open."""
    seen: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith(f"INSERT INTO {table} "):
            seen.append(statement.count("(?"))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_a_chunk_of_thousands_stores_every_row_and_its_own_transition_id(
    engine: AsyncEngine, sessions: Factory
) -> None:
    records = _records()
    with _rows_per_insert(engine, "transitions") as seen:
        ids = await HealthRepository(sessions).record_many(records, chunk=NODES)

    async with sessions() as session:
        health = {
            row.node_id: row
            for row in await session.scalars(select(NodeHealthRow).order_by(NodeHealthRow.node_id))
        }
        transitions = {
            row.id: row
            for row in await session.scalars(select(TransitionRow).order_by(TransitionRow.id))
        }
    assert len(health) == NODES
    assert len(transitions) == NODES
    assert all(i is not None for i in ids)
    for record, transition_id in zip(records, ids, strict=True):
        assert transition_id is not None
        stored, transition = health[record.node_id], transitions[transition_id]
        assert transition.node_id == record.node_id
        assert (transition.before, transition.after) == (None, record.overall)
        assert transition.occurred_at == record.fetched_at
        assert stored.payload == record.payload
        assert stored.can_send_message == record.overall
        assert stored.fetched_at == record.fetched_at
        assert stored.next_due_at == record.fetched_at + timedelta(minutes=1)
        assert stored.checked_at == T0 + timedelta(hours=1)
    if engine.dialect.name == "sqlite":
        # A statement per page of rows, never an executemany of one step per row.
        assert seen, "no INSERT into transitions was seen"
        assert len(seen) <= 3
        assert sum(seen) == NODES


async def test_a_naive_time_is_refused_even_beside_the_same_instant_already_written(
    sessions: Factory,
) -> None:
    health = HealthRepository(sessions)
    [first, second] = _records()[:2]
    await health.record_many([first])
    naive = ReportRecord(
        second.node_id,
        second.kind,
        second.space_id,
        second.overall,
        second.payload,
        second.error_codes,
        first.fetched_at.replace(tzinfo=None),
        second.cause,
    )
    with pytest.raises(Exception, match="naive datetime"):
        await health.record_many([naive])
