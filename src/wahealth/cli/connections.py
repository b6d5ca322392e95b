"""`wahealth connect` and `wahealth connections`: a space's own Meta token, its WABAs, its health.

`connect --space S --token T [--app-secret X] [--subscribe-webhooks] [--dry-run]` checks the
token (`/debug_token`: valid, with `whatsapp_business_management`), discovers every WABA it
can see (`/me/businesses`, each business's owned and client WABAs, all pages), stores the
token (and app secret) encrypted as the connection the space uses, adds the WABAs to the
space and, when asked, subscribes the token's app to each WABA's webhooks. `--dry-run`
checks and discovers only: nothing is stored or subscribed.

`connections list` shows each connection's state (`ok`, `refused` with Meta's reason,
`unchecked`): a refused connection's spaces are not refreshed until a check succeeds.
Tokens and app secrets are never printed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from wahealth.admin.connections import shown_connection
from wahealth.bootstrap import put_connection
from wahealth.cli._app import app
from wahealth.cli.admin import Store, cli_caller, run
from wahealth.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    Clash,
    ConfigOption,
    JsonOption,
    Missing,
    UsageError,
    console,
    done,
    fail,
    print_json,
    print_table,
    settings_from,
    short,
)
from wahealth.monitor.connections import connection_alert, credentials_of, problem_of
from wahealth.settings import MetaConnectionConfig, Settings
from wahealth.storage.admin import AuditLog
from wahealth.storage.connections import ConnectionRepository
from wahealth.upstream.discovery import (
    Discovery,
    TokenCheck,
    check_token,
    discover_wabas,
    subscribe_app,
)
from wahealth.upstream.emulator.app import create_emulator
from wahealth.upstream.emulator.scenario import load_scenario
from wahealth.upstream.errors import GraphAuthError, GraphError
from wahealth.upstream.graph import GraphClient

connections_app = typer.Typer(no_args_is_help=True, help="Meta connections (tokens) and health.")
app.add_typer(connections_app, name="connections")

TokenOption = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="WAHEALTH_META_TOKEN",
        help="The system user's access token (or $WAHEALTH_META_TOKEN, kept off the command line).",
    ),
]
SecretOption = Annotated[
    str | None,
    typer.Option(
        "--app-secret",
        envvar="WAHEALTH_META_APP_SECRET",
        help="The app's secret: every call then carries appsecret_proof.",
    ),
]


def graph_client(settings: Settings, token: str, app_secret: str | None) -> GraphClient:
    """A Graph client with this token: to Meta (`upstream.base_url`), or a private emulator."""
    up = settings.upstream
    options: dict[str, Any] = {
        "api_version": up.api_version,
        "timeout": up.timeout_seconds,
        "max_attempts": 2,
    }
    if up.kind == "meta":
        return GraphClient(
            base_url=up.base_url, access_token=token, app_secret=app_secret, **options
        )
    emulator = create_emulator(load_scenario(up.scenario))
    transport = httpx.ASGITransport(app=emulator)
    return GraphClient(
        base_url="http://emulator.internal",
        access_token=token,
        app_secret=app_secret,
        transport=transport,
        **options,
    )


async def _look(
    settings: Settings, token: str, app_secret: str | None, step: Callable[[str], None]
) -> tuple[TokenCheck, Discovery]:
    async with graph_client(settings, token, app_secret) as graph:
        step("checking the token (debug_token)")
        checked = await check_token(graph, token)
        found = await discover_wabas(graph, progress=lambda edge: step(f"reading {edge}"))
        return checked, found


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        transient=True,
    )


def _discover(
    settings: Settings, token: str, app_secret: str | None
) -> tuple[TokenCheck, Discovery]:
    with _progress() as progress:
        task = progress.add_task("connecting to Meta", total=None)

        def step(text: str) -> None:
            progress.update(task, description=text)

        try:
            return asyncio.run(_look(settings, token, app_secret, step))
        except GraphAuthError as exc:
            fail(f"Meta refused the token: {problem_of(exc)}", EXIT_USAGE)
        except GraphError as exc:
            fail(f"cannot reach Meta: {exc}", EXIT_USAGE)


async def _subscribe(settings: Settings, token: str, secret: str | None, wabas: list[str]) -> int:
    subscribed = 0
    async with graph_client(settings, token, secret) as graph:
        with _progress() as progress:
            task = progress.add_task("subscribing the app to webhooks", total=len(wabas))
            for waba_id in wabas:
                subscribed += await subscribe_app(graph, waba_id)
                progress.advance(task)
    return subscribed


@app.command("connect")
def connect(
    space: Annotated[str, typer.Option("--space", help="The space the WABAs go into.")],
    token: TokenOption,
    app_secret: SecretOption = None,
    name: Annotated[
        str | None, typer.Option(help="The connection's name (default: the space id).")
    ] = None,
    subscribe_webhooks: Annotated[
        bool, typer.Option("--subscribe-webhooks", help="POST /<waba>/subscribed_apps for each.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and discover only; store nothing.")
    ] = False,
    calls_per_minute: Annotated[
        int | None,
        typer.Option(
            "--calls-per-minute",
            help="This Meta app's own call budget (default: [monitor] meta_calls_per_minute).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Connect a space to Meta with its own token: check it, find its WABAs, add them."""
    settings = settings_from(config)
    try:
        connection = MetaConnectionConfig.model_validate(
            {"name": name or space, "access_token": token, "app_secret": app_secret,
             "meta_calls_per_minute": calls_per_minute}
        )  # fmt: skip
    except ValueError as exc:
        fail(f"invalid connection: {' '.join(str(exc).split())}", EXIT_USAGE)
    checked, found = _discover(settings, token, app_secret)
    scopes = ", ".join(checked.scopes)
    console.print(f"token ok: app {checked.app_id or '?'}, scopes {scopes}", highlight=False)
    rows = [[w.id, w.name or "", w.business_id, w.relation] for w in found.wabas]
    print_table(f"WABAs this token sees ({len(rows)})", ["WABA", "name", "business", "as"], rows)
    wabas = [w.id for w in found.wabas]
    if dry_run:
        done(f"dry run: would connect space {space!r} as {connection.name!r} with {len(wabas)} "
             "WABA(s); nothing stored")  # fmt: skip
        return

    async def work(store: Store) -> None:
        owner = await store.tenancy.account_of_space(space)
        if owner is None:
            raise Missing(f"no space {space!r} (create it first: wahealth spaces create)")
        for waba_id in wabas:
            current = await store.tenancy.space_of_waba(waba_id)
            if current not in (None, space):
                raise Clash(f"WABA {waba_id!r} is already in space {current!r}")
        connections = ConnectionRepository(store.sessions)
        await put_connection(connections, store.secretbox(), connection)
        await connections.set_space_connection(space, connection.name)
        await connections.mark(
            connection.name, refused=False, problem=None, code=None, document=connection_alert
        )
        for waba_id in wabas:
            await store.tenancy.upsert_waba(waba_id, space)
        await AuditLog(store.sessions).record(
            cli_caller().actor, "space.connect", f"space:{space}", account=owner,
            details={"connection": connection.name, "wabas": wabas,
                     "app_secret": app_secret is not None,
                     "meta_calls_per_minute": calls_per_minute},
        )  # fmt: skip

    run(config, work)
    subscribed = ""
    if subscribe_webhooks and wabas:
        count = asyncio.run(_subscribe(settings, token, app_secret, wabas))
        subscribed = f"; app subscribed to {count} WABA(s)' webhooks"
    done(f"space {space!r} connected as {connection.name!r} with {len(wabas)} WABA(s){subscribed}")


