"""`wahealth keys`: create, list, rotate, revoke and delete AccessKeys, 360dialog keys, Graph tokens.

Rotating issues a successor and lets the old key work for an overlap (default 24 h);
`keys list` shows both, the old one with its expiry. Rotations and deletions are
recorded in the audit log, as the admin API's are.

Keys are named by kind and id, as `keys list` shows them: `ak:<AccessKey id>`,
`d360:<n>`, `graph:<n>` (a bare AccessKey id is accepted too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.panel import Panel

from wahealth.admin.keys import Keys, key_state
from wahealth.admin.schemas import KeyRotate
from wahealth.auth.tokens import (
    hash_token,
    new_access_key_id,
    new_access_key_secret,
    new_d360_key,
    new_graph_token,
)
from wahealth.cli.admin import Store, cli_caller, keys_app, run
from wahealth.cli.common import (
    EXIT_USAGE,
    Clash,
    ConfigOption,
    JsonOption,
    Missing,
    UsageError,
    console,
    day,
    done,
    fail,
    print_json,
    print_table,
    short,
    when,
)
from wahealth.domain.model import NodeKind
from wahealth.storage.columns import utcnow
from wahealth.storage.credentials import CredentialInfo, CredentialKind
from wahealth.storage.errors import NotFound, UnknownAccount


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
        credentials = store.credentials.with_hasher(store.secretbox().token_hasher())
        info = await credentials.add_d360_key(account, hash_token(secret), phone_number_id, label)
        return NewKey(info, secret)
    secret = new_graph_token()
    credentials = store.credentials.with_hasher(store.secretbox().token_hasher())
    return NewKey(await credentials.add_graph_token(account, hash_token(secret), label), secret)


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

    created = run(config, work)
    if as_json:
        print_json(created.as_json())
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
        "state": key_state(info, utcnow()),
        "label": info.label,
        "phone_number_id": info.phone_number_id,
        "hash_prefix": info.hash_prefix,
        "created_at": when(info.created_at),
        "revoked_at": when(info.revoked_at),
        "expires_at": when(info.expires_at),
    }


def _lifetime(info: CredentialInfo) -> str:
    shown = day(info.created_at)
    if info.revoked_at is not None:
        return f"{shown}\nrevoked\n{day(info.revoked_at)}"
    if info.expires_at is not None:
        state = key_state(info, utcnow())
        return (
            f"{shown}\n{'expires' if state == 'expiring' else 'expired'}\n{short(info.expires_at)}"
        )
    return shown


@keys_app.command("list")
def list_keys(
    account: Annotated[str | None, typer.Option(help="Only this account's keys.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List keys, revoked and expiring ones included; never secrets (--json adds a hash prefix)."""

    async def work(store: Store) -> list[CredentialInfo]:
        if account is not None:
            await store.require_account(account)
        return await store.credentials.list_credentials(account)

    keys = run(config, work)
    if as_json:
        print_json([_key_json(info) for info in keys])
        return
    # Narrow enough for 80 columns: the id says the kind; the hash prefix and the exact
    # times are in --json.
    print_table(
        "keys",
        ["id", "account", "phone / label", "created"],
        [
            [
                key_ref(info),
                info.account,
                "\n".join(part for part in (info.phone_number_id, info.label) if part),
                _lifetime(info),
            ]
            for info in keys
        ],
        whole=["created"],
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
        fail(str(exc), exc.exit_code)

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

    if run(config, work):
        done(f"revoked {ref}")
    else:
        done(f"{ref} was already revoked")


def _canonical_ref(key: str) -> str:
    try:
        kind, key_id = parse_key_ref(key)
    except UsageError as exc:
        fail(str(exc), exc.exit_code)
    return f"{_REF_PREFIX[kind]}:{key_id}"


def parse_duration(text: str) -> int:
    """Seconds in `90`, `90s`, `30m`, `24h` or `2d`; UsageError otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    if not (number.isascii() and number.isdigit()):
        raise UsageError(f"{text!r} is not a duration: use e.g. 0, 90s, 30m, 24h or 2d")
    return int(number) * units[unit]


@keys_app.command("rotate")
def rotate_key(
    key: Annotated[str, typer.Argument(help="Key id as `keys list` shows it, e.g. ak:LTAI….")],
    overlap: Annotated[
        str, typer.Option(help="How long the old key keeps working: 0, 90s, 30m, 24h, 2d.")
    ] = "24h",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a new key (printed once) and let the old one work until the overlap ends."""
    ref = _canonical_ref(key)
    try:
        body = KeyRotate(overlap_seconds=parse_duration(overlap.strip()))
    except (UsageError, ValueError) as exc:
        fail(str(exc).splitlines()[0] if isinstance(exc, UsageError) else
             f"--overlap {overlap}: at most 30 days", EXIT_USAGE)  # fmt: skip

    async def work(store: Store) -> dict[str, Any]:
        try:
            rotation = await Keys(store.admin()).rotate_key(cli_caller(), ref, body)
        except NotFound as exc:
            raise Missing(f"no key {ref}") from exc
        return rotation.model_dump(mode="json")

    rotation = run(config, work)
    if as_json:
        print_json(rotation)
        return
    new, old = rotation["new"], rotation["old"]
    lines = [f"id        {new['id']}", f"account   {new['account']}"]
    if new["access_key_id"]:
        lines += [f"AccessKey id      {new['access_key_id']}", f"AccessKey secret  {new['secret']}"]
    else:
        lines += [f"secret    {new['secret']}"]
    lines += [f"old key   {old['id']} works until {old['expires_at']}"]
    console.print(Panel.fit("\n".join(lines), title="rotated: the new secret is shown once"),
                  highlight=False)  # fmt: skip


@keys_app.command("delete")
def delete_key(
    key: Annotated[str, typer.Argument(help="Key id as `keys list` shows it, e.g. graph:7.")],
    config: ConfigOption = None,
) -> None:
    """Delete a key for good (on a running server within a second); `revoke` keeps a record."""
    ref = _canonical_ref(key)

    async def work(store: Store) -> None:
        try:
            await Keys(store.admin()).delete_key(cli_caller(), ref)
        except NotFound as exc:
            raise Missing(f"no key {ref}") from exc

    run(config, work)
    done(f"deleted {ref}")
