"""`wahealth serve`: run the gateway."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Annotated

import typer

from wahealth.bootstrap import DEMO_ACCOUNT, DEMO_PHONE_NUMBER_ID, DEMO_SPACE
from wahealth.cli._app import app
from wahealth.cli.common import EXIT_CONFLICT, ConfigOption, console, fail, settings_from
from wahealth.logs import configure_logging
from wahealth.server import command
from wahealth.settings import Settings


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why_not_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port alone (in use, say); None when it can.

    granian sets SO_REUSEPORT, so a second server on a busy port would start and
    silently share its traffic with the first. This probe binds without
    SO_REUSEPORT, which fails on any listener, that one included. SO_REUSEADDR
    keeps a restart working while the old server's connections sit in TIME_WAIT.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror}"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _new_keys_hint(settings: Settings) -> str:
    """What to run for new demo credentials, once those shown at the first start are gone."""
    command = "wahealth keys create"
    if settings.config_file is not None:
        command += f" --config {settings.config_file}"
    command += f" --account {DEMO_ACCOUNT}"
    return (
        f"Demo credentials (account {DEMO_ACCOUNT}, space {DEMO_SPACE}) were shown at the "
        "first start only; to create new ones:\n"
        f"  {command} --kind graph  (or --kind access-key, or --kind d360 "
        f"--phone-number-id {DEMO_PHONE_NUMBER_ID})"
    )


async def _prepare(settings: Settings) -> None:
    """Migrate, apply the config and show new demo credentials once, before workers start.

    After the first start the demo's credentials exist only hashed or encrypted, so a
    restart says how to create new ones instead.
    """
    from wahealth.app import prepare_storage

    created = await prepare_storage(settings)
    if created is None:
        if settings.embedded:
            console.print(_new_keys_hint(settings), highlight=False, soft_wrap=True)
        return
    url = f"http://{settings.server.host}:{settings.server.port}"
    lines = [
        "[bold]Demo credentials[/] (shown once; stored only encrypted or hashed):",
        f"  account           {created.account}  (space demo-space)",
        f"  AccessKey id      {created.access_key_id}",
        f"  AccessKey secret  {created.access_key_secret}",
        f"  D360-API-KEY      {created.d360_key}  (phone number id {created.d360_phone_number_id})",
        f"  Graph token       {created.graph_token}",
        "Try:",
        f"  curl -H 'D360-API-KEY: {created.d360_key}' {url}/health_status",
        f"  curl -H 'Authorization: Bearer {created.graph_token}' "
        f"'{url}/v21.0/2632273056924580?fields=health_status'",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Run the gateway (CAMS, 360dialog and Graph dialects) on granian."""
    settings = settings_from(config)
    updates = {
        k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None
    }
    if updates:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update=updates)}
        )
    server = settings.server
    configure_logging(server.log_level)  # the workers do the same (`app_from_environment`)
    if server.workers > 1 and (
        settings.ratelimit.url.startswith("memory") or settings.cache.url.startswith("memory")
    ):
        fail(
            "more than one worker needs shared backends: set ratelimit.url and cache.url to redis://"
        )
    # Before storage is prepared: a server that cannot start must not create (and show)
    # the demo credentials.
    if (why := _why_not_listen(server.host, server.port)) is not None:
        fail(f"cannot listen on {_shown(server.host, server.port)}: {why}", EXIT_CONFLICT)
    from wahealth.master_key import MasterKeyRefused

    try:
        asyncio.run(_prepare(settings))
    except MasterKeyRefused as exc:
        fail(f"refusing to start: {exc}")
    except Exception as exc:  # noqa: BLE001 — one clear line instead of a traceback
        fail(f"cannot prepare storage: {exc}")
    # Workers load settings the usual way (file + environment); pass our choices through both.
    if settings.config_file is not None:
        os.environ["WAHEALTH_CONFIG"] = str(settings.config_file)
    for name, value in updates.items():
        os.environ[f"WAHEALTH_SERVER__{name.upper()}"] = str(value)
    console.print(f"wahealth listening on http://{server.host}:{server.port}", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    # The same process, now holding granian only (see `wahealth.server`).
    argv = command(
        server.host, server.port, server.workers, settings.metrics.mode, server.drain_seconds
    )
    os.execv(argv[0], argv)  # noqa: S606 — our own interpreter and module, no shell
