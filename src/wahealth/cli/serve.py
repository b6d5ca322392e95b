"""`wahealth serve`: run the gateway."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from wahealth.cli._app import app
from wahealth.cli.common import ConfigOption, console, fail, settings_from
from wahealth.settings import Settings


async def _prepare(settings: Settings) -> None:
    """Migrate, apply the config and show new demo credentials once, before workers start."""
    from wahealth.app import prepare_storage

    created = await prepare_storage(settings)
    if created is None:
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
    from granian import Granian
    from granian.constants import Interfaces

    settings = settings_from(config)
    updates = {
        k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None
    }
    if updates:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update=updates)}
        )
    server = settings.server
    if server.workers > 1 and (
        settings.ratelimit.url.startswith("memory") or settings.cache.url.startswith("memory")
    ):
        fail(
            "more than one worker needs shared backends: set ratelimit.url and cache.url to redis://"
        )
    try:
        asyncio.run(_prepare(settings))
    except Exception as exc:  # noqa: BLE001 — one clear line instead of a traceback
        fail(f"cannot prepare storage: {exc}")
    # Workers load settings the usual way (file + environment); pass our choices through both.
    if settings.config_file is not None:
        os.environ["WAHEALTH_CONFIG"] = str(settings.config_file)
    for name, value in updates.items():
        os.environ[f"WAHEALTH_SERVER__{name.upper()}"] = str(value)
    console.print(f"wahealth listening on http://{server.host}:{server.port}", highlight=False)
    Granian(
        "wahealth.app:app_from_environment",
        address=server.host,
        port=server.port,
        interface=Interfaces.ASGI,
        workers=server.workers,
        factory=True,
        log_access=False,
    ).serve()
