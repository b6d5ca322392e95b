"""Helpers shared by the command modules: settings, consoles, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from wahealth.settings import ConfigError, Settings, load_settings

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $WAHEALTH_CONFIG, else the embedded demo set-up).",
        exists=False,
        dir_okay=False,
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit; never a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def settings_from(config: Path | None) -> Settings:
    """Settings from --config, $WAHEALTH_CONFIG, or none."""
    path = config or (Path(p) if (p := os.environ.get("WAHEALTH_CONFIG")) else None)
    try:
        return load_settings(path)
    except ConfigError as exc:
        fail(str(exc))
