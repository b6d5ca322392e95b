"""`wahealth gate`: may this phone number send (this template) right now? For send scripts.

The exit code is the verdict: 0 allow, 1 allow with limits (LIMITED), 2 deny, and 3 for
every error (bad options, unknown space, number or template, unreachable server or
upstream, anything unexpected), never 0 or 1, so a job that sends on 0 or 1 never sends
on a mistake.

Who answers:

- `--url` (or `WAHEALTH_URL`) with `--token` (or `WAHEALTH_TOKEN`, a Graph token of the
  space's account): the running server's `GET /api/v1/gate`, counted against the
  account's limit like any call.
- otherwise, in-process, from the configuration `serve` reads (`--config`,
  `$WAHEALTH_CONFIG`, `WAHEALTH_*`): with `upstream.kind = "meta"` from its storage and
  Meta, as the server would answer (a report fetched is recorded as the server records
  it). With the emulator, from a private copy that writes nothing anywhere: the config's
  spaces, the emulator state of a server running at `server.host:server.port` if one
  answers, else the scenario; stderr says so, as `wahealth check` does.

`--json` prints the API's JSON answer; otherwise a verdict line and a table of reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import structlog
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from starlette.datastructures import QueryParams

from wahealth.cli._app import app
from wahealth.cli.check import (
    PRIVATE_EMULATOR_NOTE,
    _CheckCommand,
    _server_scenario,
    _server_url,
)
from wahealth.cli.common import ConfigOption, print_json, settings_from
from wahealth.core.errors import CoreError
from wahealth.core.gate import PreSendGate
from wahealth.core.ports import Principal
from wahealth.settings import Settings
from wahealth.upstream.emulator import Scenario, ScenarioError, create_emulator, load_scenario
from wahealth.web.gate import GATE_PATH, gate_json, parse_gate

if TYPE_CHECKING:
    from wahealth.app import Components

EXIT_ALLOW = 0
EXIT_LIMITED = 1
EXIT_DENY = 2
EXIT_ERROR = 3
SERVER_TIMEOUT_SECONDS = 15.0
_VERDICTS = {
    EXIT_ALLOW: ("ALLOW", "bold green"),
    EXIT_LIMITED: ("ALLOW WITH LIMITS", "bold yellow"),
    EXIT_DENY: ("DENY", "bold red"),
}


class GateFailed(Exception):
    """No verdict; the message is the one line shown to the user."""


def exit_code_of(answer: dict[str, Any]) -> int:
    """0 allow, 1 allow with limits (LIMITED), 2 deny."""
    if answer.get("allow") is not True:
        return EXIT_DENY
    return EXIT_LIMITED if answer.get("status") == "LIMITED" else EXIT_ALLOW


# --- asking a running server ---------------------------------------------------------------


async def ask_server(url: str, token: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    """The server's answer to `GET /api/v1/gate`, or GateFailed saying why there is none."""
    endpoint = url.rstrip("/") + GATE_PATH
    try:
        async with httpx.AsyncClient(timeout=SERVER_TIMEOUT_SECONDS) as client:
            answer = await client.get(
                endpoint,
                params=tuple(params),
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        raise GateFailed(f"cannot reach {endpoint}: {exc or type(exc).__name__}") from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != httpx.codes.OK:
        message = body.get("error") if isinstance(body, dict) else None
        wait = answer.headers.get("retry-after")
        retry = f" (retry after {wait}s)" if wait else ""
        shown = message if isinstance(message, str) else answer.text[:200]
        raise GateFailed(f"the server answered {answer.status_code}{retry}: {shown}")
    if not isinstance(body, dict) or not isinstance(body.get("allow"), bool):
        raise GateFailed(f"{endpoint} did not answer like a wahealth gate: {answer.text[:200]}")
    return body


# --- answering in-process ------------------------------------------------------------------


def _offline(settings: Settings) -> Settings:
    """No background loops, no start-up sync: the catalog syncs on a miss, as the server's."""
    return settings.model_copy(
        update={
            "monitor": settings.monitor.model_copy(update={"enabled": False}),
            "catalog": settings.catalog.model_copy(update={"sync_on_start": False}),
        }
    )


def _private(settings: Settings, workdir: Path, scenario: Scenario) -> Settings:
    """The settings of a private copy that writes nothing outside `workdir`."""
    update = {"url": "memory://"}
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(
                update={"url": f"sqlite+aiosqlite:///{workdir / 'gate.db'}"}
            ),
            "security": settings.security.model_copy(
                update={"master_key_file": workdir / "gate.key"}
            ),
            "master_key": None,
            "cache": settings.cache.model_copy(update=update),
            "ratelimit": settings.ratelimit.model_copy(update=update),
            "monitor": settings.monitor.model_copy(update={"enabled": False}),
            "catalog": settings.catalog.model_copy(update={"sync_on_start": True}),
            "metrics": settings.metrics.model_copy(update={"mode": "off"}),
            "upstream": settings.upstream.model_copy(
                update={"access_token": scenario.tokens[0] if scenario.tokens else None}
            ),
        }
    )


