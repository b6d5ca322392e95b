"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="wahealth: WhatsApp Business messaging health.",
    pretty_exceptions_enable=False,
)
