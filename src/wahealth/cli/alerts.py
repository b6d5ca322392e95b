"""`wahealth alerts`: alert webhooks per space, the outbox, acknowledgements and silences.

Commands work on the configured storage directly (migrated first); no server
needs to run, and a running server picks changes up at its next delivery round.
Subscription secrets are stored encrypted with the master key and never shown.

Exit codes: 0 done; 1 not found (space, subscription, alert, node, silence); 2 usage
or configuration error (bad option, refused target, unreachable storage); 3 conflict
(URL already subscribed, alert not dead, nothing to acknowledge).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from wahealth.cli._app import app
from wahealth.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    Clash,
    CommandRefused,
    ConfigOption,
    JsonOption,
    Missing,
    UsageError,
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
from wahealth.core.alerting import (
    Alerting,
    NothingToAcknowledge,
    Scope,
    acknowledgement_json,
    parse_duration,
    parse_time,
    silence_json,
)
from wahealth.core.errors import InvalidRequest, NodeNotFound
from wahealth.domain.records import (
    DEFAULT_ALERT_EVENTS,
    AlertEvent,
    AlertFormat,
    AlertState,
    OutboxItem,
    Silence,
    SilenceScope,
    Subscription,
)
from wahealth.monitor.targets import TargetError, check_target
from wahealth.settings import Settings
from wahealth.storage import OutboxRepository
from wahealth.storage.silences import SilenceOwners, SilenceRepository

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


# --- acknowledgements and silences ----------------------------------------------------------


def _alerting(settings: Settings, work: Callable[[Alerting], Awaitable[T]]) -> T:
    """Run `work` on the operator's use case (every space); core errors as exit codes."""

    async def call(sessions: Any) -> T:
        alerting = Alerting(SilenceOwners(sessions), SilenceRepository(sessions))
        try:
            return await work(alerting)
        except NothingToAcknowledge as exc:
            raise Clash(str(exc)) from exc
        except NodeNotFound as exc:
            raise Missing(str(exc)) from exc
        except InvalidRequest as exc:
            raise UsageError(str(exc)) from exc

    return run_on_storage(settings, call)


ByOption = Annotated[
    str | None, typer.Option("--by", help="Who acts (recorded with it; default: $USER).")
]


def _who(by: str | None) -> str | None:
    return by or os.environ.get("USER") or None


@alerts_app.command("ack")
def ack(
    node: Annotated[str, typer.Argument(help="The node (phone number, template or WABA id).")],
    note: Annotated[str | None, typer.Option(help="Why, or what is being done.")] = None,
    by: ByOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge a node's problem: no repeat alert until its status changes again."""
    found = _alerting(
        settings_from(config), lambda alerting: alerting.ack(None, node, note, by=_who(by))
    )
    if as_json:
        print_json(acknowledgement_json(found))
        return
    done(f"acknowledged {found.node_id} ({found.status}) as {found.acknowledged_by or 'anonymous'}")


@alerts_app.command("silence")
def silence(
    node: Annotated[str | None, typer.Option(help="Silence this node.")] = None,
    waba: Annotated[str | None, typer.Option(help="Silence this WABA and its nodes.")] = None,
    space: Annotated[str | None, typer.Option(help="Silence this whole space.")] = None,
    duration: Annotated[
        str | None, typer.Option("--for", help="How long: 90s, 30m, 2h, 1d.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Until this ISO 8601 time, with a zone.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (shown with suppressed alerts).")] = None,
    by: ByOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver no alert for a node, WABA or space for a while; transitions are still kept."""
    scopes = [
        Scope(kind, value)
        for kind, value in (
            (SilenceScope.NODE, node),
            (SilenceScope.WABA, waba),
            (SilenceScope.SPACE, space),
        )
        if value is not None
    ]
    if len(scopes) != 1:
        fail("give exactly one of --node, --waba or --space", EXIT_USAGE)
    if (duration is None) == (until is None):
        fail("give exactly one of --for or --until", EXIT_USAGE)

    async def work(alerting: Alerting) -> Silence:
        end = (
            alerting.clock() + parse_duration(duration)
            if duration is not None
            else parse_time(str(until))
        )
        return await alerting.silence(None, scopes[0], end, reason, by=_who(by))

    created = _alerting(settings_from(config), work)
    if as_json:
        print_json(silence_json(created))
        return
    done(
        f"silence {created.id}: {created.scope.value} {created.scope_id} "
        f"until {when(created.ends_at)}"
    )


@alerts_app.command("silences")
def silences(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List the silences not over yet."""
    found = _alerting(settings_from(config), lambda alerting: alerting.silences(None))
    if as_json:
        print_json([silence_json(s) for s in found])
        return
    print_table(
        "Silences",
        ["ID", "Space", "Scope", "Of", "Until", "Reason", "By"],
        [
            [
                str(s.id),
                s.space_id,
                s.scope.value,
                s.scope_id,
                short(s.effective_end()),
                s.reason or "",
                s.created_by or "",
            ]
            for s in found
        ],
    )


@alerts_app.command("unsilence")
def unsilence(
    silence_id: Annotated[int, typer.Argument(help="A silence's id (`alerts silences`).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a silence now; nodes still not AVAILABLE are alerted once."""
    lifted = _alerting(settings_from(config), lambda alerting: alerting.unsilence(None, silence_id))
    if as_json:
        print_json(silence_json(lifted))
        return
    done(f"silence {lifted.id} lifted")
