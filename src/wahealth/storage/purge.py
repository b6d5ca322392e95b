"""Purging a deleted space or account: what deletion kept is removed for good.

Deleting (see `deletion`) revokes at once and keeps the record: transitions, node
health, the outbox, silences and acknowledgements still name the space. A purge removes
them, with the space's alert subscriptions and the row itself (so its id can be used
again); purging an account also removes its keys and admin tokens (hashes and
encrypted secrets alike) and the account row. The audit log is kept: it is the record
of who deleted and purged what.

A purge is explicit (`--purge`, `?purge=true`), or done by retention once a space or
account has been deleted for longer than history is kept (`purge_deleted_before`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.storage._session import Factory, rowcount, writing
from wahealth.storage.errors import UnknownAccount, UnknownSpace
from wahealth.storage.models import (
    AccessKeyRow,
    AccountRow,
    AcknowledgementRow,
    AdminTokenRow,
    AlertSubscriptionRow,
    D360KeyRow,
    GraphTokenRow,
    NodeHealthRow,
    OutboxRow,
    SilenceRow,
    SpaceRow,
    TransitionRow,
)


@dataclass(frozen=True, slots=True)
class PurgedSpace:
    space_id: str
    transitions: int
    nodes: int
    alerts: int


@dataclass(frozen=True, slots=True)
class PurgedAccount:
    name: str
    spaces: list[PurgedSpace]
    keys: int


class Purge:
    """Remove deleted spaces and accounts with everything they left, each in one transaction."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def purge_space(self, space_id: str) -> PurgedSpace:
        """Purge a deleted space; UnknownSpace unless it exists and is deleted."""
        async with writing(self._sessions) as session:
            space = (
                await session.execute(
                    select(SpaceRow)
                    .where(SpaceRow.id == space_id, SpaceRow.deleted_at.is_not(None))
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if space is None:
                raise UnknownSpace(space_id)
            return await _purge_space(session, space)

    async def purge_account(self, name: str) -> PurgedAccount:
        """Purge a deleted account and its (deleted) spaces; UnknownAccount unless deleted."""
        async with writing(self._sessions) as session:
            account = (
                await session.execute(
                    select(AccountRow)
                    .where(AccountRow.name == name, AccountRow.deleted_at.is_not(None))
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if account is None:
                raise UnknownAccount(name)
            return await _purge_account(session, account)

    async def purge_deleted_before(self, cutoff: datetime) -> list[str]:
        """Purge every space and account deleted before `cutoff`; what was purged."""
        async with writing(self._sessions) as session:
            purged: list[str] = []
            accounts = await session.scalars(
                select(AccountRow)
                .where(AccountRow.deleted_at < cutoff)
                .order_by(AccountRow.id)
                .with_for_update()
            )
            for account in list(accounts):
                done = await _purge_account(session, account)
                purged += [f"space {s.space_id}" for s in done.spaces] + [f"account {done.name}"]
            spaces = await session.scalars(
                select(SpaceRow)
                .where(SpaceRow.deleted_at < cutoff)
                .order_by(SpaceRow.id)
                .with_for_update()
            )
            for space in list(spaces):
                purged.append(f"space {(await _purge_space(session, space)).space_id}")
            return purged


async def _purge_space(session: AsyncSession, space: SpaceRow) -> PurgedSpace:
    space_id = space.id
    transitions = select(TransitionRow.id).where(TransitionRow.space_id == space_id)
    subscriptions = select(AlertSubscriptionRow.id).where(AlertSubscriptionRow.space_id == space_id)
    nodes = select(NodeHealthRow.node_id).where(NodeHealthRow.space_id == space_id)
    alerts = await session.execute(
        delete(OutboxRow).where(
            or_(
                OutboxRow.transition_id.in_(transitions),
                OutboxRow.subscription_id.in_(subscriptions),
            )
        )
    )
    await session.execute(delete(AcknowledgementRow).where(AcknowledgementRow.node_id.in_(nodes)))
    history = await session.execute(delete(TransitionRow).where(TransitionRow.space_id == space_id))
    health = await session.execute(delete(NodeHealthRow).where(NodeHealthRow.space_id == space_id))
    await session.execute(delete(SilenceRow).where(SilenceRow.space_id == space_id))
    await session.execute(
        delete(AlertSubscriptionRow).where(AlertSubscriptionRow.space_id == space_id)
    )
    await session.delete(space)
    await session.flush()
    return PurgedSpace(space_id, rowcount(history), rowcount(health), rowcount(alerts))


async def _purge_account(session: AsyncSession, account: AccountRow) -> PurgedAccount:
    spaces = await session.scalars(
        select(SpaceRow).where(SpaceRow.account_id == account.id).order_by(SpaceRow.id)
    )
    purged = [await _purge_space(session, space) for space in list(spaces)]
    keys = 0
    for model in (AccessKeyRow, D360KeyRow, GraphTokenRow, AdminTokenRow):
        keys += rowcount(await session.execute(delete(model).where(model.account_id == account.id)))
    name = account.name
    await session.delete(account)
    await session.flush()
    return PurgedAccount(name, purged, keys)
