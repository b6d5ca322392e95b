"""Engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite is tuned for a server with several writers in one or more processes:
write-ahead logging (readers never block the writer; checkpoints every 10,000
pages rather than 1,000, see `SQLITE_WAL_AUTOCHECKPOINT_PAGES`), foreign keys on, a busy
timeout instead of instant "database is locked", and SQLAlchemy (not the
sqlite3 module) emitting BEGIN, so a transaction covers its reads as well as
its writes. Transactions that will write ask for `BEGIN IMMEDIATE` (see
`WRITE_OPTIONS`): they take the write lock up front and wait for it, instead
of failing halfway when another process committed since their first read.

The database holds credentials' digests and encrypted secrets, so its file is
created 0600 before SQLite opens it (whatever the umask), and an existing one is
narrowed to 0600; SQLite gives the `-wal` and `-shm` files the database file's mode.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 5_000
# Pages the write-ahead log takes before a commit copies them into the database file
# (SQLite's default is 1,000, about 4 MB). A checkpoint rewrites each page once however
# often it changed since the last one, and a fleet's writes keep touching the same index
# pages: 10,000 pages halved the commits' cost of a 100,000-number sync. Past a
# checkpoint the log file is cut back to `SQLITE_WAL_LIMIT_BYTES`.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024

# Session.connection(execution_options=WRITE_OPTIONS) before the first statement
# makes a SQLite transaction start with BEGIN IMMEDIATE; other backends ignore it.
WRITE_OPTIONS: dict[str, Any] = {"wahealth_write": True}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite:///...` or `postgresql+asyncpg://...`.

    `engine_options` go to SQLAlchemy's `create_async_engine` (e.g. `echo`,
    `connect_args`, `pool_size`). JSON columns are written with orjson: a fleet refresh
    stores a report document per node, and the standard library is several times slower.
    """
    engine_options.setdefault("json_serializer", _json_dumps)
    engine_options.setdefault("json_deserializer", orjson.loads)
    if not is_sqlite(url):
        engine_options.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **engine_options)
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_database_file(Path(database))
    connect_args = dict(engine_options.pop("connect_args", None) or {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_async_engine(url, connect_args=connect_args, **engine_options)
    _insert_many_rows_per_statement(engine)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _insert_many_rows_per_statement(engine: AsyncEngine) -> None:
    """Bulk INSERTs as a few multi-row statements instead of one step per row.

    SQLAlchemy's "insertmanyvalues" (what it does for PostgreSQL drivers and for
    RETURNING) turns an executemany INSERT into `INSERT ... VALUES (...), (...)` pages
    (not an upsert: SQLAlchemy keeps ON CONFLICT row by row).
    On SQLite this matters beyond SQLite's own cost: the sqlite3 module takes the GIL
    back after every row of an executemany, and aiosqlite runs it in a thread of its
    own, so while the event loop's thread is busy each row of a bulk write waited for
    the GIL in turn (500 rows took seconds instead of milliseconds).
    """
    dialect = engine.sync_engine.dialect
    dialect.use_insertmanyvalues_wo_returning = True
    if sqlite3.sqlite_version_info < (3, 32, 0):  # older SQLite binds at most 999 values
        dialect.insertmanyvalues_max_parameters = 999


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def private_database_file(path: Path) -> None:
    """Make sure the SQLite file (and any -wal/-shm beside it) is readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                file.chmod(0o600)


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take BEGIN away from the sqlite3 module: it would skip it before SELECTs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    if connection.get_execution_options().get("wahealth_write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (repositories return them detached)."""
    return async_sessionmaker(engine, expire_on_commit=False)
