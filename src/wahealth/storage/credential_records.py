"""What the credential repository hands out: lookups for authentication, infos for listings."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from wahealth.storage.models import AccessKeyRow, D360KeyRow, GraphTokenRow

HASH_PREFIX_LENGTH = 8


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
    label: str | None = None


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
    # Set once the key was rotated: it stops authenticating then.
    expires_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def live_at(self, now: datetime) -> bool:
        """Whether the key authenticates at `now` (its account's state aside)."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def d360_info(row: D360KeyRow, account: str) -> CredentialInfo:
    return CredentialInfo(
        CredentialKind.D360_KEY,
        str(row.id),
        account,
        row.label,
        row.created_at,
        row.revoked_at,
        hash_prefix=row.key_hash[:HASH_PREFIX_LENGTH],
        phone_number_id=row.phone_number_id,
        expires_at=row.expires_at,
    )


def graph_info(row: GraphTokenRow, account: str) -> CredentialInfo:
    return CredentialInfo(
        CredentialKind.GRAPH_TOKEN,
        str(row.id),
        account,
        row.label,
        row.created_at,
        row.revoked_at,
        hash_prefix=row.token_hash[:HASH_PREFIX_LENGTH],
        expires_at=row.expires_at,
    )


def access_key_info(row: AccessKeyRow, account: str) -> CredentialInfo:
    return CredentialInfo(
        CredentialKind.ACCESS_KEY,
        row.id,
        account,
        None,
        row.created_at,
        row.revoked_at,
        expires_at=row.expires_at,
    )
