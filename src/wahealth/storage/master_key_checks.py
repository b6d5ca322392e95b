"""What storage says about the master key: its check digest, and whether secrets are stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, exists, select, update

from wahealth.storage._session import Factory, insert_for, reading, writing
from wahealth.storage.models import (
    AccessKeyRow,
    AlertSubscriptionRow,
    D360KeyRow,
    GraphTokenRow,
    MasterKeyCheckRow,
)
from wahealth.storage.models_upstreams import MetaConnectionRow, SpaceUpstreamRow

_ROW_ID = 1


class MasterKeyCheckRepository:
    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def digest(self) -> str | None:
        """The stored check digest (None before the first start of this version)."""
        async with reading(self._sessions) as session:
            stored: str | None = await session.scalar(
                select(MasterKeyCheckRow.digest).where(MasterKeyCheckRow.id == _ROW_ID)
            )
        return stored

    async def put_if_absent(self, digest: str) -> str:
        """Store `digest` unless a replica already stored one; the digest stored now."""
        async with writing(self._sessions) as session:
            insert = insert_for(session)(MasterKeyCheckRow).values(
                id=_ROW_ID, digest=digest, updated_at=datetime.now(UTC)
            )
            await session.execute(insert.on_conflict_do_nothing())
            stored = await session.scalar(
                select(MasterKeyCheckRow.digest).where(MasterKeyCheckRow.id == _ROW_ID)
            )
        assert stored is not None  # inserted above, or by another replica
        return stored

    async def replace(self, old: str, new: str) -> None:
        """Move the check to the newest key (a rotation), unless it changed meanwhile."""
        async with writing(self._sessions) as session:
            await session.execute(
                update(MasterKeyCheckRow)
                .where(MasterKeyCheckRow.id == _ROW_ID, MasterKeyCheckRow.digest == old)
                .values(digest=new, updated_at=datetime.now(UTC))
            )

    async def holds_secrets(self) -> bool:
        """Whether anything stored depends on a master key (encrypted, or a keyed digest)."""
        async with reading(self._sessions) as session:
            for model in (
                AccessKeyRow,
                D360KeyRow,
                GraphTokenRow,
                SpaceUpstreamRow,
                MetaConnectionRow,
            ):
                if await session.scalar(select(exists().select_from(model))):
                    return True
            subscribed = exists().where(AlertSubscriptionRow.secret_encrypted.is_not(None))
            return bool(await session.scalar(select(subscribed)))

    async def encrypted_secrets(self, limit: int) -> list[str]:
        """Up to `limit` of the newest secrets in use of each kind (AccessKeys, subscriptions,
        BSP upstreams, Meta connections)."""
        queries: list[Select[Any]] = [
            select(AccessKeyRow.secret_encrypted)
            .where(AccessKeyRow.revoked_at.is_(None))
            .order_by(AccessKeyRow.created_at.desc()),
            select(AlertSubscriptionRow.secret_encrypted)
            .where(
                AlertSubscriptionRow.secret_encrypted.is_not(None),
                AlertSubscriptionRow.disabled_at.is_(None),
            )
            .order_by(AlertSubscriptionRow.id.desc()),
            select(SpaceUpstreamRow.secrets_encrypted).order_by(SpaceUpstreamRow.updated_at.desc()),
            select(MetaConnectionRow.token_encrypted).order_by(MetaConnectionRow.changed_at.desc()),
        ]
        found: list[str] = []
        async with reading(self._sessions) as session:
            for query in queries:
                found += [value for value in await session.scalars(query.limit(limit)) if value]
        return found
