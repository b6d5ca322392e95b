"""Two SQL spellings the fleet page needs written differently for each planner.

SQLite plans by rules: an index on a column it can use is used, even where walking the
order's index and stopping at the page's end would be far cheaper; `unindexed` hides
such a column from it (`col || ''`). PostgreSQL plans by costs from its statistics, and
hiding a column only spoils its estimates (it then sorts every node), so there the
column is left as it is.

`in_subquery` is a column among the ids a subquery selects. SQLite reads it as
`IN (SELECT …)`; PostgreSQL as `= ANY(ARRAY(SELECT …))`, a value computed once, which an
index can look up inside an `OR` (a bitmap of each arm's index), where `IN (SELECT …)`
would be a filter tested on every row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, Select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler


class Unindexed(ColumnElement[Any]):
    """A column no index applies to on SQLite; the column itself elsewhere."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


class InSubquery(ColumnElement[bool]):
    """`column` is among the values `query` selects (see the module's docstring)."""

    inherit_cache = True
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], query: Select[Any]) -> None:
        self.column = column
        self.query = query


def unindexed(column: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """`column`, hidden from SQLite's index choice."""
    return Unindexed(column.expression if isinstance(column, InstrumentedAttribute) else column)


def in_subquery(column: ColumnElement[Any], query: Select[Any]) -> ColumnElement[bool]:
    """`column IN (query)`, written so that PostgreSQL can look it up in an index."""
    return InSubquery(column, query)


@compiles(Unindexed)
def _unindexed(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.column, **kw)} || '')"


@compiles(InSubquery)
def _in_subquery(element: InSubquery, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(element.query), **kw))


@compiles(InSubquery, "postgresql")
def _in_subquery_postgresql(element: InSubquery, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    query = compiler.process(element.query.scalar_subquery(), **kw)
    return f"{column} = ANY(ARRAY{query})"
