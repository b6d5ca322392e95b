"""`wahealth accounts`: create, list, update, disable, enable and delete accounts (tenants).

Updates and deletions go through the same use cases as the admin API, so they are
recorded in its audit log (the actor is `cli:<user>`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from wahealth.admin.schemas import MAX_QPS, AccountDeleted, AccountUpdate
from wahealth.admin.service import Tenants
from wahealth.cli.admin import Store, accounts_app, cli_caller, run
from wahealth.cli.common import (
    EXIT_USAGE,
    Clash,
    ConfigOption,
    JsonOption,
    done,
    fail,
    print_json,
    print_table,
    when,
)


@accounts_app.command("create")
def create_account(
    name: Annotated[str, typer.Argument(help="Account name, unique.")],
    qps: Annotated[
        int | None,
        typer.Option(min=1, help="Requests per second (default: ratelimit.default_qps)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create an account; its keys share one rate limit across all dialects."""
    if not name.strip():
        fail("the account name must not be empty", EXIT_USAGE)

    async def work(store: Store) -> int:
        if await store.tenancy.get_account(name) is not None:
            raise Clash(f"account {name!r} already exists")
        limit = qps or store.settings.ratelimit.default_qps
        return (await store.tenancy.upsert_account(name, limit)).qps

    done(f"created account {name} ({run(config, work)} requests/s)")


@accounts_app.command("list")
def list_accounts(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List accounts with their limit, spaces and live keys."""

    async def work(store: Store) -> list[dict[str, Any]]:
        spaces = await store.tenancy.list_spaces()
        keys = await store.credentials.list_credentials()
        return [
            {
                "name": account.name,
                "qps": account.qps,
                "disabled": account.disabled,
                "created_at": when(account.created_at),
                "disabled_at": when(account.disabled_at),
                "spaces": [space.id for space in spaces if space.account == account.name],
                "live_keys": sum(1 for k in keys if k.account == account.name and not k.revoked),
            }
            for account in await store.tenancy.list_accounts()
        ]

    accounts = run(config, work)
    if as_json:
        print_json(accounts)
        return
    print_table(
        "accounts",
        ["name", "qps", "state", "spaces", "live keys", "created (UTC)"],
        [
            [
                a["name"],
                str(a["qps"]),
                "disabled" if a["disabled"] else "active",
                ", ".join(a["spaces"]),
                str(a["live_keys"]),
                a["created_at"][:16].replace("T", " "),
            ]
            for a in accounts
        ],
    )


@accounts_app.command("revoke")
def revoke_account(
    name: Annotated[str, typer.Argument(help="Account name.")], config: ConfigOption = None
) -> None:
    """Disable an account: all its keys stop working (on a running server within a second)."""

    async def work(store: Store) -> bool:
        before = await store.tenancy.get_account(name)
        after = await store.tenancy.disable_account(name)
        return before is not None and not before.disabled and after.disabled

    if run(config, work):
        done(f"disabled account {name}: its keys no longer authenticate")
    else:
        done(f"account {name} was already disabled")


@accounts_app.command("enable")
def enable_account(
    name: Annotated[str, typer.Argument(help="Account name.")], config: ConfigOption = None
) -> None:
    """Enable a disabled account again (its keys that were not revoked work again)."""

    async def work(store: Store) -> None:
        await store.tenancy.enable_account(name)

    run(config, work)
    done(f"account {name} is enabled")


@accounts_app.command("update")
def update_account(
    name: Annotated[str, typer.Argument(help="Account name.")],
    qps: Annotated[int, typer.Option(min=1, max=MAX_QPS, help="Requests per second.")],
    config: ConfigOption = None,
) -> None:
    """Change an account's rate limit (a running server applies it within a second)."""

    async def work(store: Store) -> int:
        shown = await Tenants(store.admin()).update_account(
            cli_caller(), name, AccountUpdate(qps=qps)
        )
        return shown.qps

    done(f"account {name}: {run(config, work)} requests/s")


@accounts_app.command("delete")
def delete_account(
    name: Annotated[str, typer.Argument(help="Account name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it.")] = False,
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Also remove its keys, history, node health and alerts for good "
            "(also for an account deleted before).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Delete an account: every key of it is revoked at once and each of its spaces deleted.

    Its history and alerts are kept for the retention period (`[retention] history_days`),
    then purged; `--purge` removes them now. An account in the config file comes back
    (with its keys still revoked) at the next start of the server: remove it there too.
    """
    if not yes:
        fail(f"deleting account {name} revokes all its keys; pass --yes to do it", EXIT_USAGE)

    async def work(store: Store) -> AccountDeleted:
        return await Tenants(store.admin()).delete_account(cli_caller(), name, purge)

    deleted = run(config, work)
    shown = f", spaces {', '.join(deleted.spaces)} deleted" if deleted.spaces else ""
    if deleted.purged is None or deleted.revoked_keys or deleted.spaces:
        done(f"deleted account {name}: {deleted.revoked_keys} keys revoked{shown}")
    if deleted.purged is not None:
        p = deleted.purged
        done(
            f"purged account {name}: {p.keys} keys, {p.transitions} transitions, "
            f"{p.nodes} nodes' health and {p.alerts} alerts removed"
        )
