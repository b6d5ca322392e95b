"""Migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wahealth.storage import create_engine, downgrade, session_factory, upgrade
from wahealth.storage.errors import StorageError
from wahealth.storage.health import HealthRepository
from wahealth.storage.migrate import current_revision, head_revision
from wahealth.storage.models import (
    OPTIONAL_INDEX_PREFIX,
    AccountRow,
    Base,
    WabaRow,
    in_models,
)
from wahealth.storage.tenancy import TenancyRepository

TABLES = {
    "accounts",
    "space_upstreams",
    "spaces",
    "wabas",
    "phone_numbers",
    "templates",
    "access_keys",
    "d360_keys",
    "graph_tokens",
    "meta_connections",
    "node_health",
    "transitions",
    "alert_subscriptions",
    "outbox",
    "silences",
    "acknowledgements",
    "dashboard_sign_outs",
    "admin_tokens",
    "audit_log",
    "master_key_check",
}


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": in_models}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_builds_the_models_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        # The comparison does see differences: on an empty database every table is missing.
        missing = await connection.run_sync(_diffs)
    assert {diff[1].name for diff in missing if diff[0] == "add_table"} == TABLES

    await upgrade(engine)

    async with engine.connect() as connection:
        assert await connection.run_sync(_diffs) == []
        assert await connection.run_sync(_tables) == TABLES | {"alembic_version"}
    assert await current_revision(engine) == head_revision() == "connection_budgets"


async def test_upgrade_twice_is_a_no_op_and_downgrade_removes_everything(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine)
    await TenancyRepository(session_factory(engine)).upsert_account("kept")
    await upgrade(engine)
    assert await TenancyRepository(session_factory(engine)).get_account("kept") is not None

    await downgrade(engine)

    async with engine.connect() as connection:
        assert await connection.run_sync(_tables) == {"alembic_version"}
    assert await current_revision(engine) is None


async def test_upgrade_by_url_on_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'by-url.db'}"
    await upgrade(url)
    assert await current_revision(url) == "connection_budgets"
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diffs) == []
    finally:
        await engine.dispose()


async def test_sqlite_connections_use_wal_foreign_keys_a_busy_timeout_and_long_checkpoints(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}")
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in (
                    "journal_mode",
                    "foreign_keys",
                    "busy_timeout",
                    "wal_autocheckpoint",
                    "journal_size_limit",
                )
            }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "wal_autocheckpoint": 10_000,
            "journal_size_limit": 64 * 1024 * 1024,
        }
    finally:
        await engine.dispose()


async def test_foreign_keys_are_enforced(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the driver's own IntegrityError
        async with sessions.begin() as session:
            session.add(WabaRow(id="orphan", space_id="no-such-space"))
    assert "foreign key" in str(caught.value).lower()


async def test_times_come_back_aware_utc_and_naive_times_are_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    plus8 = timezone(timedelta(hours=8))
    async with sessions.begin() as session:
        session.add(
            AccountRow(name="tz", qps=5, created_at=datetime(2026, 1, 1, 8, 0, tzinfo=plus8))
        )
    async with sessions() as session:
        stored = await session.scalar(select(AccountRow.created_at).where(AccountRow.name == "tz"))
    assert stored == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)

    with pytest.raises(StorageError, match="naive datetime"):
        await HealthRepository(sessions).set_next_due("node", datetime(2026, 1, 1))


async def test_postgresql_gets_the_search_indexes_where_pg_trgm_is_available(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's")
    async with engine.connect() as connection:
        available = await connection.scalar(
            text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")
        )
    if not available:
        pytest.skip("pg_trgm is not installed on this server")

    await upgrade(engine)

    async with engine.connect() as connection:
        indexes = {
            index["name"]
            for table in ("phone_numbers", "templates")
            for index in await connection.run_sync(
                lambda sync, table=table: inspect(sync).get_indexes(table)
            )
        }
        # The search's plan reads them (a bitmap of each arm's index), not the whole table.
        await connection.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in await connection.exec_driver_sql(
                "EXPLAIN SELECT id FROM phone_numbers WHERE verified_name ILIKE '%shop 42%'"
            )
        )
    assert {name for name in indexes if name.startswith(OPTIONAL_INDEX_PREFIX)} == {
        "ix_search_phone_numbers_verified_name",
        "ix_search_phone_numbers_digits",
        "ix_search_phone_numbers_id",
        "ix_search_templates_name",
        "ix_search_templates_id",
    }
    assert "ix_search_phone_numbers_verified_name" in plan

    await downgrade(engine, "dashboard_sign_outs")

    async with engine.connect() as connection:
        left = await connection.run_sync(lambda sync: inspect(sync).get_indexes("phone_numbers"))
    assert not [i for i in left if i["name"].startswith(OPTIONAL_INDEX_PREFIX)]
