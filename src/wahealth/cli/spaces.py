"""`wahealth spaces`: create, list and delete spaces (CAMS CustSpaceId), add and remove WABAs.

Adding, removing and deleting go through the same use cases as the admin API and are
recorded in its audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from wahealth.admin.schemas import SpaceDeleted
from wahealth.admin.service import Tenants
from wahealth.cli.admin import Store, cli_caller, run, spaces_app
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

BadgesOption = Annotated[
    bool | None,
    typer.Option(
        "--badges/--no-badges",
        help="Serve public SVG badges of the space's nodes (/badge/<node id>.svg).",
    ),
]
PublicStatusOption = Annotated[
    bool | None,
    typer.Option(
        "--public-status/--no-public-status",
        help="Serve the space's public status page (/status/<space id>).",
    ),
]


@spaces_app.command("create")
def create_space(
    space_id: Annotated[str, typer.Argument(help="The space id (CAMS CustSpaceId).")],
    account: Annotated[str, typer.Option(help="The owning account.")],
    waba: Annotated[
        list[str] | None, typer.Option(help="A WABA id to place in the space (repeatable).")
    ] = None,
    badges: BadgesOption = None,
    public_status: PublicStatusOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a space owned by an account, with its WABAs (its public views off unless asked).

    Spaces cannot be moved to another account: their WABAs' history and alerts refer to
    them. `spaces delete` ends one (its history is kept).
    """
    if not space_id.strip():
        fail("the space id must not be empty", EXIT_USAGE)
    wabas = list(dict.fromkeys(waba or []))

    async def work(store: Store) -> None:
        await store.require_account(account)
        owner = await store.tenancy.account_of_space(space_id)
        if owner is not None:
            raise Clash(f"space {space_id!r} already exists (account {owner!r})")
        # Check every WABA before writing anything, so a refusal leaves no half-made space.
        for waba_id in wabas:
            current = await store.tenancy.space_of_waba(waba_id)
            if current is not None:
                raise Clash(f"WABA {waba_id!r} is already in space {current!r}")
        await store.tenancy.upsert_space(
            space_id, account, badges=badges, public_status=public_status
        )
        for waba_id in wabas:
            await store.tenancy.upsert_waba(waba_id, space_id)

    run(config, work)
    placed = f" with WABAs {', '.join(wabas)}" if wabas else ""
    done(f"created space {space_id} for account {account}{placed}")


def _views(badges: bool, public_status: bool) -> str:
    shown = [name for name, on in (("badges", badges), ("status page", public_status)) if on]
    return ", ".join(shown) or "none"


@spaces_app.command("set")
def set_space(
    space_id: Annotated[str, typer.Argument(help="The space id (CAMS CustSpaceId).")],
    badges: BadgesOption = None,
    public_status: PublicStatusOption = None,
    config: ConfigOption = None,
) -> None:
    """Turn a space's public views on or off: its nodes' badges and its status page.

    A space in the config file with `badges` or `public_status` set gets that value
    again at each start of the server.
    """
    if badges is None and public_status is None:
        fail("nothing to set: give --badges/--no-badges or --public-status/--no-public-status",
             EXIT_USAGE)  # fmt: skip

    async def work(store: Store) -> tuple[bool, bool]:
        space = await store.tenancy.set_space_options(
            space_id, badges=badges, public_status=public_status
        )
        return space.badges, space.public_status

    shown = run(config, work)
    done(f"space {space_id}: public views {_views(*shown)}")


@spaces_app.command("list")
def list_spaces(
    account: Annotated[str | None, typer.Option(help="Only this account's spaces.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List spaces, their owners and WABAs."""

    async def work(store: Store) -> list[dict[str, Any]]:
        if account is not None:
            await store.require_account(account)
        wabas = await store.tenancy.list_wabas()
        return [
            {
                "id": space.id,
                "account": space.account,
                "wabas": [w.id for w in wabas if w.space_id == space.id],
                "badges": space.badges,
                "public_status": space.public_status,
                "created_at": when(space.created_at),
            }
            for space in await store.tenancy.list_spaces(account)
        ]

    spaces = run(config, work)
    if as_json:
        print_json(spaces)
        return
    print_table(
        "spaces",
        ["space", "account", "WABAs", "public views", "created (UTC)"],
        [
            [
                s["id"],
                s["account"],
                ", ".join(s["wabas"]),
                _views(s["badges"], s["public_status"]),
                s["created_at"][:16].replace("T", " "),
            ]
            for s in spaces
        ],
    )


SpaceArgument = Annotated[str, typer.Argument(help="The space id (CAMS CustSpaceId).")]
WabaArgument = Annotated[str, typer.Argument(help="The WABA id.")]


@spaces_app.command("add-waba")
def add_waba(space_id: SpaceArgument, waba: WabaArgument, config: ConfigOption = None) -> None:
    """Place a WABA in a space (a running server syncs its numbers on first use)."""

    async def work(store: Store) -> None:
        await Tenants(store.admin()).add_waba(cli_caller(), space_id, waba)

    run(config, work)
    done(f"space {space_id}: added WABA {waba}")


@spaces_app.command("remove-waba")
def remove_waba(space_id: SpaceArgument, waba: WabaArgument, config: ConfigOption = None) -> None:
    """Take a WABA out of a space: its numbers and templates are no longer served or watched."""

    async def work(store: Store) -> None:
        await Tenants(store.admin()).remove_waba(cli_caller(), space_id, waba)

    run(config, work)
    done(f"space {space_id}: removed WABA {waba}")


@spaces_app.command("delete")
def delete_space(
    space_id: SpaceArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it.")] = False,
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Also remove its history, node health, alerts and silences for good "
            "(also for a space deleted before).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Delete a space: its WABAs leave it and its numbers' 360dialog keys are revoked at once.

    Its history and alerts are kept for the retention period (`[retention] history_days`),
    then purged; `--purge` removes them now. A space in the config file comes back at the
    next start of the server: remove it there too.
    """
    if not yes:
        fail(f"deleting space {space_id} takes its WABAs out of it; pass --yes", EXIT_USAGE)

    async def work(store: Store) -> SpaceDeleted:
        return await Tenants(store.admin()).delete_space(cli_caller(), space_id, purge)

    deleted = run(config, work)
    if deleted.account is not None:
        done(
            f"deleted space {space_id}: WABAs {', '.join(deleted.wabas) or 'none'} removed, "
            f"{deleted.revoked_keys} keys revoked"
        )
    if deleted.purged is not None:
        p = deleted.purged
        done(
            f"purged space {space_id}: {p.transitions} transitions, {p.nodes} nodes' health "
            f"and {p.alerts} alerts removed"
        )
