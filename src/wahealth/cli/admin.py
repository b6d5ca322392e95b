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

This module holds what the three groups share; the commands live in
`accounts`, `spaces` and `keys`.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import typer

from wahealth.admin.errors import AdminError
from wahealth.admin.service import AdminStores
from wahealth.admin.tokens import Caller
from wahealth.auth.secretbox import SecretBox
from wahealth.cli._app import app
from wahealth.cli.common import (
    ConfigOption,
    Sessions,
    UsageError,
    master_key,
    run_on_storage,
    settings_from,
)
from wahealth.settings import Settings
from wahealth.storage import CatalogRepository, CredentialRepository, TenancyRepository
from wahealth.storage.admin import AuditLog
from wahealth.storage.deletion import Deletion
from wahealth.storage.errors import UnknownAccount
from wahealth.storage.key_lifecycle import KeyLifecycle
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.purge import Purge

T = TypeVar("T")

# Registered here, together, so that `wahealth --help` lists the groups in this order.
accounts_app = typer.Typer(no_args_is_help=True, help="Rate-limited accounts (tenants).")
spaces_app = typer.Typer(no_args_is_help=True, help="Spaces (CustSpaceId) and their WABAs.")
keys_app = typer.Typer(no_args_is_help=True, help="AccessKeys, 360dialog keys and Graph tokens.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(spaces_app, name="spaces")
app.add_typer(keys_app, name="keys")


@dataclass(frozen=True, slots=True)
class Store:
    """The repositories of the configured database, for one command."""

    settings: Settings
    tenancy: TenancyRepository
    credentials: CredentialRepository
    catalog: CatalogRepository
    sessions: Sessions

    @classmethod
    def open(cls, settings: Settings, sessions: Sessions) -> Store:
        return cls(
            settings,
            TenancyRepository(sessions),
            CredentialRepository(sessions),
            CatalogRepository(sessions),
            sessions,
        )

    def admin(self) -> AdminStores:
        """What the admin use cases (shared with the admin API) work on; changes are audited."""
        secretbox = self.secretbox()
        hasher = secretbox.token_hasher()
        return AdminStores(
            tenancy=self.tenancy,
            credentials=self.credentials.with_hasher(hasher),
            lifecycle=KeyLifecycle(self.sessions, hasher),
            deletion=Deletion(self.sessions),
            purge=Purge(self.sessions),
            catalog=self.catalog,
            audit=AuditLog(self.sessions),
            secretbox=secretbox,
            default_qps=self.settings.ratelimit.default_qps,
            outbox=OutboxRepository(self.sessions),
        )

    def secretbox(self) -> SecretBox:
        """The master key the server uses (created if missing, as the server would)."""
        return master_key(self.settings)

    async def require_account(self, name: str) -> None:
        if await self.tenancy.get_account(name) is None:
            raise UnknownAccount(name)


def cli_caller() -> Caller:
    """Who the audit log says made a change from the command line: the operator."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Caller(f"cli:{user}", None)


def run(config: ConfigOption, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work` against the configured storage, turning every failure into one line."""
    settings = settings_from(config)

    async def guarded(sessions: Sessions) -> T:
        try:
            return await work(Store.open(settings, sessions))
        except AdminError as exc:
            raise UsageError(str(exc)) from exc

    return run_on_storage(settings, guarded)