@contextlib.asynccontextmanager
async def _components(settings: Settings) -> AsyncIterator[tuple[Components, str | None]]:
    """The app's components for in-process answers, and the stderr note saying whose."""
    from wahealth.app import Overrides, create_app

    if settings.upstream.kind != "emulator":
        application = create_app(_offline(settings))
        async with application.router.lifespan_context(application):
            yield application.state.components, None
        return
    url = _server_url(settings)
    scenario = await _server_scenario(url) if url is not None else None
    note = PRIVATE_EMULATOR_NOTE
    if scenario is not None:
        note = f"answered from the emulator state of the server at {url}; nothing recorded"
    else:
        scenario = load_scenario(settings.upstream.scenario)
    emulator = create_emulator(scenario)
    overrides = Overrides(graph_transport=lambda _inner: httpx.ASGITransport(app=emulator))
    with tempfile.TemporaryDirectory(prefix="wahealth-gate-") as workdir:
        private = _private(settings, Path(workdir), scenario)
        application = create_app(private, overrides=overrides)
        async with application.router.lifespan_context(application):
            yield application.state.components, note


async def answer_in_process(
    settings: Settings, params: list[tuple[str, str]]
) -> tuple[dict[str, Any], str | None]:
    """The gate's answer from this configuration, and the stderr note (None for Meta)."""
    query = parse_gate(QueryParams(params))
    async with _components(settings) as (components, note):
        account = await components.tenancy.account_of_space(query.space_id)
        if account is None:
            raise GateFailed(f"there is no space {query.space_id!r}")
        gate = PreSendGate(components.queries, components.catalog)
        # The operator's own configuration answers: no credential, no rate limit.
        answer = await gate.check_as(Principal(account, qps=1), query)
        return gate_json(answer), note


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Only warnings and errors while the app runs in-process: its start-up lines are noise."""
    previous = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(wrapper_class=previous)


# --- output --------------------------------------------------------------------------------


def _print(answer: dict[str, Any], code: int) -> None:
    console = Console()
    label, style = _VERDICTS[code]
    line = Text(label, style=style)
    age = answer.get("age_seconds")
    line.append(f"   health {answer.get('status')}, nodes {', '.join(answer.get('nodes', []))}")
    if isinstance(age, int | float):
        line.append(f", reports {age:.1f} s old")
    if answer.get("stale"):
        line.append(" (stale: Meta did not answer; the last known report)", style="yellow")
    console.print(line)
    reasons = answer.get("reasons") or []
    if not reasons:
        return
    table = Table(show_lines=True)
    table.add_column("Entity", no_wrap=True)
    table.add_column("Why, and what fixes it", overflow="fold")
    for reason in reasons:
        why = Text()
        if reason.get("error_code"):
            why.append(f"[{reason['error_code']}] ", style="bold")
        why.append(str(reason.get("description") or "(no description)"))
        if reason.get("solution"):
            why.append(f"\nFix: {reason['solution']}", style="italic")
        table.add_row(f"{reason.get('entity_type')}\n{reason.get('entity_id')}", why)
    console.print(table)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(EXIT_ERROR)


def _params(
    space: str,
    phone_number: str | None,
    phone_number_id: str | None,
    template: str | None,
    language: str | None,
    template_id: str | None,
    strict: bool,
    lang: str | None = None,
) -> list[tuple[str, str]]:
    given = {
        "space": space,
        "phone_number": phone_number,
        "phone_number_id": phone_number_id,
        "template": template,
        "language": language,
        "template_id": template_id,
        "lang": lang,
    }
    params = [(name, value) for name, value in given.items() if value is not None]
    return [*params, ("strict", "true")] if strict else params


@app.command(cls=_CheckCommand)
def gate(
    space: Annotated[str, typer.Option(help="The space (CustSpaceId) the number is in.")],
    phone_number: Annotated[
        str | None, typer.Option(help="The sending number, as digits or as Meta formats it.")
    ] = None,
    phone_number_id: Annotated[
        str | None, typer.Option(help="The sending number's Meta id (instead of --phone-number).")
    ] = None,
    template: Annotated[
        str | None, typer.Option(help="The template's name (with --language).")
    ] = None,
    language: Annotated[str | None, typer.Option(help="The template's language code.")] = None,
    template_id: Annotated[
        str | None, typer.Option(help="The template's Meta id (instead of --template).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse LIMITED too.")] = False,
    lang: Annotated[
        str | None, typer.Option(help="Language of the reasons: en (default), id or zh.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    url: Annotated[
        str | None,
        typer.Option(envvar="WAHEALTH_URL", show_envvar=True, help="Ask the server at this URL."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="WAHEALTH_TOKEN", show_envvar=True, help="Graph token for --url's server."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """May this phone number send (this template) now? Exit 0 allow, 1 with limits, 2 deny.

    Any error exits 3: bad options, unknown space, number or template, no answer.
    """
    params = _params(
        space, phone_number, phone_number_id, template, language, template_id, strict, lang
    )
    note: str | None = None
    try:
        if url is not None:
            if config is not None:
                raise GateFailed("give --url (ask a server) or --config (answer here), not both")
            if not token:
                raise GateFailed("--url needs --token (or WAHEALTH_TOKEN): a Graph token")
            answer = asyncio.run(ask_server(url, token, params))
        else:
            settings = settings_from(config, exit_code=EXIT_ERROR)
            with _quiet():
                answer, note = asyncio.run(answer_in_process(settings, params))
    except typer.Exit:
        raise
    except (GateFailed, CoreError, ScenarioError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted") from None
    except Exception as exc:  # noqa: BLE001 — an uncaught error exits 1, which reads as LIMITED
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    if note is not None:
        typer.echo(note, err=True)
    code = exit_code_of(answer)
    if as_json:
        print_json(answer)
    else:
        _print(answer, code)
    raise typer.Exit(code)
