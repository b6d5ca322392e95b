"""Purging deleted spaces and accounts in storage, on SQLite and PostgreSQL: what deletion
keeps (history, node health, alerts, silences, keys) goes, other tenants' rows stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.domain.records import SilenceScope, TransitionCause
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.deletion import Deletion
from wahealth.storage.errors import UnknownAccount, UnknownSpace
from wahealth.storage.health import HealthRepository
from wahealth.storage.models import AccessKeyRow, NodeHealthRow, SilenceRow, TransitionRow
from wahealth.storage.purge import Purge
from wahealth.storage.recording import ReportRecord
from wahealth.storage.silences import SilenceRepository
from wahealth.storage.tenancy import TenancyRepository

from ._reports import codes, overall, report

Sessions = async_sessionmaker[AsyncSession]
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _record(node_id: str, space_id: str) -> ReportRecord:
    payload = {**report("LIMITED"), "id": node_id}
    return ReportRecord(
        node_id, "PHONE_NUMBER", space_id, overall(payload), payload, codes(payload), AT,
        TransitionCause.POLL,
    )  # fmt: skip


async def _count(sessions: Sessions, model: type, space_id: str) -> int:
    async with sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(model).where(model.space_id == space_id)
        )
        return int(found or 0)


async def _tenants(sessions: Sessions, tenancy: TenancyRepository) -> None:
    for name in ("acme", "other"):
        await tenancy.upsert_account(name)
        await tenancy.upsert_space(f"{name}-space", name)
        await HealthRepository(sessions).record_many(
            [_record(f"{name}-node-{i}", f"{name}-space") for i in range(3)]
        )
        await SilenceRepository(sessions).add(
            f"{name}-space", SilenceScope.SPACE, f"{name}-space", starts_at=AT,
            ends_at=AT + timedelta(hours=1), reason=None, created_by="ops",
        )  # fmt: skip


async def test_a_deleted_space_is_purged_and_the_others_are_kept(
    sessions: Sessions, tenancy: TenancyRepository
) -> None:
    await _tenants(sessions, tenancy)
    purge = Purge(sessions)
    with pytest.raises(UnknownSpace):  # a live space is deleted first
        await purge.purge_space("acme-space")
    await Deletion(sessions).delete_space("acme-space")
    assert await _count(sessions, TransitionRow, "acme-space") == 3

    done = await purge.purge_space("acme-space")
    assert (done.transitions, done.nodes) == (3, 3)
    for model in (TransitionRow, NodeHealthRow, SilenceRow):
        assert await _count(sessions, model, "acme-space") == 0
        assert await _count(sessions, model, "other-space") >= 1
    assert await tenancy.get_space("other-space") is not None
    with pytest.raises(UnknownSpace):
        await purge.purge_space("acme-space")
    # The id can be used again.
    await tenancy.upsert_space("acme-space", "acme")


async def test_a_deleted_account_is_purged_with_its_keys_and_only_after_its_deletion(
    sessions: Sessions, tenancy: TenancyRepository, credentials: CredentialRepository
) -> None:
    await _tenants(sessions, tenancy)
    await credentials.add_access_key("acme", "LTAIacme", "enc:1")
    await credentials.add_access_key("other", "LTAIother", "enc:2")
    purge = Purge(sessions)
    with pytest.raises(UnknownAccount):
        await purge.purge_account("acme")
    await Deletion(sessions).delete_account("acme")
    assert await purge.purge_deleted_before(AT - timedelta(days=1)) == []

    purged = await purge.purge_deleted_before(datetime.now(UTC) + timedelta(seconds=1))
    assert purged == ["space acme-space", "account acme"]
    assert await _count(sessions, TransitionRow, "acme-space") == 0
    assert await _count(sessions, TransitionRow, "other-space") == 3
    async with sessions() as session:
        keys = list(await session.scalars(select(AccessKeyRow.id)))
    assert keys == ["LTAIother"]
    assert [a.name for a in await tenancy.list_accounts()] == ["other"]
