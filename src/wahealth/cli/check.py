"""`wahealth check`: the health of one node, for people and for scripts.

The exit code is the verdict (0 AVAILABLE, 1 LIMITED, 2 BLOCKED), so a deploy
script can gate on it; every error (bad options, bad config, unknown node,
unreachable upstream, anything unexpected) exits 3, never 0, 1 or 2.

It reads the settings `serve` reads (`--config`, `$WAHEALTH_CONFIG`, `WAHEALTH_*`).
With `upstream.kind = "meta"` (or `--token`) it asks Meta. With the emulator it
asks the running server for its emulator's current state (`GET /_emulator/scenario`
on `server.host:server.port`), so changes made there show; with no server it
answers from a private emulator of the scenario, which makes it a zero-setup
demo. It never records anything: history is the server's, and the stderr line
says where the answer came from.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import structlog
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from wahealth.cli._app import app
from wahealth.cli.common import ConfigOption, settings_from
from wahealth.domain import (
    Entity,
    HealthReport,
    Status,
    normalize_phone_number,
    render_health_status,
)
from wahealth.settings import MetaConnectionConfig, Settings
from wahealth.upstream.emulator import (
    Scenario,
    ScenarioError,
    create_emulator,
    load_scenario,
    parse_scenario,
)
from wahealth.upstream.errors import (
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphRateLimited,
)
from wahealth.upstream.graph import GraphClient, RetryLogger

EXIT_CODES = {Status.AVAILABLE: 0, Status.LIMITED: 1, Status.BLOCKED: 2}
EXIT_ERROR = 3
STATUS_STYLES = {Status.AVAILABLE: "bold green", Status.LIMITED: "bold yellow"}
EMULATOR_BASE_URL = "http://emulator.invalid"
PRIVATE_EMULATOR_NOTE = "answered by a private emulator; nothing recorded"
# Long enough for a loopback server to answer; an absent one refuses at once.
SERVER_PROBE_SECONDS = 2.0
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


class CheckFailed(Exception):
    """The check cannot give a verdict; the message is the one line shown to the user."""


@dataclass(frozen=True, slots=True)
class Target:
    node_id: str | None
    phone_number: str | None
    waba_id: str | None

    @classmethod
    def from_options(cls, node: str | None, phone_number: str | None, waba: str | None) -> Target:
        if node is not None and (phone_number is not None or waba is not None):
            raise CheckFailed("give either --node, or --phone-number with --waba, or --waba")
        if phone_number is not None and waba is None:
            raise CheckFailed("--phone-number needs --waba (the WABA the number belongs to)")
        if node is None and waba is None:
            raise CheckFailed(
                "say what to check: --node ID, --phone-number N --waba ID, or --waba ID"
            )
        return cls(node, phone_number, waba)


@dataclass(frozen=True, slots=True)
class Upstream:
    """Who answers the check, and the line on stderr that says so (None for Meta)."""

    client: GraphClient
    note: str | None


def connection_for(
    settings: Settings, target: Target, name: str | None
) -> MetaConnectionConfig | None:
    """The Meta connection a check asks with: `--connection`, else that of the configured
    space listing the target's WABA (None: `upstream.access_token`)."""
    by_name = {c.name: c for c in settings.meta_connections}
    if name is not None:
        if name not in by_name:
            raise CheckFailed(f"no Meta connection {name!r} in the configuration")
        return by_name[name]
    space = next((s for s in settings.spaces if target.waba_id in s.wabas and s.connection), None)
    return None if space is None or space.connection is None else by_name.get(space.connection)


def _meta(
    settings: Settings,
    token: str | None,
    base_url: str | None,
    version: str,
    connection: MetaConnectionConfig | None = None,
) -> Upstream:
    up = settings.upstream
    app_secret = None
    if token is None and connection is not None:
        token = connection.access_token.get_secret_value()
        app_secret = connection.app_secret.get_secret_value() if connection.app_secret else None
    access_token = token or up.access_token
    if not access_token:
        raise CheckFailed(
            'upstream.kind = "meta" needs upstream.access_token, a connection or --token'
        )
    client = GraphClient(
        base_url=base_url or up.base_url,
        api_version=version,
        access_token=access_token,
        app_secret=app_secret,
        timeout=up.timeout_seconds,
        max_attempts=up.max_attempts,
        logger=_stderr_logger(),
    )
    return Upstream(client, None)


