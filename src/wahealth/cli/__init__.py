"""The `wahealth` command line: one module per group of commands."""

from __future__ import annotations

from wahealth.cli import admin, alerts, check, emulator, monitor, serve  # noqa: F401  (registers commands)
from wahealth.cli._app import app
from wahealth.logs import configure_logging


def main() -> None:
    configure_logging()
    app()
