"""The admin use cases, shared by the admin API and the CLI: check, change, audit, forget.

Each change is made by a repository, then recorded in the audit log (who, what, which
account), then the local lookup caches are dropped so this process sees it at once
(other processes within their one-second cache). A caller scoped to one account
manages only that account: asking about another account's space or key answers as
if it did not exist, and what only an operator may do (accounts, rate limits) is
Forbidden.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wahealth.admin import schemas
from wahealth.admin.errors import Forbidden, Invalid
from wahealth.admin.tokens import Caller
from wahealth.auth.secretbox import SecretBox
from wahealth.storage.admin import AuditEntry, AuditLog
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.columns import utcnow
from wahealth.storage.connections import ConnectionRepository
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.deletion import Deletion
from wahealth.storage.errors import (
    Conflict,
    OwnershipConflict,
    UnknownAccount,
    UnknownSpace,
    UnknownWaba,
)
from wahealth.storage.key_lifecycle import KeyLifecycle
from wahealth.storage.outbox import OutboxRepository
from wahealth.storage.purge import Purge
from wahealth.storage.space_upstreams import SpaceUpstreamRepository
from wahealth.storage.tenancy import Account, Space, TenancyRepository


async def _any_target(url: str) -> str | None:
    return None


async def _no_check(name: str) -> None:
    return None


@dataclass
class AdminStores:
    """What the admin use cases work on."""

    tenancy: TenancyRepository
    credentials: CredentialRepository  # keyed by the master key's token hasher
    lifecycle: KeyLifecycle
    deletion: Deletion
    purge: Purge
    catalog: CatalogRepository
    audit: AuditLog
    secretbox: SecretBox
    default_qps: int
    forget: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = utcnow
    outbox: OutboxRepository | None = None
    # Why an alert target may not be used (None: it may); see monitor.targets.
    check_target: Callable[[str], Awaitable[str | None]] = _any_target
    connections: ConnectionRepository | None = None
    # Checks a connection's token with Meta and records the verdict (see monitor.connections).
    check_connection: Callable[[str], Awaitable[None]] = _no_check
    connections_changed: Callable[[], None] = lambda: None
    space_upstreams: SpaceUpstreamRepository | None = None


class AdminBase:
    """Checks and the audit trail every admin use case shares."""

    def __init__(self, stores: AdminStores) -> None:
        self.stores = stores

    async def changed(
        self,
        caller: Caller,
        action: str,
        target: str,
        account: str | None,
        **details: Any,
    ) -> None:
        await self.stores.audit.record(
            caller.actor, action, target, account=account, details=details
        )
        self.stores.forget()

    @staticmethod
    def operator_only(caller: Caller, what: str) -> None:
        if caller.account is not None:
            raise Forbidden(f"{what} needs an operator token; this one manages {caller.account!r}")

    @staticmethod
    def require_manages(caller: Caller, account: str) -> None:
        if not caller.manages(account):
            raise Forbidden(f"this admin token manages account {caller.account!r} only")


class Tenants(AdminBase):
    """Accounts and spaces."""

    async def _account(self, name: str) -> Account:
        found = await self.stores.tenancy.get_account(name)
        if found is None:
            raise UnknownAccount(name)
        return found

    async def _shown_account(self, account: Account) -> schemas.Account:
        spaces = await self.stores.tenancy.list_spaces(account.name)
        return schemas.Account(
            name=account.name,
            qps=account.qps,
            disabled=account.disabled,
            created_at=account.created_at,
            disabled_at=account.disabled_at,
            spaces=[space.id for space in spaces],
        )

    async def list_accounts(self, caller: Caller) -> list[schemas.Account]:
        accounts = await self.stores.tenancy.list_accounts()
        return [await self._shown_account(a) for a in accounts if caller.manages(a.name)]

    async def get_account(self, caller: Caller, name: str) -> schemas.Account:
        if not caller.manages(name):
            raise UnknownAccount(name)
        return await self._shown_account(await self._account(name))

    async def create_account(self, caller: Caller, body: schemas.AccountCreate) -> schemas.Account:
        self.operator_only(caller, "creating an account")
        if await self.stores.tenancy.get_account(body.name) is not None:
            raise Conflict(f"account {body.name!r} already exists")
        qps = body.qps or self.stores.default_qps
        account = await self.stores.tenancy.upsert_account(body.name, qps)
        await self.changed(caller, "account.create", body.name, body.name, qps=qps)
        return await self._shown_account(account)

    async def update_account(
        self, caller: Caller, name: str, body: schemas.AccountUpdate
    ) -> schemas.Account:
        self.operator_only(caller, "changing an account")
        account = await self._account(name)
        if body.qps is not None and body.qps != account.qps:
            account = await self.stores.tenancy.set_qps(name, body.qps)
            await self.changed(caller, "account.update_qps", name, name, qps=body.qps)
        if body.disabled is not None and body.disabled != account.disabled:
            tenancy = self.stores.tenancy
            change = tenancy.disable_account if body.disabled else tenancy.enable_account
            account = await change(name)
            action = "account.disable" if body.disabled else "account.enable"
            await self.changed(caller, action, name, name)
        return await self._shown_account(account)

    async def delete_account(
        self, caller: Caller, name: str, purge: bool = False
    ) -> schemas.AccountDeleted:
        self.operator_only(caller, "deleting an account")
        spaces: list[str] = []
        revoked = 0
        try:
            deleted = await self.stores.deletion.delete_account(name)
        except UnknownAccount:
            if not purge:  # an account deleted before can still be purged
                raise
        else:
            spaces, revoked = deleted.spaces, deleted.revoked_keys
            await self.changed(
                caller, "account.delete", name, name, spaces=spaces, revoked_keys=revoked
            )
        purged = None
        if purge:
            done = await self.stores.purge.purge_account(name)
            purged = schemas.Purged(
                transitions=sum(s.transitions for s in done.spaces),
                nodes=sum(s.nodes for s in done.spaces),
                alerts=sum(s.alerts for s in done.spaces),
                keys=done.keys,
            )
            spaces = spaces or [s.space_id for s in done.spaces]
            await self.changed(caller, "account.purge", name, name, **purged.model_dump())
        return schemas.AccountDeleted(name=name, spaces=spaces, revoked_keys=revoked, purged=purged)

    async def _space(self, caller: Caller, space_id: str) -> Space:
        found = await self.stores.tenancy.get_space(space_id)
        if found is None or not caller.manages(found.account):
            raise UnknownSpace(space_id)
        return found

    async def _shown_space(self, space: Space) -> schemas.Space:
        return schemas.Space(
            id=space.id,
            account=space.account,
            wabas=await self.stores.tenancy.wabas_of_space(space.id),
            badges=space.badges,
            public_status=space.public_status,
            created_at=space.created_at,
        )

    async def list_spaces(self, caller: Caller, account: str | None) -> list[schemas.Space]:
        if account is not None:
            self.require_manages(caller, account)
            await self._account(account)
        spaces = await self.stores.tenancy.list_spaces(account or caller.account)
        return [await self._shown_space(space) for space in spaces]

    async def get_space(self, caller: Caller, space_id: str) -> schemas.Space:
        return await self._shown_space(await self._space(caller, space_id))

    async def create_space(self, caller: Caller, body: schemas.SpaceCreate) -> schemas.Space:
        self.require_manages(caller, body.account)
        tenancy = self.stores.tenancy
        await self._account(body.account)
        owner = await tenancy.account_of_space(body.id)
        if owner is not None:
            raise OwnershipConflict("space", body.id, owner, body.account)
        wabas = list(dict.fromkeys(body.wabas))
        # Every WABA is checked before anything is written: a refusal leaves no half-made space.
        for waba_id in wabas:
            current = await tenancy.space_of_waba(waba_id)
            if current is not None:
                raise OwnershipConflict("WABA", waba_id, current, body.id)
        space = await tenancy.upsert_space(
            body.id, body.account, badges=body.badges, public_status=body.public_status
        )
        for waba_id in wabas:
            await tenancy.upsert_waba(waba_id, body.id)
        await self.changed(caller, "space.create", body.id, body.account, wabas=wabas)
        return await self._shown_space(space)

    async def add_waba(self, caller: Caller, space_id: str, waba_id: str) -> schemas.Space:
        space = await self._space(caller, space_id)
        current = await self.stores.tenancy.space_of_waba(waba_id)
        if current is not None and current != space_id:
            raise OwnershipConflict("WABA", waba_id, current, space_id)
        if current is None:
            await self.stores.tenancy.upsert_waba(waba_id, space_id)
            await self.changed(caller, "space.add_waba", space_id, space.account, waba=waba_id)
        return await self._shown_space(space)

    async def remove_waba(self, caller: Caller, space_id: str, waba_id: str) -> schemas.Space:
        space = await self._space(caller, space_id)
        if await self.stores.tenancy.space_of_waba(waba_id) != space_id:
            raise UnknownWaba(waba_id)
        await self.stores.tenancy.remove_waba(space_id, waba_id)
        await self.changed(caller, "space.remove_waba", space_id, space.account, waba=waba_id)
        return await self._shown_space(space)

    async def delete_space(
        self, caller: Caller, space_id: str, purge: bool = False
    ) -> schemas.SpaceDeleted:
        live = await self.stores.tenancy.get_space(space_id)
        if live is None and purge:
            # Deleted before: only an operator can still name it.
            self.operator_only(caller, "purging a deleted space")
            account, wabas, revoked = None, [], 0
        else:
            space = await self._space(caller, space_id)
            deleted = await self.stores.deletion.delete_space(space_id)
            account, wabas, revoked = space.account, deleted.wabas, deleted.revoked_keys
            await self.changed(
                caller, "space.delete", space_id, account, wabas=wabas, revoked_keys=revoked
            )
        purged = None
        if purge:
            done = await self.stores.purge.purge_space(space_id)
            purged = schemas.Purged(
                transitions=done.transitions, nodes=done.nodes, alerts=done.alerts
            )
            await self.changed(caller, "space.purge", space_id, account, **purged.model_dump())
        return schemas.SpaceDeleted(
            id=space_id, account=account, wabas=wabas, revoked_keys=revoked, purged=purged
        )

    async def audit(
        self, caller: Caller, account: str | None, before: int | None, limit: int
    ) -> schemas.AuditPage:
        if account is not None:
            self.require_manages(caller, account)
        if limit < 1 or limit > 1000:
            raise Invalid("limit must be between 1 and 1000")
        entries = await self.stores.audit.entries(
            account=account or caller.account, before=before, limit=limit
        )
        return schemas.AuditPage(
            entries=[_entry(entry) for entry in entries],
            next_before=entries[-1].id if len(entries) == limit else None,
        )


def _entry(entry: AuditEntry) -> schemas.AuditEntry:
    return schemas.AuditEntry(
        id=entry.id,
        occurred_at=entry.occurred_at,
        actor=entry.actor,
        account=entry.account,
        action=entry.action,
        target=entry.target,
        details=entry.details,
    )