def _server_url(settings: Settings) -> str | None:
    server = settings.server
    if server.port == 0:
        return None
    host = _WILDCARD_HOSTS.get(server.host, server.host)
    return f"http://[{host}]:{server.port}" if ":" in host else f"http://{host}:{server.port}"


async def _server_scenario(url: str) -> Scenario | None:
    """The running server's emulator as it stands now; None when no such server answers."""
    try:
        async with httpx.AsyncClient(timeout=SERVER_PROBE_SECONDS, trust_env=False) as client:
            answer = await client.get(f"{url}/_emulator/scenario")
        if answer.status_code != httpx.codes.OK:
            return None  # something else listens there, or a server without an emulator
        return parse_scenario(answer.json(), source=f"{url}/_emulator/scenario")
    except (httpx.HTTPError, ValueError, ScenarioError):
        return None


async def _emulator(settings: Settings, scenario: Path | None, version: str) -> Upstream:
    loaded: Scenario | None = None
    note = PRIVATE_EMULATOR_NOTE
    # An explicit --scenario asks for that scenario, not for the server's.
    url = _server_url(settings) if scenario is None else None
    if url is not None:
        loaded = await _server_scenario(url)
        if loaded is not None:
            note = f"answered from the emulator state of the server at {url}; nothing recorded"
    if loaded is None:
        loaded = load_scenario(scenario or settings.upstream.scenario)
    client = GraphClient(
        base_url=EMULATOR_BASE_URL,
        api_version=version,
        access_token=loaded.every_token[0],
        transport=httpx.ASGITransport(app=create_emulator(loaded)),
        logger=_stderr_logger(),
    )
    return Upstream(client, note)


async def _upstream(
    settings: Settings,
    token: str | None,
    scenario: Path | None,
    base_url: str | None,
    api_version: str | None,
    connection: MetaConnectionConfig | None = None,
) -> Upstream:
    version = api_version or settings.upstream.api_version
    if token is None and settings.upstream.kind == "emulator":
        return await _emulator(settings, scenario, version)
    if scenario is not None:
        raise CheckFailed(
            "--scenario is for the built-in emulator; drop --token/WAHEALTH_META_TOKEN"
            if token is not None
            else '--scenario is for the built-in emulator, and upstream.kind is "meta"'
        )
    return _meta(settings, token, base_url, version, connection)


async def _answer(
    settings: Settings,
    target: Target,
    token: str | None,
    scenario: Path | None,
    base_url: str | None,
    api_version: str | None,
    connection: str | None = None,
) -> tuple[HealthReport, str | None]:
    chosen = connection_for(settings, target, connection) if token is None else None
    if connection is not None and settings.upstream.kind != "meta":
        raise CheckFailed('--connection is for upstream.kind = "meta"')
    upstream = await _upstream(settings, token, scenario, base_url, api_version, chosen)
    return await _fetch(upstream.client, target), upstream.note


async def _fetch(client: GraphClient, target: Target) -> HealthReport:
    async with client:
        node_id = target.node_id
        if target.phone_number is not None:
            assert target.waba_id is not None
            digits = normalize_phone_number(target.phone_number)
            numbers = await client.phone_numbers(target.waba_id)
            match = next((n for n in numbers if n.phone_number == digits), None)
            if match is None:
                raise CheckFailed(f"no phone number {target.phone_number} on WABA {target.waba_id}")
            node_id = match.id
        return await client.health(node_id or target.waba_id or "")


def _describe(exc: GraphError) -> str:
    if isinstance(exc, GraphNotFound):
        return f"Meta has no such node, or the token cannot see it: {exc.message}"
    if isinstance(exc, GraphAuthError):
        return f"the access token was refused: {exc.message}"
    if isinstance(exc, GraphRateLimited):
        wait = f"; retry in {exc.retry_after:.0f}s" if exc.retry_after is not None else ""
        return f"Meta rate-limited the call{wait}: {exc.message}"
    return f"no answer from Meta: {exc}"


