"""`wahealth admin-tokens`: create, list and revoke the bearer tokens of the admin API.

A token is printed once, when created; only a keyed hash of it is stored. A token
made with `--account` manages that account only (its spaces, keys and audit log).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel

from wahealth.admin.tokens import AdminTokens
from wahealth.cli._app import app
from wahealth.cli.admin import Store, cli_caller, run
from wahealth.cli.common import (
    ConfigOption,
    JsonOption,
    Missing,
    console,
    done,
    print_json,
    print_table,
    short,
    when,
)
from wahealth.storage.admin import AdminToken, AdminTokenRepository, AuditLog
from wahealth.storage.errors import NotFound

admin_tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the admin API.")
app.add_typer(admin_tokens_app, name="admin-tokens")


def _tokens(store: Store) -> AdminTokens:
    return AdminTokens(AdminTokenRepository(store.sessions), store.secretbox().token_hasher())


@admin_tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="Who or what uses it, e.g. `portal`.")],
    account: Annotated[
        str | None, typer.Option(help="Manage only this account (default: every account).")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an admin token and print it once; only its keyed hash is stored."""

    async def work(store: Store) -> tuple[int, str]:
        token_id, token = await _tokens(store).issue(name, account)
        await AuditLog(store.sessions).record(
            cli_caller().actor,
            "admin_token.create",
            f"admin-token:{token_id}",
            account=account,
            details={"name": name},
        )
        return token_id, token

    token_id, token = run(config, work)
    if as_json:
        print_json({"id": token_id, "name": name, "account": account, "token": token})
        return
    scope = f"account {account}" if account else "every account"
    console.print(
        Panel.fit(
            f"id      {token_id}\nmanages {scope}\ntoken   {token}",
            title="new admin token: shown once, stored only as a hash",
        ),
        highlight=False,
    )


@admin_tokens_app.command("list")
def list_tokens(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List admin tokens (never the tokens themselves)."""

    async def work(store: Store) -> list[AdminToken]:
        return await _tokens(store).list()

    tokens = run(config, work)
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "account": t.account,
                    "created_at": when(t.created_at),
                    "revoked_at": when(t.revoked_at),
                }
                for t in tokens
            ]
        )
        return
    print_table(
        "admin tokens",
        ["id", "name", "manages", "created (UTC)", "revoked (UTC)"],
        [
            [
                str(t.id),
                t.name,
                t.account or "every account",
                short(t.created_at),
                short(t.revoked_at),
            ]
            for t in tokens
        ],
    )


@admin_tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="The token's id, as `list` shows it.")],
    config: ConfigOption = None,
) -> None:
    """Revoke an admin token at once."""

    async def work(store: Store) -> bool:
        try:
            revoked = await _tokens(store).revoke(token_id)
        except NotFound as exc:
            raise Missing(f"no admin token {token_id}") from exc
        if revoked:
            await AuditLog(store.sessions).record(
                cli_caller().actor, "admin_token.revoke", f"admin-token:{token_id}"
            )
        return revoked

    if run(config, work):
        done(f"revoked admin token {token_id}")
    else:
        done(f"admin token {token_id} was already revoked")
