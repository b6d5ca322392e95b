"""Deleting a space or an account: its keys stop at once, its history and outbox stay.

A deleted space loses its WABAs (and so its synced numbers and templates: nothing is
monitored or answered for it any more), its public views and its alert subscriptions
(disabled, so the alerts already in the outbox keep their rows); the 360dialog keys
bound to its phone numbers are revoked. A deleted account is disabled, every key and
admin token of it is revoked and each of its spaces is deleted. The rows themselves
stay, marked `deleted_at`, so transitions, node health and the outbox still name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.storage._session import Factory, rowcount, writing
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import UnknownAccount, UnknownSpace
from wahealth.storage.models import (
    AccessKeyRow,
    AccountRow,
    AdminTokenRow,
    AlertSubscriptionRow,
    D360KeyRow,
    GraphTokenRow,
    PhoneNumberRow,
    SpaceRow,
    WabaRow,
)


@dataclass(frozen=True, slots=True)
class DeletedSpace:
    space_id: str
    account: str
    wabas: list[str]
    revoked_keys: int


@dataclass(frozen=True, slots=True)
class DeletedAccount:
    name: str
    spaces: list[str]
    revoked_keys: int


class Deletion:
    """Delete spaces and accounts, each in one transaction."""

    def __init__(self, sessions: Factory, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    async def delete_space(self, space_id: str) -> DeletedSpace:
        async with writing(self._sessions) as session:
            found = (
                await session.execute(
                    select(SpaceRow, AccountRow.name)
                    .join(AccountRow, AccountRow.id == SpaceRow.account_id)
                    .where(SpaceRow.id == space_id, SpaceRow.deleted_at.is_(None))
                    .with_for_update(of=SpaceRow)
                )
            ).one_or_none()
            if found is None:
                raise UnknownSpace(space_id)
            space, account = found
            wabas, revoked = await self._empty_space(session, space, self._clock())
            return DeletedSpace(space_id, account, wabas, revoked)

    async def delete_account(self, name: str) -> DeletedAccount:
        async with writing(self._sessions) as session:
            account = (
                await session.execute(
                    select(AccountRow)
                    .where(AccountRow.name == name, AccountRow.deleted_at.is_(None))
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if account is None:
                raise UnknownAccount(name)
            now = self._clock()
            account.deleted_at = now
            account.disabled_at = account.disabled_at or now
            spaces = list(
                await session.scalars(
                    select(SpaceRow)
                    .where(SpaceRow.account_id == account.id, SpaceRow.deleted_at.is_(None))
                    .order_by(SpaceRow.id)
                    .with_for_update()
                )
            )
            revoked = 0
            for space in spaces:
                revoked += (await self._empty_space(session, space, now))[1]
            for model in (AccessKeyRow, D360KeyRow, GraphTokenRow, AdminTokenRow):
                result = await session.execute(
                    update(model)
                    .where(model.account_id == account.id, model.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                revoked += rowcount(result)
            return DeletedAccount(name, [space.id for space in spaces], revoked)

    @staticmethod
    async def _empty_space(
        session: AsyncSession, space: SpaceRow, now: datetime
    ) -> tuple[list[str], int]:
        """Mark the space deleted and take everything live out of it; (WABAs, keys revoked)."""
        space.deleted_at = now
        space.badges = space.public_status = False
        wabas = list(
            await session.scalars(
                select(WabaRow.id).where(WabaRow.space_id == space.id).order_by(WabaRow.id)
            )
        )
        numbers = select(PhoneNumberRow.id).where(PhoneNumberRow.waba_id.in_(wabas))
        revoked = await session.execute(
            update(D360KeyRow)
            .where(D360KeyRow.phone_number_id.in_(numbers), D360KeyRow.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(AlertSubscriptionRow)
            .where(
                AlertSubscriptionRow.space_id == space.id,
                AlertSubscriptionRow.disabled_at.is_(None),
            )
            .values(disabled_at=now)
        )
        await session.execute(delete(PhoneNumberRow).where(PhoneNumberRow.waba_id.in_(wabas)))
        await session.execute(delete(WabaRow).where(WabaRow.space_id == space.id))
        return wabas, rowcount(revoked)