def _entity_details(entity: Entity) -> Text:
    details = Text()
    for error in entity.errors:
        details.append(f"[{error.code}] ", style="bold")
        details.append(error.error_description or "(no description)")
        if error.possible_solution:
            details.append(f"\nFix: {error.possible_solution}", style="italic")
        details.append("\n")
    for info in entity.additional_info:
        details.append(f"{info}\n")
    if entity.can_receive_call_sip is not None:
        details.append(f"Calls (SIP): {entity.can_receive_call_sip}\n", style="dim")
    details.rstrip()
    return details


def _status_text(status: Status) -> Text:
    return Text(status.value, style=STATUS_STYLES.get(status, "bold red"))


def _print_table(report: HealthReport, target: Target) -> None:
    title = f"Health of {report.node_id}"
    if target.phone_number is not None:
        title += f" (phone number {target.phone_number})"
    table = Table(title=title, show_lines=True)
    table.add_column("Entity")
    table.add_column("ID")
    table.add_column("Status")
    table.add_column("Details")
    for entity in report.entities:
        table.add_row(
            entity.entity_type,
            entity.id,
            _status_text(entity.status),
            _entity_details(entity),
        )
    console = Console()
    console.print(table)
    console.print(Text("Overall: ").append(_status_text(report.can_send_message)))


def _stderr_logger() -> RetryLogger:
    """Retry warnings for people, on stderr, so that stdout stays clean for --json."""
    logger: RetryLogger = structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
    )
    return logger


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(EXIT_ERROR)


class _CheckCommand(TyperCommand):
    """Usage errors exit 3 too: click's usual 2 would read as BLOCKED to a script."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:  # click's UsageError family (typer vendors click privately)
            if getattr(exc, "exit_code", None) == 2:
                exc.exit_code = EXIT_ERROR  # type: ignore[attr-defined]
            raise


@app.command(cls=_CheckCommand)
def check(
    node: Annotated[
        str | None, typer.Option(help="Phone number id, template id or WABA id.")
    ] = None,
    phone_number: Annotated[
        str | None,
        typer.Option(help="Phone number as digits or as Meta formats it; needs --waba."),
    ] = None,
    waba: Annotated[
        str | None, typer.Option(help="WABA id: checks the WABA, or resolves --phone-number.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print Meta's health_status JSON.")
    ] = False,
    config: ConfigOption = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario file for the emulator (default: upstream.scenario)."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Graph API base URL for Meta (default: upstream.base_url)."),
    ] = None,
    api_version: Annotated[
        str | None, typer.Option(help="Graph API version (default: upstream.api_version).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="WAHEALTH_META_TOKEN",
            show_envvar=True,
            help="Meta access token: ask Meta even when upstream.kind is the emulator.",
        ),
    ] = None,
    connection: Annotated[
        str | None,
        typer.Option(
            help="The [[meta_connections]] entry to ask with (default: that of the space "
            "listing --waba, else upstream.access_token)."
        ),
    ] = None,
) -> None:
    """Check whether a phone number, template or WABA can send messages.

    Exit code: 0 AVAILABLE, 1 LIMITED, 2 BLOCKED, 3 any error (bad options and config included).
    """
    try:
        settings = settings_from(config, exit_code=EXIT_ERROR)
        target = Target.from_options(node, phone_number, waba)
        report, note = asyncio.run(
            _answer(settings, target, token, scenario, base_url, api_version, connection)
        )
    except typer.Exit:
        raise
    except (CheckFailed, ScenarioError) as exc:
        raise _fail(str(exc)) from None
    except GraphError as exc:
        raise _fail(_describe(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted") from None
    except Exception as exc:  # noqa: BLE001 — an uncaught error exits 1, which reads as LIMITED
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    if note is not None:
        typer.echo(note, err=True)
    if as_json:
        typer.echo(json.dumps(render_health_status(report), indent=2, ensure_ascii=False))
    else:
        _print_table(report, target)
    raise typer.Exit(EXIT_CODES[report.can_send_message])
