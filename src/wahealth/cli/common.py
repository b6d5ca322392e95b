"""Helpers shared by the command modules: settings, consoles, errors, output, storage.

Commands that change the storage share one convention for failures, so that
scripts can rely on it: one line on stderr and an exit code, 1 when something
named does not exist, 2 for usage or configuration errors (unreachable storage
included), 3 for a conflict with what is stored (or an address in use).
`check` differs: its exit code is a verdict, so every error there exits 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.settings import ConfigError, Settings, load_settings, master_key_of
from wahealth.storage import create_engine, session_factory, upgrade
from wahealth.storage.errors import Conflict, NotFound, StorageError

if TYPE_CHECKING:
    from wahealth.app import Components as Services

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $WAHEALTH_CONFIG, else the embedded demo set-up).",
        exists=False,
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class CommandRefused(Exception):
    """A refusal of a command, shown as one line with its exit code (usage by default)."""

    exit_code = EXIT_USAGE


class UsageError(CommandRefused):
    """The command line asks for something that cannot mean anything."""


class Missing(CommandRefused):
    """Something the command names does not exist."""

    exit_code = EXIT_NOT_FOUND


class Clash(CommandRefused):
    """Something the command would create exists already, or belongs to someone else."""

    exit_code = EXIT_CONFLICT


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, however narrow the terminal, then exit with `code`; never a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_from(config: Path | None, *, exit_code: int = EXIT_USAGE) -> Settings:
    """The settings `serve` reads: --config, else $WAHEALTH_CONFIG, then WAHEALTH_* variables."""
    path = config or (Path(p) if (p := os.environ.get("WAHEALTH_CONFIG")) else None)
    try:
        return load_settings(path)
    except ConfigError as exc:
        fail(_config_problem(exc), exit_code)


def _config_problem(exc: ConfigError, shown: int = 3) -> str:
    """A configuration error in one line: pydantic's report names each bad value, briefly."""
    cause = exc.__cause__
    if not isinstance(cause, ValidationError):
        return " ".join(str(exc).split())
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in cause.errors()[:shown]
    ]
    if cause.error_count() > shown:
        problems.append(f"and {cause.error_count() - shown} more")
    return f"{str(exc).partition(': ')[0]}: {'; '.join(problems)}"


def refuse_private_emulator(settings: Settings, command: str, instead: str) -> None:
    """Refuse to write what a private emulator says: it is not what the running server sees.

    A command that builds its own in-process emulator starts from the scenario file, not
    from the running server's emulator state, so it would record false transitions (and
    send alerts about them). `instead` says how to get the same done.
    """
    if settings.upstream.kind == "emulator":
        fail(
            f"{command} refuses to run on a private emulator "
            f'(upstream.kind = "emulator"): {instead}, or set upstream.kind = "meta"'
        )


@contextlib.asynccontextmanager
async def app_services(settings: Settings) -> AsyncIterator[Services]:
    """The services `serve` builds for `settings`, with the app's lifespan running around them.

    The one place the CLI reaches into the application: re-point it when the app changes.
    """
    from wahealth.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        services: Services = application.state.components
        yield services


def master_key(settings: Settings) -> SecretBox:
    """The master key the server uses (created if missing, as the server would)."""
    return SecretBox.load(master_key_of(settings), settings.security.master_key_file)


def storage_location(url: str) -> str:
    """The storage URL as it may be shown: the password, if any, hidden."""
    return make_url(url).render_as_string(hide_password=True)


async def _with_sessions(settings: Settings, work: Callable[[Sessions], Awaitable[T]]) -> T:
    url = settings.storage.url
    await upgrade(url)
    engine = create_engine(url)
    try:
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


def run_on_storage(settings: Settings, work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Migrate the configured storage and run `work` on it, turning every failure into one line."""
    try:
        return asyncio.run(_with_sessions(settings, work))
    except NotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except Conflict as exc:
        fail(str(exc), EXIT_CONFLICT)
    except CommandRefused as exc:
        fail(str(exc), exc.exit_code)
    except SecretBoxError as exc:
        fail(f"master key: {exc}", EXIT_USAGE)
    except (StorageError, SQLAlchemyError, CommandError, OSError) as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        fail(f"storage {storage_location(settings.storage.url)}: {first_line}", EXIT_USAGE)


def when(moment: datetime | None) -> str | None:
    """A moment for JSON output: ISO 8601, or null."""
    return None if moment is None else moment.isoformat()


def short(moment: datetime | None) -> str:
    """A moment for a table cell, to the second; empty when there is none."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def print_json(value: object) -> None:
    """JSON for scripts on stdout, non-ASCII left readable."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(
    title: str, columns: Sequence[str], rows: list[list[str]], *, whole: Sequence[str] = ()
) -> None:
    """A table for people; long cells fold instead of being cut off.

    The first column is the id users copy into other commands: it is never broken or cut,
    and neither are the columns named in `whole` (dates, say); the others fold to fit.
    """
    table = Table(title=title)
    for position, column in enumerate(columns):
        kept = position == 0 or column in whole
        widest = (
            max((len(line) for row in rows for line in row[position].splitlines()), default=0)
            if kept
            else None
        )
        table.add_column(column, overflow="fold", no_wrap=kept, min_width=widest)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def day(moment: datetime | None) -> str:
    """A moment for a narrow table cell: the date only (UTC); empty when there is none."""
    return "" if moment is None else moment.strftime("%Y-%m-%d")


def done(message: str) -> None:
    """The one line that says what a command did."""
    console.print(message, highlight=False)
