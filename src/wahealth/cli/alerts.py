"""`wahealth alerts`: alert webhooks per space, and the outbox of alerts to deliver.

Commands work on the configured storage directly (migrated first); no server
needs to run, and a running server picks changes up at its next delivery round.
Subscription secrets are stored encrypted with the master key and never shown.

Exit codes: 0 done; 1 not found (space, subscription, alert); 2 usage or
configuration error (bad option, refused target, unreachable storage);
3 conflict (URL already subscribed, alert not dead).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.table import Table

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.cli._app import app
from wahealth.cli.common import ConfigOption, console, err_console, settings_from
from wahealth.monitor.targets import TargetError, check_target
from wahealth.settings import DEFAULT_ALERT_EVENTS, Settings
from wahealth.storage import OutboxRepository, create_engine, session_factory, upgrade
from wahealth.storage.errors import Conflict, NotFound, StorageError
from wahealth.storage.outbox import AlertFormat, AlertState, OutboxItem, Subscription

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EVENTS = ("BLOCKED", "LIMITED", "RECOVERED", "ANY")

T = TypeVar("T")

alerts_app = typer.Typer(no_args_is_help=True, help="Alert webhooks and their delivery outbox.")
app.add_typer(alerts_app, name="alerts")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class _Refused(Exception):
    """The command cannot do what was asked; shown as one line (usage exit code)."""


def _fail(message: str, code: int) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


async def _with_outbox(settings: Settings, work: Callable[[OutboxRepository], Awaitable[T]]) -> T:
    await upgrade(settings.storage.url)
    engine = create_engine(settings.storage.url)
    try:
        return await work(OutboxRepository(session_factory(engine)))
    finally:
        await engine.dispose()


def _run(settings: Settings, work: Callable[[OutboxRepository], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_with_outbox(settings, work))
    except NotFound as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    except Conflict as exc:
        _fail(str(exc), EXIT_CONFLICT)
    except _Refused as exc:
        _fail(str(exc), EXIT_USAGE)
    except SecretBoxError as exc:
        _fail(f"master key: {exc}", EXIT_USAGE)
    except (StorageError, OSError) as exc:
        _fail(f"storage: {(str(exc).splitlines() or [type(exc).__name__])[0]}", EXIT_USAGE)


def _events(value: str) -> list[str]:
    events = [part.strip().upper() for part in value.split(",") if part.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        _fail(f"--on takes a comma-separated list of {', '.join(EVENTS)}", EXIT_USAGE)
    return list(dict.fromkeys(events))


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _short(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _subscription_json(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "space": sub.space_id,
        "url": sub.url,
        "on": list(sub.on_events),
        "format": sub.format.value,
        "signed": sub.secret_encrypted is not None,
        "created_at": _when(sub.created_at),
        "disabled_at": _when(sub.disabled_at),
    }


def _alert_json(item: OutboxItem) -> dict[str, Any]:
    return {
        "alert_id": item.id,
        "subscription_id": item.subscription_id,
        "transition_id": item.transition_id,
        "event": item.event,
        "node_id": item.payload.get("node_id"),
        "state": item.state.value,
        "attempts": item.attempts,
        "next_attempt_at": _when(item.next_attempt_at),
        "last_error": item.last_error,
        "created_at": _when(item.created_at),
        "delivered_at": _when(item.delivered_at),
    }


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for position, column in enumerate(columns):
        table.add_column(column, overflow="fold", no_wrap=position == 0)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@alerts_app.command("add")
def add(
    space: Annotated[str, typer.Option(help="Space (CustSpaceId) whose transitions to send.")],
    url: Annotated[str, typer.Option(help="Webhook URL (http or https) to POST alerts to.")],
    secret: Annotated[
        str,
        typer.Option(
            envvar="WAHEALTH_ALERT_SECRET",
            show_envvar=True,
            help="Shared secret for X-Wahealth-Signature (stored encrypted).",
        ),
    ],
    on: Annotated[
        str, typer.Option(help="Events to send: BLOCKED, LIMITED, RECOVERED or ANY.")
    ] = ",".join(DEFAULT_ALERT_EVENTS),
    format: Annotated[AlertFormat, typer.Option(help="Body format.")] = AlertFormat.JSON,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe a webhook to a space's status changes."""
    events = _events(on)
    if not secret.strip():
        _fail("--secret must not be empty", EXIT_USAGE)
    settings = settings_from(config)

    async def work(outbox: OutboxRepository) -> Subscription:
        allow_private = settings.alerts.allow_private_targets
        try:
            await check_target(url, allow_private=allow_private)
        except TargetError as exc:
            hint = "" if allow_private else " (alerts.allow_private_targets = true allows it)"
            raise _Refused(f"target refused: {exc}{hint}") from exc
        box = SecretBox.load(
            os.environ.get("WAHEALTH_MASTER_KEY"), settings.security.master_key_file
        )
        return await outbox.add_subscription(
            space, url, on_events=events, format=format, secret_encrypted=box.encrypt(secret)
        )

    created = _run(settings, work)
    if as_json:
        _print_json(_subscription_json(created))
        return
    console.print(
        f"added subscription {created.id}: space {created.space_id} -> {created.url} "
        f"({', '.join(created.on_events)}; {created.format.value})",
        highlight=False,
        soft_wrap=True,
    )


