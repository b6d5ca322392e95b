"""Batched deletes of rows older than a cut-off, for retention.

Each batch is its own short transaction, so pruning a large backlog never holds
a long write lock (on SQLite, the only one) or a huge transaction open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.orm import InstrumentedAttribute

from wahealth.storage._session import Factory, rowcount, writing
from wahealth.storage.models import Base

DEFAULT_BATCH = 1000


async def prune_older_than(
    sessions: Factory,
    table: Table | str,
    column: str,
    cutoff: datetime,
    *,
    where: ColumnElement[bool] | None = None,
    batch: int = DEFAULT_BATCH,
) -> int:
    """Delete rows of `table` whose `column` is before `cutoff`, `batch` at a time; the count.

    `table` may be a table name known to our metadata (e.g. a table added later, such
    as webhook digests); the table needs a primary key.
    """
    target = Base.metadata.tables[table] if isinstance(table, str) else table
    key = next(iter(target.primary_key.columns))
    condition: ColumnElement[bool] = target.c[column] < cutoff
    if where is not None:
        condition = condition & where
    deleted = 0
    while True:
        chosen = select(key).where(condition).limit(batch).scalar_subquery()
        async with writing(sessions) as session:
            result = await session.execute(delete(target).where(key.in_(chosen)))
        count = rowcount(result)
        deleted += count
        if count < batch:
            return deleted


def table_of(attribute: InstrumentedAttribute[Any]) -> Table:
    """The Table a mapped column belongs to."""
    table = attribute.property.columns[0].table
    assert isinstance(table, Table)
    return table
