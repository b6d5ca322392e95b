"""Alembic migrations, run from the installed package (no alembic.ini needed).

`upgrade` runs every pending migration in one transaction. On PostgreSQL it
first takes an advisory lock, so replicas starting together migrate one after
the other instead of racing to create the same tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from wahealth.storage.engine import WRITE_OPTIONS, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# An arbitrary constant naming "wahealth schema migrations" among advisory locks.
_PG_MIGRATION_LOCK = 0x77614865616C7468


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config for our migrations; with a URL, usable for `command.revision` too."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest migration this version of the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(target: str | AsyncEngine, revision: str = "head") -> None:
    """Bring the database at `target` (a URL or an engine) up to `revision`."""
    await _run(target, lambda config: command.upgrade(config, revision))


async def downgrade(target: str | AsyncEngine, revision: str = "base") -> None:
    """Undo migrations down to `revision` (all of them by default)."""
    await _run(target, lambda config: command.downgrade(config, revision))


async def current_revision(target: str | AsyncEngine) -> str | None:
    """The revision the database is at, None for an unmigrated database."""
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        if isinstance(target, str):
            await engine.dispose()


async def _run(target: str | AsyncEngine, step: Callable[[Config], None]) -> None:
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(**WRITE_OPTIONS)
            async with connection.begin():
                await connection.run_sync(_run_sync, step)
    finally:
        if isinstance(target, str):
            await engine.dispose()


def _run_sync(connection: Connection, step: Callable[[Config], None]) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    config = alembic_config()
    config.attributes["connection"] = connection
    step(config)
