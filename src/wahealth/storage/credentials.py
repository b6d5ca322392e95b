"""Credentials: AccessKeys (secret encrypted), 360dialog keys and Graph tokens (digests only).

Encryption and hashing happen in `wahealth.auth`; this module never hands a
secret or a full digest to a listing. Callers pass a token's lookup digest
(`hash_token`); given a `DigestKeys`, the repository stores and looks up its
keyed form, and rewrites a row stored unkeyed (or under an older master key)
to the current keyed form the first time it is used. Servers cache lookups
for a second, so a change made by another process is seen within about a second.
A key with an `expires_at` (set when it was rotated) authenticates until then and
not after: the lookups compare it with the repository's clock.

Config is applied by every replica at start, possibly at the same moment, so
the `put_*` methods are upserts (INSERT ... ON CONFLICT DO NOTHING, then lock
the row) rather than read-then-insert.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from wahealth.core.ports import DigestKeys
from wahealth.storage._session import (
    Factory,
    insert_for,
    reading,
    rowcount,
    writing,
)
from wahealth.storage.columns import utcnow
from wahealth.storage.credential_records import (
    HASH_PREFIX_LENGTH,
    AccessKeyLookup,
    CredentialInfo,
    CredentialKind,
    D360KeyLookup,
    GraphTokenLookup,
    d360_info,
    graph_info,
)
from wahealth.storage.errors import Conflict, UnknownAccount, UnknownCredential
from wahealth.storage.models import AccessKeyRow, AccountRow, D360KeyRow, GraphTokenRow

__all__ = [
    "HASH_PREFIX_LENGTH",
    "AccessKeyLookup",
    "CredentialInfo",
    "CredentialKind",
    "CredentialRepository",
    "D360KeyLookup",
    "GraphTokenLookup",
]
_Revocable = TypeVar("_Revocable", AccessKeyRow, D360KeyRow, GraphTokenRow)
_Hashed = TypeVar("_Hashed", D360KeyRow, GraphTokenRow)


class CredentialRepository:
    """Store, look up, list and revoke credentials."""

    def __init__(
        self,
        sessions: Factory,
        token_hasher: DigestKeys | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._hasher = token_hasher
        self._clock = clock

    def with_hasher(self, token_hasher: DigestKeys) -> CredentialRepository:
        """The same storage, storing and finding digests keyed by `token_hasher`."""
        return CredentialRepository(self._sessions, token_hasher, clock=self._clock)

    def _stored(self, digest: str) -> str:
        return digest if self._hasher is None else self._hasher.keyed(digest)

    def _accepted(self, digest: str) -> tuple[str, ...]:
        return (digest,) if self._hasher is None else self._hasher.accepted(digest)

    async def add_access_key(
        self, account: str, key_id: str, secret_encrypted: str
    ) -> CredentialInfo:
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            created_at = utcnow()
            insert = insert_for(session)
            result = await session.execute(
                insert(AccessKeyRow)
                .values(
                    id=key_id,
                    account_id=owner,
                    secret_encrypted=secret_encrypted,
                    created_at=created_at,
                )
                .on_conflict_do_nothing(index_elements=[AccessKeyRow.id])
            )
            if rowcount(result) != 1:
                raise Conflict(f"access key {key_id!r} already exists")
            return CredentialInfo(
                CredentialKind.ACCESS_KEY, key_id, account, None, created_at, None
            )

    async def put_access_key(
        self, account: str, key_id: str, secret_encrypted: str
    ) -> CredentialInfo:
        """Add the key, or replace its secret: for configuration applied at every start.

        A key revoked since stays revoked; a key of another account is a Conflict.
        """
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            insert = insert_for(session)
            await session.execute(
                insert(AccessKeyRow)
                .values(
                    id=key_id,
                    account_id=owner,
                    secret_encrypted=secret_encrypted,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=[AccessKeyRow.id])
            )
            row = await session.get(
                AccessKeyRow, key_id, with_for_update=True, populate_existing=True
            )
            assert row is not None  # inserted now or by whoever won the race
            if row.account_id != owner:
                raise Conflict(f"access key {key_id!r} belongs to another account")
            # Encryption is randomised, so an unchanged secret cannot be recognised.
            row.secret_encrypted = secret_encrypted
            return CredentialInfo(
                CredentialKind.ACCESS_KEY, key_id, account, None, row.created_at, row.revoked_at
            )

    async def access_key(self, key_id: str) -> AccessKeyLookup | None:
        query = (
            select(AccessKeyRow, AccountRow)
            .join(AccountRow, AccountRow.id == AccessKeyRow.account_id)
            .where(AccessKeyRow.id == key_id)
        )
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).one_or_none()
        if found is None:
            return None
        key, owner = found
        expired = key.expires_at is not None and key.expires_at <= self._clock()
        revoked = key.revoked_at is not None or owner.disabled_at is not None or expired
        return AccessKeyLookup(owner.name, owner.qps, key.secret_encrypted, revoked)

    async def add_d360_key(
        self, account: str, key_hash: str, phone_number_id: str, label: str | None = None
    ) -> CredentialInfo:
        """Store a new key by its lookup digest; Conflict if the key is known already."""
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            await _refuse_known_hash(session, D360KeyRow.key_hash.in_(self._accepted(key_hash)))
            row = D360KeyRow(
                account_id=owner,
                key_hash=self._stored(key_hash),
                phone_number_id=phone_number_id,
                label=label,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            return d360_info(row, account)

    async def put_d360_key(
        self, account: str, key_hash: str, phone_number_id: str, label: str | None = None
    ) -> CredentialInfo:
        """Add the key unless it is stored already (then update its number and label)."""
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            row, changed = await self._upsert_digest(
                session, D360KeyRow, owner, key_hash, phone_number_id=phone_number_id, label=label
            )
            if row.account_id != owner:
                raise Conflict("this 360dialog key belongs to another account")
            if changed or (row.phone_number_id, row.label) != (phone_number_id, label):
                row.phone_number_id = phone_number_id
                row.label = label
                await session.flush()
            return d360_info(row, account)

    async def d360_key(self, key_hash: str) -> D360KeyLookup | None:
        """The key's account and phone number, if the key is live and its account enabled."""
        found = await self._lookup(D360KeyRow, key_hash, D360KeyRow.phone_number_id)
        return None if found is None else D360KeyLookup(*found)

    async def add_graph_token(
        self, account: str, token_hash: str, label: str | None = None
    ) -> CredentialInfo:
        """Store a new token by its lookup digest; Conflict if the token is known already."""
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            accepted = self._accepted(token_hash)
            await _refuse_known_hash(session, GraphTokenRow.token_hash.in_(accepted))
            row = GraphTokenRow(
                account_id=owner,
                token_hash=self._stored(token_hash),
                label=label,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            return graph_info(row, account)

    async def put_graph_token(
        self, account: str, token_hash: str, label: str | None = None
    ) -> CredentialInfo:
        """Add the token unless it is stored already (then update its label)."""
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            row, changed = await self._upsert_digest(
                session, GraphTokenRow, owner, token_hash, label=label
            )
            if row.account_id != owner:
                raise Conflict("this Graph token belongs to another account")
            if changed or row.label != label:
                row.label = label
                await session.flush()
            return graph_info(row, account)

    async def graph_token(self, token_hash: str) -> GraphTokenLookup | None:
        """The token's account, if the token is live and its account enabled."""
        found = await self._lookup(GraphTokenRow, token_hash, GraphTokenRow.label)
        return None if found is None else GraphTokenLookup(*found)

    async def _upsert_digest(
        self,
        session: AsyncSession,
        model: type[_Hashed],
        owner: int,
        digest: str,
        **values: Any,
    ) -> tuple[_Hashed, bool]:
        """The locked row for `digest` (created, or rewritten to the keyed form); True if new."""
        column = _digest_column(model)
        stored = self._stored(digest)
        existing = (
            await session.execute(
                select(model).where(column.in_(self._accepted(digest))).with_for_update()
            )
        ).scalar_one_or_none()
        if existing is not None:
            if _digest_of(existing) != stored:
                _set_digest(existing, stored)
                await session.flush()
                return existing, True
            return existing, False
        created = await session.execute(
            insert_for(session)(model)
            .values({column.key: stored, "account_id": owner, "created_at": utcnow(), **values})
            .on_conflict_do_nothing(index_elements=[column])
        )
        row = (
            await session.execute(
                select(model)
                .where(column == stored)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        return row, rowcount(created) == 1

    async def _lookup(
        self, model: type[_Hashed], digest: str, *extra: InstrumentedAttribute[Any]
    ) -> tuple[Any, ...] | None:
        column = _digest_column(model)
        query = (
            select(AccountRow.name, AccountRow.qps, *extra, model.id, column)
            .select_from(model)
            .join(AccountRow, AccountRow.id == model.account_id)
            .where(
                column.in_(self._accepted(digest)),
                model.revoked_at.is_(None),
                or_(model.expires_at.is_(None), model.expires_at > self._clock()),
                AccountRow.disabled_at.is_(None),
            )
        )
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).first()
        if found is None:
            return None
        *answer, row_id, found_digest = found
        stored = self._stored(digest)
        if found_digest != stored:
            # Stored unkeyed or under an older master key: rewrite it to the current form.
            async with writing(self._sessions) as session:
                await session.execute(
                    update(model)
                    .where(model.id == row_id, column == found_digest)
                    .values({column.key: stored})
                )
        return tuple(answer)

    async def list_credentials(self, account: str | None = None) -> list[CredentialInfo]:
        """Every credential (of one account), revoked ones included, without secrets."""
        found: list[CredentialInfo] = []
        async with reading(self._sessions) as session:
            keys = select(AccessKeyRow, AccountRow.name).join(
                AccountRow, AccountRow.id == AccessKeyRow.account_id
            )
            d360 = select(D360KeyRow, AccountRow.name).join(
                AccountRow, AccountRow.id == D360KeyRow.account_id
            )
            graph = select(GraphTokenRow, AccountRow.name).join(
                AccountRow, AccountRow.id == GraphTokenRow.account_id
            )
            if account is not None:
                keys = keys.where(AccountRow.name == account)
                d360 = d360.where(AccountRow.name == account)
                graph = graph.where(AccountRow.name == account)
            for key, name in await session.execute(keys):
                found.append(
                    CredentialInfo(
                        CredentialKind.ACCESS_KEY,
                        key.id,
                        name,
                        None,
                        key.created_at,
                        key.revoked_at,
                        expires_at=key.expires_at,
                    )
                )
            found.extend(d360_info(row, name) for row, name in (await session.execute(d360)))
            found.extend(graph_info(row, name) for row, name in (await session.execute(graph)))
        return sorted(found, key=lambda info: (info.account, info.kind, info.created_at, info.id))

    async def revoke_access_key(self, key_id: str) -> bool:
        """Revoke; True if this call revoked it, False if it already was."""
        return await self._revoke(AccessKeyRow, key_id, "access key")

    async def revoke_d360_key(self, key_id: int) -> bool:
        return await self._revoke(D360KeyRow, key_id, "360dialog key")

    async def revoke_graph_token(self, token_id: int) -> bool:
        return await self._revoke(GraphTokenRow, token_id, "Graph token")

    async def _revoke(
        self,
        model: type[_Revocable],
        key: str | int,
        what: str,
    ) -> bool:
        async with writing(self._sessions) as session:
            row = await session.get(model, key, with_for_update=True)
            if row is None:
                raise UnknownCredential(what, key)
            if row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            return True


async def _account_id(session: AsyncSession, name: str) -> int:
    account_id: int | None = await session.scalar(
        select(AccountRow.id).where(AccountRow.name == name)
    )
    if account_id is None:
        raise UnknownAccount(name)
    return account_id


def _digest_column(model: type[D360KeyRow] | type[GraphTokenRow]) -> InstrumentedAttribute[str]:
    return D360KeyRow.key_hash if model is D360KeyRow else GraphTokenRow.token_hash


def _digest_of(row: D360KeyRow | GraphTokenRow) -> str:
    return row.key_hash if isinstance(row, D360KeyRow) else row.token_hash


def _set_digest(row: D360KeyRow | GraphTokenRow, digest: str) -> None:
    if isinstance(row, D360KeyRow):
        row.key_hash = digest
    else:
        row.token_hash = digest


async def _refuse_known_hash(session: AsyncSession, condition: ColumnElement[bool]) -> None:
    # A clear error instead of an integrity error; the unique index still guards races.
    if await session.scalar(select(1).where(condition)) is not None:
        raise Conflict("a credential with this hash already exists")
