"""A key's life after it is created: read one, rotate it with an overlap, delete it.

Rotation adds a successor for the same account (and, for a 360dialog key, the same
phone number and label) and gives the old key an `expires_at`, both in one
transaction: until then either key authenticates, after it only the new one does.
Callers hand in what is stored (an encrypted secret or a lookup digest); this module
never sees a secret in the clear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.core.ports import DigestKeys
from wahealth.storage._session import Factory, reading, writing
from wahealth.storage.columns import utcnow
from wahealth.storage.credential_records import (
    CredentialInfo,
    CredentialKind,
    access_key_info,
    d360_info,
    graph_info,
)
from wahealth.storage.errors import Conflict, UnknownCredential
from wahealth.storage.models import AccessKeyRow, AccountRow, D360KeyRow, GraphTokenRow

KeyRow = AccessKeyRow | D360KeyRow | GraphTokenRow

_MODELS: dict[CredentialKind, type[AccessKeyRow] | type[D360KeyRow] | type[GraphTokenRow]] = {
    CredentialKind.ACCESS_KEY: AccessKeyRow,
    CredentialKind.D360_KEY: D360KeyRow,
    CredentialKind.GRAPH_TOKEN: GraphTokenRow,
}
_NAMES = {
    CredentialKind.ACCESS_KEY: "access key",
    CredentialKind.D360_KEY: "360dialog key",
    CredentialKind.GRAPH_TOKEN: "Graph token",
}


@dataclass(frozen=True, slots=True)
class Rotation:
    """The rotated key (now with its expiry) and its successor."""

    old: CredentialInfo
    new: CredentialInfo


def info_of(row: KeyRow, account: str) -> CredentialInfo:
    """A key row as listings show it."""
    if isinstance(row, AccessKeyRow):
        return access_key_info(row, account)
    if isinstance(row, D360KeyRow):
        return d360_info(row, account)
    return graph_info(row, account)


class KeyLifecycle:
    """Get, rotate and delete keys of every kind, by kind and stored id."""

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

    async def get(self, kind: CredentialKind, key_id: str) -> CredentialInfo:
        """The key; UnknownCredential if there is none."""
        async with reading(self._sessions) as session:
            row, account = await _locked(session, kind, key_id, lock=False)
            return info_of(row, account)

    async def rotate_hashed(
        self, kind: CredentialKind, key_id: str, digest: str, overlap: timedelta
    ) -> Rotation:
        """Add a successor known by its lookup `digest`; the old key expires after `overlap`."""
        if kind is CredentialKind.ACCESS_KEY:
            raise ValueError("rotate AccessKeys with rotate_access_key")
        return await self._rotate(kind, key_id, overlap, digest=digest)

    async def rotate_access_key(
        self, key_id: str, new_key_id: str, secret_encrypted: str, overlap: timedelta
    ) -> Rotation:
        """Add a new AccessKey for the same account; the old one expires after `overlap`."""
        return await self._rotate(
            CredentialKind.ACCESS_KEY,
            key_id,
            overlap,
            new_key_id=new_key_id,
            secret_encrypted=secret_encrypted,
        )

    async def _rotate(
        self, kind: CredentialKind, key_id: str, overlap: timedelta, **new: str
    ) -> Rotation:
        if overlap < timedelta(0):
            raise ValueError("the overlap must not be negative")
        async with writing(self._sessions) as session:
            row, account = await _locked(session, kind, key_id, lock=True)
            now = self._clock()
            if row.revoked_at is not None:
                raise Conflict(f"{_NAMES[kind]} {key_id} is revoked; create a new key instead")
            if row.expires_at is not None and row.expires_at <= now:
                raise Conflict(f"{_NAMES[kind]} {key_id} has expired; create a new key instead")
            owner = await session.get(AccountRow, row.account_id)
            assert owner is not None  # a foreign key
            if owner.disabled_at is not None:
                raise Conflict(f"account {account!r} is disabled; enable it before rotating")
            ends = now + overlap
            row.expires_at = ends if row.expires_at is None else min(row.expires_at, ends)
            successor = self._successor(row, now, **new)
            session.add(successor)
            await session.flush()
            return Rotation(info_of(row, account), info_of(successor, account))

    def _successor(self, row: KeyRow, now: datetime, **new: str) -> KeyRow:
        common: dict[str, Any] = {"account_id": row.account_id, "created_at": now}
        if isinstance(row, AccessKeyRow):
            return AccessKeyRow(
                id=new["new_key_id"], secret_encrypted=new["secret_encrypted"], **common
            )
        digest = new["digest"]
        stored = digest if self._hasher is None else self._hasher.keyed(digest)
        if isinstance(row, D360KeyRow):
            return D360KeyRow(
                key_hash=stored, phone_number_id=row.phone_number_id, label=row.label, **common
            )
        return GraphTokenRow(token_hash=stored, label=row.label, **common)

    async def delete(self, kind: CredentialKind, key_id: str) -> CredentialInfo:
        """Remove the key for good (it stops authenticating within a second)."""
        async with writing(self._sessions) as session:
            row, account = await _locked(session, kind, key_id, lock=True)
            shown = info_of(row, account)
            model = _MODELS[kind]
            await session.execute(delete(model).where(model.id == row.id))
            return shown


async def _locked(
    session: AsyncSession, kind: CredentialKind, key_id: str, *, lock: bool
) -> tuple[KeyRow, str]:
    model = _MODELS[kind]
    stored_id: str | int = key_id
    if kind is not CredentialKind.ACCESS_KEY:
        if not (key_id.isascii() and key_id.isdigit()) or len(key_id) > 18:
            raise UnknownCredential(_NAMES[kind], key_id)
        stored_id = int(key_id)
    query = (
        select(model, AccountRow.name)
        .join(AccountRow, AccountRow.id == model.account_id)
        .where(model.id == stored_id)
    )
    if lock:
        query = query.with_for_update(of=model)
    found = (await session.execute(query)).one_or_none()
    if found is None:
        raise UnknownCredential(_NAMES[kind], key_id)
    row, account = found
    assert isinstance(row, AccessKeyRow | D360KeyRow | GraphTokenRow)
    return row, account
