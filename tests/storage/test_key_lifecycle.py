"""Rotation, expiry, deletion and the audit log in storage, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.auth.tokens import TokenHasher
from wahealth.storage.admin import AuditLog
from wahealth.storage.credentials import CredentialKind, CredentialRepository
from wahealth.storage.deletion import Deletion
from wahealth.storage.errors import Conflict, UnknownAccount, UnknownCredential, UnknownSpace
from wahealth.storage.key_lifecycle import KeyLifecycle
from wahealth.storage.tenancy import TenancyRepository

Sessions = async_sessionmaker[AsyncSession]
HASHER = TokenHasher([b"k" * 32])


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_rotated_key_authenticates_until_its_overlap_ends(
    sessions: Sessions, tenancy: TenancyRepository
) -> None:
    clock = Clock()
    await tenancy.upsert_account("acme", qps=7)
    credentials = CredentialRepository(sessions, HASHER, clock=clock)
    lifecycle = KeyLifecycle(sessions, HASHER, clock=clock)
    await credentials.add_access_key("acme", "LTAIold", "enc:old")
    await credentials.add_graph_token("acme", "aa" * 32, "ci")

    rotation = await lifecycle.rotate_access_key(
        "LTAIold", "LTAInew", "enc:new", timedelta(hours=1)
    )
    assert rotation.old.expires_at == clock.now + timedelta(hours=1)
    assert (rotation.new.id, rotation.new.expires_at) == ("LTAInew", None)
    graph_id = next(
        i.id for i in await credentials.list_credentials() if i.kind is CredentialKind.GRAPH_TOKEN
    )
    await lifecycle.rotate_hashed(CredentialKind.GRAPH_TOKEN, graph_id, "bb" * 32, timedelta(0))

    assert await credentials.access_key("LTAIold") == ("acme", 7, "enc:old", False)
    assert await credentials.graph_token("aa" * 32) is None  # no overlap: ended at once
    assert await credentials.graph_token("bb" * 32) == ("acme", 7, "ci")
    clock.now += timedelta(hours=1)
    assert await credentials.access_key("LTAIold") == ("acme", 7, "enc:old", True)
    assert await credentials.access_key("LTAInew") == ("acme", 7, "enc:new", False)

    with pytest.raises(Conflict, match="has expired"):
        await lifecycle.rotate_access_key("LTAIold", "LTAIx", "enc:x", timedelta(hours=1))
    listed = {info.id: info for info in await credentials.list_credentials("acme")}
    assert listed["LTAIold"].expires_at == clock.now
    assert not listed["LTAIold"].live_at(clock.now)
    assert listed["LTAInew"].live_at(clock.now)

    deleted = await lifecycle.delete(CredentialKind.ACCESS_KEY, "LTAIold")
    assert deleted.id == "LTAIold"
    assert await credentials.access_key("LTAIold") is None
    with pytest.raises(UnknownCredential):
        await lifecycle.get(CredentialKind.D360_KEY, "x1")


async def test_deleting_an_account_revokes_everything_and_keeps_the_rows(
    sessions: Sessions, tenancy: TenancyRepository
) -> None:
    await tenancy.upsert_account("acme")
    await tenancy.upsert_space("acme-space", "acme")
    await tenancy.upsert_waba("111", "acme-space")
    credentials = CredentialRepository(sessions, HASHER)
    await credentials.add_access_key("acme", "LTAIacme", "enc")
    await credentials.add_d360_key("acme", "cc" * 32, "222")
    deletion = Deletion(sessions)

    deleted = await deletion.delete_account("acme")
    assert (deleted.spaces, deleted.revoked_keys) == (["acme-space"], 2)
    assert await tenancy.get_account("acme") is None
    assert await tenancy.list_spaces() == []
    assert await tenancy.account_of_space("acme-space") is None
    assert await tenancy.all_wabas() == []
    assert all(info.revoked for info in await credentials.list_credentials("acme"))
    with pytest.raises(UnknownAccount):
        await deletion.delete_account("acme")
    with pytest.raises(UnknownSpace):
        await deletion.delete_space("acme-space")

    # Created again, the name comes back; its old keys stay revoked.
    again = await tenancy.upsert_account("acme", 4)
    assert (again.qps, again.disabled) == (4, False)
    assert (await credentials.access_key("LTAIacme") or ("", 0, "", False))[3] is True
    space = await tenancy.upsert_space("acme-space", "acme")
    assert space.id == "acme-space"


async def test_the_audit_log_pages_newest_first(sessions: Sessions) -> None:
    audit = AuditLog(sessions)
    for n in range(5):
        await audit.record("cli:ops", "key.create", f"graph:{n}", account="acme" if n % 2 else None)
    first = await audit.entries(limit=2)
    assert [e.target for e in first] == ["graph:4", "graph:3"]
    rest = await audit.entries(before=first[-1].id, limit=10)
    assert [e.target for e in rest] == ["graph:2", "graph:1", "graph:0"]
    assert [e.target for e in await audit.entries(account="acme")] == ["graph:3", "graph:1"]