@alerts_app.command("list")
def list_subscriptions(
    space: Annotated[str | None, typer.Option(help="Only this space.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List alert subscriptions (paused ones included)."""
    subs = _run(
        settings_from(config),
        lambda outbox: outbox.list_subscriptions(space, include_disabled=True),
    )
    if as_json:
        _print_json([_subscription_json(sub) for sub in subs])
        return
    _table(
        "Alert subscriptions",
        ["ID", "Space", "URL", "Events", "Format", "Created", "Paused"],
        [
            [
                str(sub.id),
                sub.space_id,
                sub.url,
                ",".join(sub.on_events),
                sub.format.value,
                _short(sub.created_at),
                _short(sub.disabled_at),
            ]
            for sub in subs
        ],
    )


@alerts_app.command("remove")
def remove(
    subscription_id: Annotated[int, typer.Argument(help="Subscription id (`alerts list`).")],
    config: ConfigOption = None,
) -> None:
    """Remove a subscription and its undelivered alerts."""
    if not _run(settings_from(config), lambda outbox: outbox.remove_subscription(subscription_id)):
        _fail(f"no alert subscription {subscription_id}", EXIT_NOT_FOUND)
    console.print(f"removed subscription {subscription_id}", highlight=False)


@alerts_app.command("outbox")
def outbox(
    state: Annotated[AlertState | None, typer.Option(help="Only alerts in this state.")] = None,
    space: Annotated[str | None, typer.Option(help="Only this space.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List alerts, newest first: pending, delivered or dead (with the last error)."""
    items = _run(
        settings_from(config),
        lambda repo: repo.list_alerts(state, space_id=space, limit=limit),
    )
    if as_json:
        _print_json([_alert_json(item) for item in items])
        return
    _table(
        "Alert outbox",
        ["Alert id", "Sub", "Event", "Node", "State", "Tries", "Next try", "Last error"],
        [
            [
                item.id,
                str(item.subscription_id),
                item.event,
                str(item.payload.get("node_id", "")),
                item.state.value,
                str(item.attempts),
                _short(item.next_attempt_at) if item.state is AlertState.PENDING else "",
                item.last_error or "",
            ]
            for item in items
        ],
    )


@alerts_app.command("retry")
def retry(
    alert_id: Annotated[str, typer.Argument(help="A dead alert's id (`alerts outbox`).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a dead alert again, with a fresh count of attempts."""
    item = _run(settings_from(config), lambda repo: repo.retry_dead(alert_id))
    if as_json:
        _print_json(_alert_json(item))
        return
    console.print(f"alert {item.id} is pending again", highlight=False)
