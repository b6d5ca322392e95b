"""`wahealth sync`, `wahealth refresh`, `wahealth history`: the monitor's work, on demand.

Each command reads the settings `serve` reads and builds the services exactly
as the server does (`create_app` and its lifespan: migrations, config,
subscriptions) but without the background loops and without the start-up
catalog sync, then does its one job:

- `sync` copies each WABA's phone numbers and templates from Meta;
- `refresh` fetches the health of every known node once, in Graph batches and
  within `monitor.meta_calls_per_minute` (so a big fleet takes minutes, on
  purpose), recording transitions and alerts with the cause `manual`;
- `history` shows a node's stored transitions, newest first: changes of health
  and of kept fields (quality, limits, statuses), the field named in "Changed"
  (a plain read of the storage: nothing is migrated or fetched).

`sync` and `refresh` need a real upstream (`upstream.kind = "meta"`): with the
emulator they would ask an in-process emulator of their own, which knows
nothing of the changes made to the running server's emulator, and record its
answers as if they were true (false recoveries, false alerts). They refuse.

Progress goes to stderr, results to stdout (`--json` for scripts). Exit codes:
0 done; 1 some WABA or node failed, or the space or node is unknown; 2 usage or
configuration error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from wahealth import collector
from wahealth.cli._app import app
from wahealth.cli.common import (
    EXIT_NOT_FOUND,
    ConfigOption,
    app_services,
    console,
    err_console,
    fail,
    print_json,
    refuse_private_emulator,
    settings_from,
    storage_location,
)
from wahealth.settings import Settings

if TYPE_CHECKING:
    from wahealth.app import Components as Services

T = TypeVar("T")

EXIT_FAILED = 1
_MAX_FAILURES_SHOWN = 20
_STATUS_STYLES = {
    "AVAILABLE": "green",
    "LIMITED": "yellow",
    "BLOCKED": "bold red",
    # quality ratings and scores
    "GREEN": "green",
    "YELLOW": "yellow",
    "RED": "bold red",
}

SpaceOption = Annotated[
    str | None, typer.Option("--space", help="Only this space (CustSpaceId); default: all.")
]


class CommandFailed(Exception):
    """The command cannot do its job; the message is the one line shown."""


def _offline(settings: Settings) -> Settings:
    """The settings without background loops and without the start-up catalog sync."""
    return settings.model_copy(
        update={
            "monitor": settings.monitor.model_copy(update={"enabled": False}),
            "catalog": settings.catalog.model_copy(update={"sync_on_start": False}),
        }
    )


def _run(settings: Settings, job: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        async with app_services(_offline(settings)) as services:
            collector.settle()  # a sync or refresh of a big fleet builds many objects
            return await job(services)

    try:
        return asyncio.run(main())
    except CommandFailed as exc:
        fail(str(exc), EXIT_FAILED)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 — one clear line instead of a traceback
        fail(f"{type(exc).__name__}: {exc}")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


async def _wabas(services: Services, space: str | None) -> list[str]:
    if space is None:
        return await services.tenancy.all_wabas()
    if await services.tenancy.account_of_space(space) is None:
        raise CommandFailed(f"there is no space {space!r}")
    return await services.tenancy.wabas_of_space(space)


@app.command()
def sync(config: ConfigOption = None, space: SpaceOption = None) -> None:
    """Copy each WABA's phone numbers and templates from Meta into the catalog."""
    settings = settings_from(config)
    refuse_private_emulator(
        settings,
        "sync",
        "a running server syncs its emulator's catalog by itself, at start and on a lookup miss",
    )

    async def job(services: Services) -> dict[str, tuple[int, int] | Exception]:
        wabas = await _wabas(services, space)
        with _progress() as progress:
            task = progress.add_task("syncing WABAs", total=len(wabas))
            return await services.catalog_sync.sync_all(
                wabas, progress=lambda _waba: progress.advance(task)
            )

    outcome = _run(settings, job)
    table = Table(title="Catalog sync")
    table.add_column("WABA")
    table.add_column("Phone numbers", justify="right")
    table.add_column("Templates", justify="right")
    table.add_column("Result")
    for waba_id, result in outcome.items():
        if isinstance(result, Exception):
            table.add_row(waba_id, "", "", Text(f"failed: {result}", style="bold red"))
        else:
            table.add_row(waba_id, str(result[0]), str(result[1]), Text("synced", style="green"))
    console.print(table)
    failed = sum(isinstance(result, Exception) for result in outcome.values())
    console.print(f"{len(outcome) - failed} WABA(s) synced, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def refresh(config: ConfigOption = None, space: SpaceOption = None) -> None:
    """Fetch the health of every known node once, within the Meta call budget."""
    from wahealth.upstream.errors import GraphAuthError

    settings = settings_from(config)
    refuse_private_emulator(
        settings,
        "refresh",
        "change a node through the running server's /_emulator/ admin API "
        "(the server records the change itself)",
    )

    async def job(services: Services) -> tuple[int, int, int, dict[str, str]]:
        if space is not None:
            await _wabas(services, space)  # refuses an unknown space
            nodes = await services.catalog.nodes_of_space(space)
        else:
            nodes = await services.catalog.all_nodes()
        if not nodes:
            return 0, 0, 0, {}
        refresher = services.monitor.refresher
        with _progress() as progress:
            task = progress.add_task("refreshing nodes", total=len(nodes))
            try:
                summary = await refresher.refresh_all(
                    [node.node_id for node in nodes],
                    cause="manual",
                    progress=lambda done: progress.advance(task, done),
                )
            except GraphAuthError as exc:
                raise CommandFailed(f"Meta refused the access token: {exc.message}") from exc
        return len(nodes), summary.refreshed, summary.calls, summary.failed

    total, refreshed, calls, failed = _run(settings, job)
    if total == 0:
        err_console.print("no nodes in the catalog: run `wahealth sync` first", highlight=False)
        return
    console.print(
        f"{refreshed} of {total} node(s) refreshed with {calls} Graph call(s)"
        f" (budget {settings.monitor.meta_calls_per_minute}/min); {len(failed)} failed",
        highlight=False,
    )
    if failed:
        table = Table(title="Failed nodes")
        table.add_column("Node")
        table.add_column("Error")
        for node_id, error in list(failed.items())[:_MAX_FAILURES_SHOWN]:
            table.add_row(node_id, error)
        console.print(table)
        if len(failed) > _MAX_FAILURES_SHOWN:
            console.print(f"… and {len(failed) - _MAX_FAILURES_SHOWN} more", highlight=False)
        raise typer.Exit(EXIT_FAILED)


def _status(value: str | None) -> Text:
    if value is None:
        return Text("(first seen)", style="dim")
    return Text(value, style=_STATUS_STYLES.get(value, "bold"))


def _changed_entities(changes: object) -> str:
    entities = changes.get("entities") if isinstance(changes, dict) else None
    if not isinstance(entities, list):
        return ""
    lines = []
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        before, after = entity.get("before") or {}, entity.get("after") or {}
        lines.append(
            f"{entity.get('entity_type')} {entity.get('id')}: "
            f"{before.get('can_send_message', '-')} → {after.get('can_send_message', '-')}"
        )
    return "\n".join(lines)


def _changed(row: dict[str, object], before: str | None) -> str:
    if isinstance(row.get("field"), str):
        return str(row["field"])  # a kept field: its values are the before and after
    return "" if before is None else _changed_entities(row["changes"])


@app.command()
def history(
    node: Annotated[str, typer.Argument(help="Phone number id, template id or WABA id.")],
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many transitions.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a node's transitions (health, quality, limits, statuses), newest first."""
    from sqlalchemy.exc import SQLAlchemyError

    from wahealth.storage import (
        CatalogRepository,
        HealthRepository,
        StorageError,
        create_engine,
        session_factory,
    )
    from wahealth.web.history import transition_json

    settings = settings_from(config)

    async def read() -> list[dict[str, object]] | None:
        """The transitions, or None when the node is neither recorded nor in the catalog."""
        # Only a read: no migrations, no config, no Meta; the server or `sync` set storage up.
        engine = create_engine(settings.storage.url)
        try:
            sessions = session_factory(engine)
            transitions = await HealthRepository(sessions).history(node, limit)
            if not transitions:
                known = await CatalogRepository(sessions).all_nodes(include_disabled=True)
                if all(ref.node_id != node for ref in known):
                    return None
        finally:
            await engine.dispose()
        return [transition_json(t) for t in transitions]

    try:
        rows = asyncio.run(read())
    except (StorageError, SQLAlchemyError) as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        fail(f"cannot read the history from {storage_location(settings.storage.url)}: {first_line}")
    if rows is None:
        fail(
            f"no node {node}: nothing recorded for it and it is not in the catalog "
            "(a phone number, template or WABA id of a configured space)",
            EXIT_NOT_FOUND,
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        err_console.print(f"no transitions recorded for node {node}", highlight=False)
        return
    table = Table(title=f"History of {node}", show_lines=True)
    for column in ("#", "When (UTC)", "Cause", "Before", "After", "Error codes", "Changed"):
        table.add_column(column)
    for row in rows:
        codes = row["error_codes"]
        before = row["before"] if isinstance(row["before"], str) else None
        table.add_row(
            str(row["id"]),
            str(row["occurred_at"]).replace("T", " ")[:19],
            str(row["cause"]),
            _status(before),
            _status(str(row["after"])),
            ", ".join(str(c) for c in codes) if isinstance(codes, list) else "",
            _changed(row, before),
        )
    console.print(table)
