"""Accounts, spaces and WABAs: idempotent upserts and ownership that never moves silently."""

from __future__ import annotations

import pytest

from wahealth.storage.errors import OwnershipConflict, UnknownAccount, UnknownSpace
from wahealth.storage.tenancy import TenancyRepository


async def test_upsert_account_is_idempotent_and_updates_the_rate_limit(
    tenancy: TenancyRepository,
) -> None:
    first = await tenancy.upsert_account("acme")
    again = await tenancy.upsert_account("acme")
    assert again == first
    assert first.qps == 5

    raised = await tenancy.upsert_account("acme", qps=20)
    assert (raised.id, raised.qps, raised.created_at) == (first.id, 20, first.created_at)
    await tenancy.upsert_account("beta", qps=1)

    assert [(a.name, a.qps) for a in await tenancy.list_accounts()] == [("acme", 20), ("beta", 1)]
    assert await tenancy.get_account("nobody") is None


async def test_upsert_account_rejects_a_rate_below_one(tenancy: TenancyRepository) -> None:
    with pytest.raises(ValueError, match="qps"):
        await tenancy.upsert_account("acme", qps=0)
    assert await tenancy.list_accounts() == []


async def test_disable_and_enable_account(tenancy: TenancyRepository) -> None:
    await tenancy.upsert_account("acme")
    disabled = await tenancy.disable_account("acme")
    assert disabled.disabled
    assert (await tenancy.disable_account("acme")).disabled_at == disabled.disabled_at
    # Re-declaring the account (e.g. from the config file on restart) does not re-enable it.
    assert (await tenancy.upsert_account("acme", qps=9)).disabled
    assert not (await tenancy.enable_account("acme")).disabled
    with pytest.raises(UnknownAccount):
        await tenancy.disable_account("nobody")


async def test_space_belongs_to_one_account(tenancy: TenancyRepository) -> None:
    await tenancy.upsert_account("acme")
    await tenancy.upsert_account("rival")
    space = await tenancy.upsert_space("s1", "acme")
    assert await tenancy.upsert_space("s1", "acme") == space

    with pytest.raises(OwnershipConflict) as caught:
        await tenancy.upsert_space("s1", "rival")
    assert (caught.value.owner, caught.value.claimant) == ("acme", "rival")
    assert await tenancy.account_of_space("s1") == "acme"

    with pytest.raises(UnknownAccount):
        await tenancy.upsert_space("s2", "nobody")
    await tenancy.upsert_space("s0", "rival")
    assert [(s.id, s.account) for s in await tenancy.list_spaces()] == [
        ("s0", "rival"),
        ("s1", "acme"),
    ]
    assert [s.id for s in await tenancy.list_spaces(account="acme")] == ["s1"]
    assert await tenancy.account_of_space("nowhere") is None


async def test_upsert_waba_keeps_details_and_refuses_to_move(
    tenancy: TenancyRepository, acme: str
) -> None:
    await tenancy.upsert_waba("waba-1", acme, name="Acme main")
    waba = await tenancy.get_waba("waba-1")
    assert waba is not None
    assert (waba.space_id, waba.business_id, waba.app_id, waba.name) == (
        acme,
        "biz-1",
        "app-1",
        "Acme main",
    )
    await tenancy.upsert_waba("waba-0", acme)
    assert await tenancy.wabas_of_space(acme) == ["waba-0", "waba-1"]
    assert await tenancy.all_wabas() == ["waba-0", "waba-1"]
    assert [w.id for w in await tenancy.list_wabas(acme)] == ["waba-0", "waba-1"]
    assert await tenancy.list_wabas("elsewhere") == []
    assert await tenancy.space_of_waba("waba-1") == acme
    assert await tenancy.space_of_waba("waba-9") is None

    await tenancy.upsert_account("rival")
    await tenancy.upsert_space("rival-space", "rival")
    with pytest.raises(OwnershipConflict):
        await tenancy.upsert_waba("waba-1", "rival-space")
    with pytest.raises(UnknownSpace):
        await tenancy.upsert_waba("waba-2", "no-space")
    assert await tenancy.space_of_waba("waba-1") == acme
