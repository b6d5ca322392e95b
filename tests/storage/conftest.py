"""Every storage test runs on SQLite and, when WAHEALTH_TEST_POSTGRES_URL is set, on PostgreSQL.

Each PostgreSQL test gets a schema of its own (dropped afterwards), so tests
never see each other's tables and never touch the database's public schema.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wahealth.storage import (
    CatalogRepository,
    CredentialRepository,
    HealthRepository,
    OutboxRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)

POSTGRES_ENV = "WAHEALTH_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database (not migrated)."""
    if request.param == "sqlite":
        sqlite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}")
        yield sqlite
        await sqlite.dispose()
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL storage tests skipped")
    schema = f"wahealth_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    postgres = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield postgres
    finally:
        await postgres.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once, copied by each test that needs one (faster)."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def sessions(engine: AsyncEngine, migrated_sqlite: Path) -> async_sessionmaker[AsyncSession]:
    """Sessions on a database migrated to head."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        shutil.copyfile(migrated_sqlite, engine.url.database)
    else:
        await upgrade(engine)
    return session_factory(engine)


@pytest.fixture
def tenancy(sessions: async_sessionmaker[AsyncSession]) -> TenancyRepository:
    return TenancyRepository(sessions)


@pytest.fixture
def credentials(sessions: async_sessionmaker[AsyncSession]) -> CredentialRepository:
    return CredentialRepository(sessions)


@pytest.fixture
def catalog(sessions: async_sessionmaker[AsyncSession]) -> CatalogRepository:
    return CatalogRepository(sessions)


@pytest.fixture
def health(sessions: async_sessionmaker[AsyncSession]) -> HealthRepository:
    return HealthRepository(sessions)


@pytest.fixture
def outbox(sessions: async_sessionmaker[AsyncSession]) -> OutboxRepository:
    return OutboxRepository(sessions)


@pytest.fixture
async def acme(tenancy: TenancyRepository) -> str:
    """Account `acme` owning space `acme-space` with WABA `waba-1`; returns the space id."""
    await tenancy.upsert_account("acme", qps=7)
    await tenancy.upsert_space("acme-space", "acme")
    await tenancy.upsert_waba("waba-1", "acme-space", business_id="biz-1", app_id="app-1")
    return "acme-space"
