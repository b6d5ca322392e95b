"""The SQLite database and its -wal/-shm files are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wahealth.storage import create_engine, upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which gave 0644
    try:
        db = tmp_path / "data" / "wahealth.db"
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        try:
            await upgrade(engine)
            async with engine.connect() as connection:  # holds the WAL open
                await connection.exec_driver_sql("SELECT 1")
                files = [db, db.with_name("wahealth.db-wal"), db.with_name("wahealth.db-shm")]
                assert all(f.exists() for f in files)
                assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        finally:
            await engine.dispose()
    finally:
        os.umask(old_umask)


async def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "wahealth.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    await engine.dispose()
    db.chmod(0o644)

    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await engine.dispose()
    assert _mode(db) == 0o600
