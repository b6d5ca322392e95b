"""Accounts, the spaces they own, and the WABAs placed in those spaces.

Ownership never moves silently: placing a space under a second account, or a
WABA in a second space, is refused, because either would hand one tenant's
numbers to another.

Deleted accounts and spaces (see `deletion`) are kept as rows, so their history
still names them, but nothing here shows them; creating one again brings the
name back (its old keys stay revoked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.storage._session import (
    Factory,
    insert_for,
    reading,
    rowcount,
    writing,
)
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import OwnershipConflict, UnknownAccount, UnknownSpace, UnknownWaba
from wahealth.storage.models import AccountRow, SpaceRow, WabaRow

# Accounts carry the rate limit and the disabled flag credential lookups report;
# spaces and WABAs decide what a caller may see.


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    qps: int
    created_at: datetime
    disabled_at: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(frozen=True, slots=True)
class Space:
    id: str
    account: str
    created_at: datetime
    badges: bool = False  # its nodes' SVG badges are public
    public_status: bool = False  # its status page is public


def _space(row: SpaceRow, owner: str) -> Space:
    return Space(row.id, owner, row.created_at, row.badges, row.public_status)


@dataclass(frozen=True, slots=True)
class Waba:
    id: str
    space_id: str
    business_id: str | None
    app_id: str | None
    name: str | None
    synced_at: datetime | None


def _set_options(space: SpaceRow, badges: bool | None, public_status: bool | None) -> None:
    if badges is not None:
        space.badges = badges
    if public_status is not None:
        space.public_status = public_status


def _account(row: AccountRow) -> Account:
    return Account(row.id, row.name, row.qps, row.created_at, row.disabled_at)


def _waba(row: WabaRow) -> Waba:
    return Waba(row.id, row.space_id, row.business_id, row.app_id, row.name, row.synced_at)


class TenancyRepository:
    """Who owns what: accounts -> spaces -> WABAs."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def upsert_account(self, name: str, qps: int = 5) -> Account:
        """Create the account, or set its rate limit; a disabled account stays disabled."""
        if qps < 1:
            raise ValueError(f"qps must be at least 1, got {qps}")
        async with writing(self._sessions) as session:
            insert = insert_for(session)
            await session.execute(
                insert(AccountRow)
                .values(name=name, qps=qps, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=[AccountRow.name])
            )
            row = (
                await session.execute(
                    select(AccountRow).where(AccountRow.name == name).with_for_update()
                )
            ).scalar_one()
            if row.qps != qps:
                row.qps = qps
            if row.deleted_at is not None:
                row.deleted_at = row.disabled_at = None
            return _account(row)

    async def set_qps(self, name: str, qps: int) -> Account:
        """Change an account's rate limit; UnknownAccount if there is none."""
        if qps < 1:
            raise ValueError(f"qps must be at least 1, got {qps}")
        async with writing(self._sessions) as session:
            row = await _live_account(session, name)
            row.qps = qps
            return _account(row)

    async def get_account(self, name: str) -> Account | None:
        async with reading(self._sessions) as session:
            row = (
                await session.execute(
                    select(AccountRow).where(AccountRow.name == name, _LIVE_ACCOUNT)
                )
            ).scalar_one_or_none()
            return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        async with reading(self._sessions) as session:
            rows = (
                await session.execute(
                    select(AccountRow).where(_LIVE_ACCOUNT).order_by(AccountRow.name)
                )
            ).scalars()
            return [_account(row) for row in rows]

    async def disable_account(self, name: str) -> Account:
        """Disable the account: its credentials stop authenticating. Idempotent."""
        return await self._set_disabled(name, disabled=True)

    async def enable_account(self, name: str) -> Account:
        return await self._set_disabled(name, disabled=False)

    async def _set_disabled(self, name: str, *, disabled: bool) -> Account:
        async with writing(self._sessions) as session:
            row = await _live_account(session, name)
            if row.disabled_at is None and disabled:
                row.disabled_at = utcnow()
            elif row.disabled_at is not None and not disabled:
                row.disabled_at = None
            else:
                return _account(row)
            return _account(row)

    async def upsert_space(
        self,
        space_id: str,
        account_name: str,
        *,
        badges: bool | None = None,
        public_status: bool | None = None,
    ) -> Space:
        """Place a space under an account; OwnershipConflict if another account has it.

        `badges` and `public_status` set the space's opt-ins; None keeps the stored ones.
        """
        async with writing(self._sessions) as session:
            account = (
                await session.execute(select(AccountRow).where(AccountRow.name == account_name))
            ).scalar_one_or_none()
            if account is None:
                raise UnknownAccount(account_name)
            insert = insert_for(session)
            await session.execute(
                insert(SpaceRow)
                .values(id=space_id, account_id=account.id, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=[SpaceRow.id])
            )
            space, owner = (
                await session.execute(
                    select(SpaceRow, AccountRow.name)
                    .join(AccountRow, AccountRow.id == SpaceRow.account_id)
                    .where(SpaceRow.id == space_id)
                )
            ).one()
            if owner != account_name:
                raise OwnershipConflict("space", space_id, owner, account_name)
            space.deleted_at = None
            _set_options(space, badges, public_status)
            return _space(space, owner)

    async def set_space_options(
        self, space_id: str, *, badges: bool | None = None, public_status: bool | None = None
    ) -> Space:
        """Turn a space's public views on or off (None: leave as is); UnknownSpace if none."""
        async with writing(self._sessions) as session:
            found = (
                await session.execute(
                    select(SpaceRow, AccountRow.name)
                    .join(AccountRow, AccountRow.id == SpaceRow.account_id)
                    .where(SpaceRow.id == space_id, _LIVE_SPACE)
                    .with_for_update()
                )
            ).one_or_none()
            if found is None:
                raise UnknownSpace(space_id)
            space, owner = found
            _set_options(space, badges, public_status)
            return _space(space, owner)

    async def get_space(self, space_id: str) -> Space | None:
        async with reading(self._sessions) as session:
            found = (
                await session.execute(
                    select(SpaceRow, AccountRow.name)
                    .join(AccountRow, AccountRow.id == SpaceRow.account_id)
                    .where(SpaceRow.id == space_id, _LIVE_SPACE)
                )
            ).one_or_none()
            return None if found is None else _space(*found)

    async def list_spaces(self, account: str | None = None) -> list[Space]:
        query = (
            select(SpaceRow, AccountRow.name)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(_LIVE_SPACE)
            .order_by(SpaceRow.id)
        )
        if account is not None:
            query = query.where(AccountRow.name == account)
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
            return [_space(space, owner) for space, owner in rows]

    async def upsert_waba(
        self,
        waba_id: str,
        space_id: str,
        business_id: str | None = None,
        app_id: str | None = None,
        name: str | None = None,
    ) -> Waba:
        """Place a WABA in a space; given details replace stored ones, None keeps them."""
        async with writing(self._sessions) as session:
            space = await session.get(SpaceRow, space_id)
            if space is None or space.deleted_at is not None:
                raise UnknownSpace(space_id)
            insert = insert_for(session)
            created = await session.execute(
                insert(WabaRow)
                .values(
                    id=waba_id, space_id=space_id, business_id=business_id, app_id=app_id, name=name
                )
                .on_conflict_do_nothing(index_elements=[WabaRow.id])
            )
            row = (
                await session.execute(
                    select(WabaRow)
                    .where(WabaRow.id == waba_id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            ).scalar_one()
            if rowcount(created) == 1:
                return _waba(row)
            if row.space_id != space_id:
                raise OwnershipConflict("WABA", waba_id, row.space_id, space_id)
            row.business_id = business_id if business_id is not None else row.business_id
            row.app_id = app_id if app_id is not None else row.app_id
            row.name = name if name is not None else row.name
            return _waba(row)

    async def remove_waba(self, space_id: str, waba_id: str) -> None:
        """Take a WABA (and its synced numbers and templates) out of a space; history stays."""
        async with writing(self._sessions) as session:
            found = await session.execute(
                delete(WabaRow).where(WabaRow.id == waba_id, WabaRow.space_id == space_id)
            )
            if rowcount(found) != 1:
                raise UnknownWaba(waba_id)

    async def wabas_of_space(self, space_id: str) -> list[str]:
        """Ids of the WABAs in a space."""
        async with reading(self._sessions) as session:
            ids = await session.scalars(
                select(WabaRow.id).where(WabaRow.space_id == space_id).order_by(WabaRow.id)
            )
            return list(ids)

    async def all_wabas(self) -> list[str]:
        """Ids of every WABA (e.g. to sync the whole catalog)."""
        async with reading(self._sessions) as session:
            return list(await session.scalars(select(WabaRow.id).order_by(WabaRow.id)))

    async def list_wabas(self, space_id: str | None = None) -> list[Waba]:
        """WABAs with their details, of one space or all."""
        query = select(WabaRow).order_by(WabaRow.id)
        if space_id is not None:
            query = query.where(WabaRow.space_id == space_id)
        async with reading(self._sessions) as session:
            return [_waba(row) for row in await session.scalars(query)]

    async def get_waba(self, waba_id: str) -> Waba | None:
        async with reading(self._sessions) as session:
            row = await session.get(WabaRow, waba_id)
            return None if row is None else _waba(row)

    async def space_of_waba(self, waba_id: str) -> str | None:
        async with reading(self._sessions) as session:
            space_id: str | None = await session.scalar(
                select(WabaRow.space_id).where(WabaRow.id == waba_id)
            )
            return space_id

    async def account_of_space(self, space_id: str) -> str | None:
        """The name of the account owning a space."""
        async with reading(self._sessions) as session:
            name: str | None = await session.scalar(
                select(AccountRow.name)
                .join(SpaceRow, SpaceRow.account_id == AccountRow.id)
                .where(SpaceRow.id == space_id, _LIVE_SPACE)
            )
            return name


_LIVE_ACCOUNT = AccountRow.deleted_at.is_(None)
_LIVE_SPACE = SpaceRow.deleted_at.is_(None)


async def _live_account(session: AsyncSession, name: str) -> AccountRow:
    row = (
        await session.execute(
            select(AccountRow).where(AccountRow.name == name, _LIVE_ACCOUNT).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise UnknownAccount(name)
    return row