@connections_app.command("list")
def list_connections(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Each connection's state: ok, refused (its spaces' refresh paused) or unchecked."""

    async def work(store: Store) -> list[dict[str, object]]:
        stored = await ConnectionRepository(store.sessions).list_connections()
        return [shown_connection(c).model_dump(mode="json") for c in stored]

    shown = run(config, work)
    if as_json:
        print_json(shown)
        return
    rows = [
        [
            str(c["name"]),
            str(c["state"]) + ("" if c["state"] != "refused" else " (refresh paused)"),
            str(c["problem"] or ""),
            "yes" if c["app_secret"] else "no",
            "default"
            if c["meta_calls_per_minute"] is None
            else f"{c['meta_calls_per_minute']}/min",
            ", ".join(str(s) for s in c["spaces"]),  # type: ignore[attr-defined]
            short(None) if c["checked_at"] is None else str(c["checked_at"])[:19],
        ]
        for c in shown
    ]
    columns = ["connection", "state", "problem", "appsecret_proof", "budget", "spaces", "checked"]
    print_table("Meta connections", columns, rows, whole=("checked",))


@connections_app.command("check")
def check_connection(
    name: Annotated[str, typer.Argument(help="The connection.")], config: ConfigOption = None
) -> None:
    """Check a connection's token with Meta now and record the verdict (refused: its spaces'
    refresh pauses, and their subscriptions get one alert; ok: it resumes). Exit 1 if refused."""
    settings = settings_from(config)

    async def work(store: Store) -> tuple[str, str | None]:
        connections = ConnectionRepository(store.sessions)
        stored = await connections.get(name)
        if stored is None:
            raise Missing(f"no Meta connection {name!r}")
        credentials = credentials_of(stored, store.secretbox())
        if credentials is None:
            raise UsageError(f"cannot decrypt connection {name!r}: another master key?")
        problem, code = None, None
        async with graph_client(settings, credentials.access_token, credentials.app_secret) as g:
            try:
                await check_token(g, credentials.access_token)
            except GraphAuthError as exc:
                problem, code = problem_of(exc), exc.code
            except GraphError as exc:
                raise UsageError(f"cannot reach Meta: {exc}") from exc
        refused = problem is not None
        await connections.mark(
            name, refused=refused, problem=problem, code=code, document=connection_alert
        )
        return ("refused" if refused else "ok"), problem

    state, problem = run(config, work)
    if problem is not None:
        fail(f"connection {name!r} refused by Meta: {problem}", EXIT_NOT_FOUND)
    done(f"connection {name!r} is {state}")


@connections_app.command("delete")
def delete_connection(
    name: Annotated[str, typer.Argument(help="The connection.")], config: ConfigOption = None
) -> None:
    """Delete a connection no space uses."""

    async def work(store: Store) -> None:
        await ConnectionRepository(store.sessions).delete(name)
        await AuditLog(store.sessions).record(
            cli_caller().actor, "connection.delete", f"connection:{name}"
        )

    run(config, work)
    done(f"connection {name!r} deleted")
