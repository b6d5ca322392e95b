"""The `wahealth` command line: one module per group of commands."""

from __future__ import annotations

# Importing a command module registers its commands; `admin` registers the
# accounts, spaces and keys groups together, before `alerts`.
from wahealth.cli import (  # noqa: F401
    accounts,
    admin_tokens,
    alerts,
    check,
    connections,
    emulator,
    gate,
    keys,
    monitor,
    serve,
    spaces,
)
from wahealth.cli._app import app
from wahealth.logs import configure_logging


def main() -> None:
    configure_logging()
    app()
