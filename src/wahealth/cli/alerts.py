"""`wahealth alerts`: alert webhooks per space, and the outbox of alerts to deliver.

Commands work on the configured storage directly (migrated first); no server
needs to run, and a running server picks changes up at its next delivery round.
Subscription secrets are stored encrypted with the master key and never shown.

Exit codes: 0 done; 1 not found (space, subscription, alert); 2 usage or
configuration error (bad option, refused target, unreachable storage);
3 conflict (URL already subscribed, alert not dead).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from wahealth.cli._app import app
from wahealth.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CommandRefused,
    ConfigOption,
    JsonOption,
    console,
    done,
    fail,
    master_key,
    print_json,
    print_table,
    run_on_storage,
    settings_from,
    short,
    when,
)
from wahealth.domain.records import (
    DEFAULT_ALERT_EVENTS,
    AlertEvent,
    AlertFormat,
    AlertState,
    OutboxItem,
    Subscription,
)
from wahealth.monitor.targets import TargetError, check_target
from wahealth.settings import Settings
from wahealth.storage import OutboxRepository

EVENTS = tuple(event.value for event in AlertEvent)

T = TypeVar("T")

alerts_app = typer.Typer(no_args_is_help=True, help="Alert webhooks and their delivery outbox.")
app.add_typer(alerts_app, name="alerts")


def _run(settings: Settings, work: Callable[[OutboxRepository], Awaitable[T]]) -> T:
    return run_on_storage(settings, lambda sessions: work(OutboxRepository(sessions)))


def _events(value: str) -> list[str]:
    events = [part.strip().upper() for part in value.split(",") if part.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        fail(f"--on takes a comma-separated list of {', '.join(EVENTS)}", EXIT_USAGE)
    return list(dict.fromkeys(events))


def _subscription_json(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "space": sub.space_id,
        "url": sub.url,
        "on": list(sub.on_events),
        "format": sub.format.value,
        "signed": sub.secret_encrypted is not None,
        "created_at": when(sub.created_at),
        "disabled_at": when(sub.disabled_at),
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
        "next_attempt_at": when(item.next_attempt_at),
        "last_error": item.last_error,
        "created_at": when(item.created_at),
        "delivered_at": when(item.delivered_at),
    }


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
        str,
        typer.Option(
            help="Events to send: BLOCKED, LIMITED, RECOVERED, QUALITY, LIMIT, "
            "NUMBER_STATUS, TEMPLATE_STATUS or ANY (comma-separated)."
        ),
    ] = ",".join(DEFAULT_ALERT_EVENTS),
    format: Annotated[AlertFormat, typer.Option(help="Body format.")] = AlertFormat.JSON,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe a webhook to a space's status changes."""
    events = _events(on)
    if not secret.strip():
        fail("--secret must not be empty", EXIT_USAGE)
    settings = settings_from(config)

    async def work(outbox: OutboxRepository) -> Subscription:
        allow_private = settings.alerts.allow_private_targets
        try:
            await check_target(url, allow_private=allow_private)
        except TargetError as exc:
            hint = "" if allow_private else " (alerts.allow_private_targets = true allows it)"
            raise CommandRefused(f"target refused: {exc}{hint}") from exc
        encrypted = master_key(settings).encrypt(secret)
        return await outbox.add_subscription(
            space, url, on_events=events, format=format, secret_encrypted=encrypted
        )

    created = _run(settings, work)
    if as_json:
        print_json(_subscription_json(created))
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
        print_json([_subscription_json(sub) for sub in subs])
        return
    print_table(
        "Alert subscriptions",
        ["ID", "Space", "URL", "Events", "Format", "Created", "Paused"],
        [
            [
                str(sub.id),
                sub.space_id,
                sub.url,
                ",".join(sub.on_events),
                sub.format.value,
                short(sub.created_at),
                short(sub.disabled_at),
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
        fail(f"no alert subscription {subscription_id}", EXIT_NOT_FOUND)
    done(f"removed subscription {subscription_id}")


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
        print_json([_alert_json(item) for item in items])
        return
    print_table(
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
                short(item.next_attempt_at) if item.state is AlertState.PENDING else "",
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
        print_json(_alert_json(item))
        return
    done(f"alert {item.id} is pending again")
