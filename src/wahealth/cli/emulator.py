"""`wahealth emulator`: run the Meta emulator standalone."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from wahealth.cli._app import app
from wahealth.cli.common import EXIT_CONFLICT, EXIT_USAGE
from wahealth.upstream.emulator import ScenarioError, create_emulator, load_scenario

_BACKLOG = 2048  # uvicorn's default


def _bind(host: str, port: int) -> socket.socket:
    # Bind before serving so that `--port 0` can print the port the kernel chose.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before the address is printed: a client that reads it and connects at
        # once is queued until the server accepts, never refused.
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


@app.command()
def emulator(
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file (TOML or YAML); default: the demo.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8081,
) -> None:
    """Serve the Meta Graph API emulator (health_status, catalog edges, batch, admin API)."""
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None  # a configuration error, as for every command
    try:
        sock = _bind(host, port)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_CONFLICT) from None  # as `serve` on a busy address
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound_port}"
    typer.echo(f"Meta emulator listening on {url} (Graph API: {url}/v21.0/<node id>)")
    typer.echo(f"accepted tokens: {', '.join(loaded.every_token)}")
    typer.echo(f"admin API: {url}/_emulator/ (see docs/emulator.md)")
    config = uvicorn.Config(create_emulator(loaded), log_level="warning", ws="none", lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
