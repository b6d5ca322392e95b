"""Credentials: AccessKeys (secret encrypted), 360dialog keys and Graph tokens (hashes only).

Encryption and hashing happen in `wahealth.auth`; this module only stores what
it is given and never hands a secret or a full hash to a listing. Servers cache
lookups briefly and poll `revision()` to notice changes made by another process.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.storage._session import (
    Factory,
    bump_revision,
    insert_for,
    read_revision,
    reading,
    rowcount,
    writing,
)
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import Conflict, UnknownAccount, UnknownCredential
from wahealth.storage.models import AccessKeyRow, AccountRow, D360KeyRow, GraphTokenRow
from wahealth.storage.tenancy import CREDENTIALS_TOPIC

HASH_PREFIX_LENGTH = 8

_Revocable = TypeVar("_Revocable", AccessKeyRow, D360KeyRow, GraphTokenRow)


class CredentialKind(enum.StrEnum):
    ACCESS_KEY = "access_key"
    D360_KEY = "d360_key"
    GRAPH_TOKEN = "graph_token"  # noqa: S105 - a kind's name, not a secret


class AccessKeyLookup(NamedTuple):
    """An AccessKey as the signature check needs it.

    `revoked` is also true when the owning account is disabled: either way the
    key must not authenticate.
    """

    account: str
    qps: int
    secret_encrypted: str
    revoked: bool


class D360KeyLookup(NamedTuple):
    account: str
    qps: int
    phone_number_id: str


class GraphTokenLookup(NamedTuple):
    account: str
    qps: int


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What a listing shows: never the secret or the full hash."""

    kind: CredentialKind
    id: str
    account: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    hash_prefix: str | None = None
    phone_number_id: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class CredentialRepository:
    """Store, look up, list and revoke credentials."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def revision(self) -> int:
        """A counter bumped by every credential or account change; one primary-key read."""
        return await read_revision(self._sessions, CREDENTIALS_TOPIC)

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
            await bump_revision(session, CREDENTIALS_TOPIC)
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
            row = await session.get(AccessKeyRow, key_id, with_for_update=True)
            if row is None:
                row = AccessKeyRow(
                    id=key_id,
                    account_id=owner,
                    secret_encrypted=secret_encrypted,
                    created_at=utcnow(),
                )
                session.add(row)
            elif row.account_id != owner:
                raise Conflict(f"access key {key_id!r} belongs to another account")
            else:
                # Encryption is randomised, so an unchanged secret cannot be recognised.
                row.secret_encrypted = secret_encrypted
            await bump_revision(session, CREDENTIALS_TOPIC)
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
        revoked = key.revoked_at is not None or owner.disabled_at is not None
        return AccessKeyLookup(owner.name, owner.qps, key.secret_encrypted, revoked)

    async def add_d360_key(
        self, account: str, key_hash: str, phone_number_id: str, label: str | None = None
    ) -> CredentialInfo:
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            await _refuse_known_hash(session, D360KeyRow.key_hash == key_hash)
            row = D360KeyRow(
                account_id=owner,
                key_hash=key_hash,
                phone_number_id=phone_number_id,
                label=label,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            await bump_revision(session, CREDENTIALS_TOPIC)
            return _d360_info(row, account)

    async def put_d360_key(
        self, account: str, key_hash: str, phone_number_id: str, label: str | None = None
    ) -> CredentialInfo:
        """Add the key unless it is stored already (then update its number and label)."""
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            row = (
                await session.execute(
                    select(D360KeyRow).where(D360KeyRow.key_hash == key_hash).with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                row = D360KeyRow(account_id=owner, key_hash=key_hash, created_at=utcnow())
                session.add(row)
            elif row.account_id != owner:
                raise Conflict("this 360dialog key belongs to another account")
            elif (row.phone_number_id, row.label) == (phone_number_id, label):
                return _d360_info(row, account)
            row.phone_number_id = phone_number_id
            row.label = label
            await session.flush()
            await bump_revision(session, CREDENTIALS_TOPIC)
            return _d360_info(row, account)

    async def d360_key(self, key_hash: str) -> D360KeyLookup | None:
        """The key's account and phone number, if the key is live and its account enabled."""
        query = (
            select(AccountRow.name, AccountRow.qps, D360KeyRow.phone_number_id)
            .select_from(D360KeyRow)
            .join(AccountRow, AccountRow.id == D360KeyRow.account_id)
            .where(
                D360KeyRow.key_hash == key_hash,
                D360KeyRow.revoked_at.is_(None),
                AccountRow.disabled_at.is_(None),
            )
        )
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).one_or_none()
        return None if found is None else D360KeyLookup(*found)

    async def add_graph_token(
        self, account: str, token_hash: str, label: str | None = None
    ) -> CredentialInfo:
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            await _refuse_known_hash(session, GraphTokenRow.token_hash == token_hash)
            row = GraphTokenRow(
                account_id=owner, token_hash=token_hash, label=label, created_at=utcnow()
            )
            session.add(row)
            await session.flush()
            await bump_revision(session, CREDENTIALS_TOPIC)
            return _graph_info(row, account)

    async def put_graph_token(
        self, account: str, token_hash: str, label: str | None = None
    ) -> CredentialInfo:
        """Add the token unless it is stored already (then update its label)."""
        async with writing(self._sessions) as session:
            owner = await _account_id(session, account)
            row = (
                await session.execute(
                    select(GraphTokenRow)
                    .where(GraphTokenRow.token_hash == token_hash)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                row = GraphTokenRow(account_id=owner, token_hash=token_hash, created_at=utcnow())
                session.add(row)
            elif row.account_id != owner:
                raise Conflict("this Graph token belongs to another account")
            elif row.label == label:
                return _graph_info(row, account)
            row.label = label
            await session.flush()
            await bump_revision(session, CREDENTIALS_TOPIC)
            return _graph_info(row, account)

    async def graph_token(self, token_hash: str) -> GraphTokenLookup | None:
        """The token's account, if the token is live and its account enabled."""
        query = (
            select(AccountRow.name, AccountRow.qps)
            .select_from(GraphTokenRow)
            .join(AccountRow, AccountRow.id == GraphTokenRow.account_id)
            .where(
                GraphTokenRow.token_hash == token_hash,
                GraphTokenRow.revoked_at.is_(None),
                AccountRow.disabled_at.is_(None),
            )
        )
        async with reading(self._sessions) as session:
            found = (await session.execute(query)).one_or_none()
        return None if found is None else GraphTokenLookup(*found)

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
                    )
                )
            found.extend(_d360_info(row, name) for row, name in (await session.execute(d360)))
            found.extend(_graph_info(row, name) for row, name in (await session.execute(graph)))
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
            await bump_revision(session, CREDENTIALS_TOPIC)
            return True


async def _account_id(session: AsyncSession, name: str) -> int:
    account_id: int | None = await session.scalar(
        select(AccountRow.id).where(AccountRow.name == name)
    )
    if account_id is None:
        raise UnknownAccount(name)
    return account_id


async def _refuse_known_hash(session: AsyncSession, condition: ColumnElement[bool]) -> None:
    # A clear error instead of an integrity error; the unique index still guards races.
    if await session.scalar(select(1).where(condition)) is not None:
        raise Conflict("a credential with this hash already exists")


def _d360_info(row: D360KeyRow, account: str) -> CredentialInfo:
    return CredentialInfo(
        CredentialKind.D360_KEY,
        str(row.id),
        account,
        row.label,
        row.created_at,
        row.revoked_at,
        hash_prefix=row.key_hash[:HASH_PREFIX_LENGTH],
        phone_number_id=row.phone_number_id,
    )


def _graph_info(row: GraphTokenRow, account: str) -> CredentialInfo:
    return CredentialInfo(
        CredentialKind.GRAPH_TOKEN,
        str(row.id),
        account,
        row.label,
        row.created_at,
        row.revoked_at,
        hash_prefix=row.token_hash[:HASH_PREFIX_LENGTH],
    )
