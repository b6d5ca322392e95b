"""Keys of every kind through the admin use cases: create, list, get, rotate, revoke, delete.

Keys are named as `wahealth keys list` names them: `ak:<AccessKey id>`, `d360:<n>`,
`graph:<n>`. A new secret exists only in the answer that creates it; what is stored
is the AccessKey secret encrypted, or a 360dialog key's or Graph token's keyed hash.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wahealth.admin import schemas
from wahealth.admin.service import AdminBase
from wahealth.admin.tokens import Caller
from wahealth.auth.tokens import (
    hash_token,
    new_access_key_id,
    new_access_key_secret,
    new_d360_key,
    new_graph_token,
)
from wahealth.storage.credential_records import CredentialInfo, CredentialKind
from wahealth.storage.errors import Conflict, NotFound, UnknownAccount, UnknownCredential

KIND_OF_NAME = {
    "access-key": CredentialKind.ACCESS_KEY,
    "d360": CredentialKind.D360_KEY,
    "graph": CredentialKind.GRAPH_TOKEN,
}
NAME_OF_KIND = {kind: name for name, kind in KIND_OF_NAME.items()}
_PREFIX = {
    CredentialKind.ACCESS_KEY: "ak",
    CredentialKind.D360_KEY: "d360",
    CredentialKind.GRAPH_TOKEN: "graph",
}
_KIND_OF_PREFIX = {prefix: kind for kind, prefix in _PREFIX.items()}


def key_ref(info: CredentialInfo) -> str:
    return f"{_PREFIX[info.kind]}:{info.id}"


def parse_key_ref(ref: str) -> tuple[CredentialKind, str]:
    """The kind and stored id of `ak:ID`, `d360:N` or `graph:N`; UnknownCredential if none."""
    prefix, _, key_id = ref.partition(":")
    kind = _KIND_OF_PREFIX.get(prefix)
    if kind is None or not key_id:
        raise UnknownCredential("key", ref)
    return kind, key_id


def key_state(info: CredentialInfo, now: datetime) -> schemas.KeyState:
    if info.revoked_at is not None:
        return "revoked"
    if info.expires_at is None:
        return "live"
    return "expiring" if info.expires_at > now else "expired"


def shown_key(info: CredentialInfo, now: datetime) -> schemas.Key:
    return schemas.Key(
        id=key_ref(info),
        kind=NAME_OF_KIND[info.kind],
        account=info.account,
        state=key_state(info, now),
        label=info.label,
        phone_number_id=info.phone_number_id,
        hash_prefix=info.hash_prefix,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
        expires_at=info.expires_at,
    )


class Keys(AdminBase):
    """Key lifecycle for admin callers."""

    def _new(self, info: CredentialInfo, secret: str) -> schemas.NewKey:
        shown = shown_key(info, self.stores.clock())
        access_key_id = info.id if info.kind is CredentialKind.ACCESS_KEY else None
        return schemas.NewKey(**shown.model_dump(), secret=secret, access_key_id=access_key_id)

    async def _key(self, caller: Caller, ref: str) -> CredentialInfo:
        kind, key_id = parse_key_ref(ref)
        info = await self.stores.lifecycle.get(kind, key_id)
        if not caller.manages(info.account):
            raise UnknownCredential("key", ref)
        return info

    async def list_keys(self, caller: Caller, account: str | None) -> list[schemas.Key]:
        if account is not None:
            self.require_manages(caller, account)
            if await self.stores.tenancy.get_account(account) is None:
                raise UnknownAccount(account)
        found = await self.stores.credentials.list_credentials(account or caller.account)
        now = self.stores.clock()
        return [shown_key(info, now) for info in found]

    async def get_key(self, caller: Caller, ref: str) -> schemas.Key:
        return shown_key(await self._key(caller, ref), self.stores.clock())

    async def create_key(
        self,
        caller: Caller,
        body: schemas.AccessKeyCreate | schemas.D360KeyCreate | schemas.GraphTokenCreate,
    ) -> schemas.NewKey:
        self.require_manages(caller, body.account)
        account = await self.stores.tenancy.get_account(body.account)
        if account is None:
            raise UnknownAccount(body.account)
        if account.disabled:
            raise Conflict(f"account {body.account!r} is disabled; enable it first")
        credentials = self.stores.credentials
        if isinstance(body, schemas.AccessKeyCreate):
            key_id, secret = new_access_key_id(), new_access_key_secret()
            encrypted = self.stores.secretbox.encrypt(secret)
            info = await credentials.add_access_key(body.account, key_id, encrypted)
        elif isinstance(body, schemas.D360KeyCreate):
            await self._check_number(body.account, body.phone_number_id)
            secret = new_d360_key()
            info = await credentials.add_d360_key(
                body.account, hash_token(secret), body.phone_number_id, body.label
            )
        else:
            secret = new_graph_token()
            info = await credentials.add_graph_token(body.account, hash_token(secret), body.label)
        await self.changed(caller, "key.create", key_ref(info), body.account, kind=body.kind)
        return self._new(info, secret)

    async def _check_number(self, account: str, phone_number_id: str) -> None:
        """A 360dialog key answers for its number, so it must be a synced number of the account."""
        if await self.stores.catalog.node_in_account(phone_number_id, account) is None:
            raise NotFound(f"synced phone number of account {account!r}", phone_number_id)

    async def rotate_key(
        self, caller: Caller, ref: str, body: schemas.KeyRotate
    ) -> schemas.Rotation:
        info = await self._key(caller, ref)
        overlap = timedelta(seconds=body.overlap_seconds)
        lifecycle = self.stores.lifecycle
        if info.kind is CredentialKind.ACCESS_KEY:
            key_id, secret = new_access_key_id(), new_access_key_secret()
            encrypted = self.stores.secretbox.encrypt(secret)
            rotation = await lifecycle.rotate_access_key(info.id, key_id, encrypted, overlap)
        else:
            secret = new_d360_key() if info.kind is CredentialKind.D360_KEY else new_graph_token()
            rotation = await lifecycle.rotate_hashed(
                info.kind, info.id, hash_token(secret), overlap
            )
        await self.changed(
            caller,
            "key.rotate",
            ref,
            info.account,
            new=key_ref(rotation.new),
            old_expires_at=rotation.old.expires_at.isoformat() if rotation.old.expires_at else None,
        )
        now = self.stores.clock()
        return schemas.Rotation(
            old=shown_key(rotation.old, now), new=self._new(rotation.new, secret)
        )

    async def revoke_key(self, caller: Caller, ref: str) -> schemas.Key:
        info = await self._key(caller, ref)
        credentials = self.stores.credentials
        if info.kind is CredentialKind.ACCESS_KEY:
            revoked = await credentials.revoke_access_key(info.id)
        elif info.kind is CredentialKind.D360_KEY:
            revoked = await credentials.revoke_d360_key(int(info.id))
        else:
            revoked = await credentials.revoke_graph_token(int(info.id))
        if revoked:
            await self.changed(caller, "key.revoke", ref, info.account)
        return await self.get_key(caller, ref)

    async def delete_key(self, caller: Caller, ref: str) -> schemas.Key:
        info = await self._key(caller, ref)
        deleted = await self.stores.lifecycle.delete(info.kind, info.id)
        await self.changed(caller, "key.delete", ref, info.account)
        return shown_key(deleted, self.stores.clock())
