"""Admin tokens (stored as keyed hashes) and the audit log of every change made with them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from wahealth.storage._session import Factory, reading, writing
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import NotFound, UnknownAccount
from wahealth.storage.models import AccountRow, AdminTokenRow, AuditRow


@dataclass(frozen=True, slots=True)
class AdminToken:
    """An admin token as listings show it: never its hash."""

    id: int
    name: str
    account: str | None  # None: manages everything
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredAdminToken:
    """What checking a presented token needs: its stored hash and whether it may be used."""

    token: AdminToken
    token_hash: str
    usable: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    account: str | None
    action: str
    target: str
    details: dict[str, Any]


class AdminTokenRepository:
    """Create, find, list and revoke admin tokens."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def add(self, name: str, account: str | None, token_hash: Callable[[int], str]) -> int:
        """Store a new token; `token_hash(id)` gives the stored hash once the id is known."""
        async with writing(self._sessions) as session:
            account_id = None
            if account is not None:
                account_id = await session.scalar(
                    select(AccountRow.id).where(
                        AccountRow.name == account, AccountRow.deleted_at.is_(None)
                    )
                )
                if account_id is None:
                    raise UnknownAccount(account)
            row = AdminTokenRow(
                name=name, account_id=account_id, token_hash="", created_at=utcnow()
            )
            session.add(row)
            await session.flush()
            row.token_hash = token_hash(row.id)
            return row.id

    async def find(self, token_id: int) -> StoredAdminToken | None:
        """The token with this id, with what decides whether it may still be used."""
        query = (
            select(AdminTokenRow, AccountRow)
            .outerjoin(AccountRow, AccountRow.id == AdminTokenRow.account_id)
            .where(AdminTokenRow.id == token_id)
        )
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).one_or_none()
        if found is None:
            return None
        row, owner = found
        usable = row.revoked_at is None and (owner is None or owner.deleted_at is None)
        return StoredAdminToken(_token(row, owner), row.token_hash, usable)

    async def list(self) -> list[AdminToken]:
        query = (
            select(AdminTokenRow, AccountRow)
            .outerjoin(AccountRow, AccountRow.id == AdminTokenRow.account_id)
            .order_by(AdminTokenRow.id)
        )
        async with reading(self._sessions) as session:
            return [_token(row, owner) for row, owner in await session.execute(query)]

    async def revoke(self, token_id: int) -> bool:
        """Revoke; True if this call revoked it."""
        async with writing(self._sessions) as session:
            row = await session.get(AdminTokenRow, token_id, with_for_update=True)
            if row is None:
                raise NotFound("admin token", token_id)
            if row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            return True


def _token(row: AdminTokenRow, owner: AccountRow | None) -> AdminToken:
    account = None if owner is None else owner.name
    return AdminToken(row.id, row.name, account, row.created_at, row.revoked_at)


class AuditLog:
    """Append and read the audit log, newest first."""

    def __init__(self, sessions: Factory, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    async def record(
        self,
        actor: str,
        action: str,
        target: str,
        *,
        account: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        async with writing(self._sessions) as session:
            row = AuditRow(
                occurred_at=self._clock(),
                actor=actor,
                account=account,
                action=action,
                target=target,
                details=details or {},
            )
            session.add(row)
            await session.flush()
            return _entry(row)

    async def entries(
        self, *, account: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries newest first; `before` pages on (an id from the previous page)."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if account is not None:
            query = query.where(AuditRow.account == account)
        if before is not None:
            query = query.where(AuditRow.id < before)
        async with reading(self._sessions) as session:
            return [_entry(row) for row in await session.scalars(query)]


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        row.id, row.occurred_at, row.actor, row.account, row.action, row.target, row.details
    )
