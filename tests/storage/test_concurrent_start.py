"""Replicas starting together on a fresh PostgreSQL: migrate and apply the config without errors."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from wahealth.app import prepare_storage
from wahealth.settings import Settings
from wahealth.storage import create_engine
from wahealth.testing import demo_settings

POSTGRES_ENV = "WAHEALTH_TEST_POSTGRES_URL"
TABLES = ("accounts", "spaces", "wabas", "access_keys", "d360_keys", "graph_tokens")


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a PostgreSQL database created for this test (dropped afterwards)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: the concurrent start needs PostgreSQL")
    name = f"wahealth_start_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


def _settings(tmp_path: Path, url: str) -> Settings:
    return demo_settings(tmp_path, storage={"url": url})


async def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    counts: dict[str, int] = {}
    try:
        async with engine.connect() as connection:
            for table in TABLES:
                query = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - our table names
                counts[table] = (await connection.execute(query)).scalar_one()
    finally:
        await engine.dispose()
    return counts


EXPECTED = {
    "accounts": 2,
    "spaces": 2,
    "wabas": 2,
    "access_keys": 2,
    "d360_keys": 1,
    "graph_tokens": 2,
}


async def test_replicas_preparing_storage_at_once_all_succeed(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAHEALTH_MASTER_KEY", Fernet.generate_key().decode())
    settings = _settings(tmp_path, fresh_database)
    results = await asyncio.gather(
        *(prepare_storage(settings) for _ in range(4)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await _counts(fresh_database) == EXPECTED


_REPLICA = """
import asyncio, sys
from pathlib import Path
from wahealth.app import prepare_storage
from wahealth.testing import demo_settings
settings = demo_settings(Path(sys.argv[1]), storage={"url": sys.argv[2]})
asyncio.run(prepare_storage(settings))
"""


async def test_two_processes_preparing_storage_at_once_both_exit_0(
    fresh_database: str, tmp_path: Path
) -> None:
    env = {**os.environ, "WAHEALTH_MASTER_KEY": Fernet.generate_key().decode()}
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _REPLICA,
            str(tmp_path),
            fresh_database,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outcomes = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in replicas)), 60)
    assert [p.returncode for p in replicas] == [0, 0], [err.decode()[-2000:] for _, err in outcomes]
    assert await _counts(fresh_database) == EXPECTED
