"""`wahealth accounts|spaces|keys`: manage tenants and credentials in the configured storage.

Every command migrates the database first and then changes it directly; no
server needs to run. A running server caches credential lookups for one second,
so a revoked key or a disabled account stops working there within a second,
without a restart. Secrets are printed once, when created, and never again:
AccessKey secrets are stored encrypted with the master key, 360dialog keys and
Graph tokens only as hashes.

Keys are named by kind and id, as `keys list` shows them: `ak:<AccessKey id>`,
`d360:<n>`, `graph:<n>` (a bare AccessKey id is accepted too).

Exit codes: 0 done; 1 not found (account, space, key, phone number); 2 usage or
configuration error (bad option, invalid config, unreachable storage);
3 conflict (already exists, or belongs to another account or space).
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from alembic.util import CommandError
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.auth.tokens import (
    hash_token,
    new_access_key_id,
    new_access_key_secret,
    new_d360_key,
    new_graph_token,
)
from wahealth.cli._app import app
from wahealth.cli.common import ConfigOption, console, err_console, settings_from
from wahealth.domain.model import NodeKind
from wahealth.settings import Settings
from wahealth.storage import (
    CatalogRepository,
    CredentialRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.storage.credentials import CredentialInfo, CredentialKind
from wahealth.storage.errors import Conflict, NotFound, StorageError, UnknownAccount

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3

T = TypeVar("T")

accounts_app = typer.Typer(no_args_is_help=True, help="Rate-limited accounts (tenants).")
spaces_app = typer.Typer(no_args_is_help=True, help="Spaces (CustSpaceId) and their WABAs.")
keys_app = typer.Typer(no_args_is_help=True, help="AccessKeys, 360dialog keys and Graph tokens.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(spaces_app, name="spaces")
app.add_typer(keys_app, name="keys")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class KeyKind(enum.StrEnum):
    """Credential kinds as users name them."""

    ACCESS_KEY = "access-key"
    D360 = "d360"
    GRAPH = "graph"


_STORED_KIND = {
    KeyKind.ACCESS_KEY: CredentialKind.ACCESS_KEY,
    KeyKind.D360: CredentialKind.D360_KEY,
    KeyKind.GRAPH: CredentialKind.GRAPH_TOKEN,
}
_USER_KIND = {stored: user for user, stored in _STORED_KIND.items()}
_REF_PREFIX = {KeyKind.ACCESS_KEY: "ak", KeyKind.D360: "d360", KeyKind.GRAPH: "graph"}
_PREFIX_KIND = {prefix: kind for kind, prefix in _REF_PREFIX.items()}
_PANEL_TITLES = {
    KeyKind.ACCESS_KEY: "new AccessKey: the secret is shown once, stored encrypted",
    KeyKind.D360: "new 360dialog key: shown once, stored only as a hash",
    KeyKind.GRAPH: "new Graph token: shown once, stored only as a hash",
}


class AdminError(Exception):
    """A refusal of this command line, shown as one line with its exit code."""

    exit_code = EXIT_USAGE


class UsageError(AdminError):
    """The command line asks for something that cannot mean anything."""


class Missing(AdminError):
    """Something the command names does not exist."""

    exit_code = EXIT_NOT_FOUND


class Clash(AdminError):
    """Something the command would create exists already, or belongs to someone else."""

    exit_code = EXIT_CONFLICT


def key_ref(info: CredentialInfo) -> str:
    """The id users see and give back to `keys revoke`: `ak:LTAI...`, `d360:3`, `graph:7`."""
    return f"{_REF_PREFIX[_USER_KIND[info.kind]]}:{info.id}"


def parse_key_ref(ref: str) -> tuple[KeyKind, str]:
    """The kind and stored id named by `ref`; UsageError when it names nothing unambiguously."""
    prefix, colon, rest = ref.strip().partition(":")
    kind = _PREFIX_KIND.get(prefix) if colon else None
    if kind is not None and rest and (kind is KeyKind.ACCESS_KEY or rest.isdigit()):
        return kind, rest
    if not colon and prefix and not prefix.isdigit():
        return KeyKind.ACCESS_KEY, prefix  # a bare AccessKey id, as SDK configs show it
    raise UsageError(
        f"{ref!r} is not a key id; use one `keys list` shows: ak:ID, d360:N or graph:N"
    )


@dataclass(frozen=True, slots=True)
class Store:
    """The repositories of the configured database, for one command."""

    settings: Settings
    tenancy: TenancyRepository
    credentials: CredentialRepository
    catalog: CatalogRepository

    def secretbox(self) -> SecretBox:
        """The master key the server uses (created if missing, as the server would)."""
        return SecretBox.load(
            os.environ.get("WAHEALTH_MASTER_KEY"), self.settings.security.master_key_file
        )

    async def require_account(self, name: str) -> None:
        if await self.tenancy.get_account(name) is None:
            raise UnknownAccount(name)


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    url = settings.storage.url
    await upgrade(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        return await work(
            Store(
                settings,
                TenancyRepository(sessions),
                CredentialRepository(sessions),
                CatalogRepository(sessions),
            )
        )
    finally:
        await engine.dispose()


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, however narrow the terminal, then exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _run(config: ConfigOption, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work` against the configured storage, turning every failure into one line."""
    settings = settings_from(config)
    try:
        return asyncio.run(_with_store(settings, work))
    except NotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except Conflict as exc:
        fail(str(exc), EXIT_CONFLICT)
    except AdminError as exc:
        fail(str(exc), exc.exit_code)
    except SecretBoxError as exc:
        fail(f"master key: {exc}", EXIT_USAGE)
    except (StorageError, SQLAlchemyError, CommandError, OSError) as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        where = make_url(settings.storage.url).render_as_string(hide_password=True)
        fail(f"storage {where}: {first_line}", EXIT_USAGE)


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _short(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _print_table(title: str, columns: Sequence[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for position, column in enumerate(columns):
        # The first column is the id users copy into other commands: never break it.
        table.add_column(column, overflow="fold", no_wrap=position == 0)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _done(message: str) -> None:
    console.print(message, highlight=False)


# --- accounts -------------------------------------------------------------------------------


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

    _done(f"created account {name} ({_run(config, work)} requests/s)")


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
                "created_at": _when(account.created_at),
                "disabled_at": _when(account.disabled_at),
                "spaces": [space.id for space in spaces if space.account == account.name],
                "live_keys": sum(1 for k in keys if k.account == account.name and not k.revoked),
            }
            for account in await store.tenancy.list_accounts()
        ]

    accounts = _run(config, work)
    if as_json:
        _print_json(accounts)
        return
    _print_table(
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

    if _run(config, work):
        _done(f"disabled account {name}: its keys no longer authenticate")
    else:
        _done(f"account {name} was already disabled")


@accounts_app.command("enable")
def enable_account(
    name: Annotated[str, typer.Argument(help="Account name.")], config: ConfigOption = None
) -> None:
    """Enable a disabled account again (its keys that were not revoked work again)."""

    async def work(store: Store) -> None:
        await store.tenancy.enable_account(name)

    _run(config, work)
    _done(f"account {name} is enabled")


# --- spaces ---------------------------------------------------------------------------------


@spaces_app.command("create")
def create_space(
    space_id: Annotated[str, typer.Argument(help="The space id (CAMS CustSpaceId).")],
    account: Annotated[str, typer.Option(help="The owning account.")],
    waba: Annotated[
        list[str] | None, typer.Option(help="A WABA id to place in the space (repeatable).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a space owned by an account, with its WABAs.

    Spaces cannot be deleted or moved: their WABAs' history and alerts refer to them.
    Disable the owning account instead.
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
        await store.tenancy.upsert_space(space_id, account)
        for waba_id in wabas:
            await store.tenancy.upsert_waba(waba_id, space_id)

    _run(config, work)
    placed = f" with WABAs {', '.join(wabas)}" if wabas else ""
    _done(f"created space {space_id} for account {account}{placed}")


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
                "created_at": _when(space.created_at),
            }
            for space in await store.tenancy.list_spaces(account)
        ]

    spaces = _run(config, work)
    if as_json:
        _print_json(spaces)
        return
    _print_table(
        "spaces",
        ["space", "account", "WABAs", "created (UTC)"],
        [
            [s["id"], s["account"], ", ".join(s["wabas"]), s["created_at"][:16].replace("T", " ")]
            for s in spaces
        ],
    )


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the only moment its secret exists outside the caller's hands."""

    info: CredentialInfo
    secret: str

    def as_json(self) -> dict[str, Any]:
        shown = _key_json(self.info)
        if self.info.kind is CredentialKind.ACCESS_KEY:
            shown["access_key_id"] = self.info.id
        shown["secret"] = self.secret
        return shown


async def _check_phone_number(
    store: Store, account: str, phone_number_id: str, *, allow_unsynced: bool
) -> None:
    """A 360dialog key answers for its number, so the number must be the account's own."""
    found = [
        node
        for node in await store.catalog.all_nodes(include_disabled=True)
        if node.node_id == phone_number_id
    ]
    for node in found:
        if node.kind is not NodeKind.PHONE_NUMBER:
            raise UsageError(f"{phone_number_id} is a {node.kind.value}, not a phone number")
        owner = await store.tenancy.account_of_space(node.space_id)
        if owner != account:
            raise Clash(f"phone number {phone_number_id} belongs to account {owner!r}")
    if not found and not allow_unsynced:
        raise Missing(
            f"phone number {phone_number_id} is not in the synced catalog; start the server "
            "once to sync the account's WABAs, or pass --allow-unsynced"
        )


async def _create_key(
    store: Store,
    account: str,
    kind: KeyKind,
    phone_number_id: str | None,
    label: str | None,
    allow_unsynced: bool,
) -> NewKey:
    found = await store.tenancy.get_account(account)
    if found is None:
        raise UnknownAccount(account)
    if found.disabled:
        raise Clash(f"account {account!r} is disabled; `wahealth accounts enable` it first")
    if kind is KeyKind.ACCESS_KEY:
        key_id, secret = new_access_key_id(), new_access_key_secret()
        encrypted = store.secretbox().encrypt(secret)
        return NewKey(await store.credentials.add_access_key(account, key_id, encrypted), secret)
    if kind is KeyKind.D360:
        assert phone_number_id is not None
        await _check_phone_number(store, account, phone_number_id, allow_unsynced=allow_unsynced)
        secret = new_d360_key()
        info = await store.credentials.add_d360_key(
            account, hash_token(secret), phone_number_id, label
        )
        return NewKey(info, secret)
    secret = new_graph_token()
    return NewKey(
        await store.credentials.add_graph_token(account, hash_token(secret), label), secret
    )


@keys_app.command("create")
def create_key(
    account: Annotated[str, typer.Option(help="The owning account.")],
    kind: Annotated[KeyKind, typer.Option(case_sensitive=False, help="What kind of key.")],
    phone_number_id: Annotated[
        str | None, typer.Option(help="d360 only: the phone number id the key answers for.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="A note shown in `keys list` (not for access keys).")
    ] = None,
    allow_unsynced: Annotated[
        bool,
        typer.Option(
            help="d360 only: accept a phone number id the catalog has not synced yet "
            "(the server syncs its WABAs at start)."
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print its secret once; only a hash or ciphertext is stored."""
    if (kind is KeyKind.D360) != (phone_number_id is not None):
        fail("--phone-number-id is required for d360 keys and only for them", EXIT_USAGE)
    if kind is KeyKind.ACCESS_KEY and label is not None:
        fail("access keys have no label; their id is what SDKs are configured with", EXIT_USAGE)
    if kind is not KeyKind.D360 and allow_unsynced:
        fail("--allow-unsynced is for d360 keys only", EXIT_USAGE)

    async def work(store: Store) -> NewKey:
        return await _create_key(store, account, kind, phone_number_id, label, allow_unsynced)

    created = _run(config, work)
    if as_json:
        _print_json(created.as_json())
        return
    info = created.info
    lines = [f"id        {key_ref(info)}", f"account   {info.account}"]
    if info.kind is CredentialKind.ACCESS_KEY:
        lines += [f"AccessKey id      {info.id}", f"AccessKey secret  {created.secret}"]
    elif info.kind is CredentialKind.D360_KEY:
        lines += [f"phone     {info.phone_number_id}", f"D360-API-KEY  {created.secret}"]
    else:
        lines += [f"Graph token  {created.secret}"]
    console.print(Panel.fit("\n".join(lines), title=_PANEL_TITLES[kind]), highlight=False)


def _key_json(info: CredentialInfo) -> dict[str, Any]:
    return {
        "id": key_ref(info),
        "kind": _USER_KIND[info.kind].value,
        "account": info.account,
        "label": info.label,
        "phone_number_id": info.phone_number_id,
        "hash_prefix": info.hash_prefix,
        "created_at": _when(info.created_at),
        "revoked_at": _when(info.revoked_at),
    }


@keys_app.command("list")
def list_keys(
    account: Annotated[str | None, typer.Option(help="Only this account's keys.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List keys, revoked ones included; never secrets, only a hash prefix."""

    async def work(store: Store) -> list[CredentialInfo]:
        if account is not None:
            await store.require_account(account)
        return await store.credentials.list_credentials(account)

    keys = _run(config, work)
    if as_json:
        _print_json([_key_json(info) for info in keys])
        return
    _print_table(
        "keys",
        ["id", "account", "kind", "label", "phone", "hash", "created", "revoked"],
        [
            [
                key_ref(info),
                info.account,
                _USER_KIND[info.kind].value,
                info.label or "",
                info.phone_number_id or "",
                info.hash_prefix or "",
                _short(info.created_at),
                _short(info.revoked_at),
            ]
            for info in keys
        ],
    )


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="Key id as `keys list` shows it, e.g. graph:7.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key for good (on a running server within a second)."""
    try:
        kind, key_id = parse_key_ref(key)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)

    ref = f"{_REF_PREFIX[kind]}:{key_id}"

    async def work(store: Store) -> bool:
        try:
            if kind is KeyKind.ACCESS_KEY:
                return await store.credentials.revoke_access_key(key_id)
            if kind is KeyKind.D360:
                return await store.credentials.revoke_d360_key(int(key_id))
            return await store.credentials.revoke_graph_token(int(key_id))
        except NotFound as exc:
            raise Missing(f"no key {ref}") from exc

    if _run(config, work):
        _done(f"revoked {ref}")
    else:
        _done(f"{ref} was already revoked")
