"""Transactions for the repositories, with the database's errors translated to ours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.storage.engine import WRITE_OPTIONS
from wahealth.storage.errors import Conflict, StorageError, StorageUnavailable

Factory = async_sessionmaker[AsyncSession]


@asynccontextmanager
async def reading(factory: Factory) -> AsyncIterator[AsyncSession]:
    """A read-only transaction (one consistent snapshot)."""
    async with _translated(), factory() as session, session.begin():
        yield session


@asynccontextmanager
async def writing(factory: Factory) -> AsyncIterator[AsyncSession]:
    """A write transaction, committed on exit and rolled back on any error.

    On SQLite it holds the write lock from its first statement, so what it read
    is still true when it writes.
    """
    async with _translated(), factory() as session, session.begin():
        await session.connection(execution_options=WRITE_OPTIONS)
        yield session


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except exc.IntegrityError as error:
        raise Conflict(_reason(error)) from error
    except (exc.OperationalError, exc.InterfaceError, OSError) as error:
        raise StorageUnavailable(_reason(error)) from error
    except exc.SQLAlchemyError as error:
        raise StorageError(_reason(error)) from error


def _reason(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    return f"{type(orig or error).__name__}: {orig or error}".splitlines()[0]


def insert_for(session: AsyncSession) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def rowcount(result: Result[Any]) -> int:
    """Rows an INSERT/UPDATE/DELETE touched (0 for ON CONFLICT DO NOTHING that did nothing)."""
    return cast(CursorResult[Any], result).rowcount
