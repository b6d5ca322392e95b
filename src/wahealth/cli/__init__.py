"""The `wahealth` command line: one module per group of commands."""

from __future__ import annotations

from wahealth.cli import check, emulator, serve  # noqa: F401  (registers commands)
from wahealth.cli._app import app


def main() -> None:
    app()
