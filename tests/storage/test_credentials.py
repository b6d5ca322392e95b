"""Credential storage: lookups for each dialect, listings without secrets, revocation."""

from __future__ import annotations

import pytest

from wahealth.storage.credentials import (
    AccessKeyLookup,
    CredentialKind,
    CredentialRepository,
    D360KeyLookup,
    GraphTokenLookup,
)
from wahealth.storage.errors import Conflict, UnknownAccount, UnknownCredential
from wahealth.storage.tenancy import TenancyRepository

D360_HASH = "d3" * 32
GRAPH_HASH = "9a" * 32


@pytest.fixture
async def accounts(tenancy: TenancyRepository) -> None:
    await tenancy.upsert_account("acme", qps=7)
    await tenancy.upsert_account("beta", qps=3)


@pytest.mark.usefixtures("accounts")
async def test_access_key_lookup_and_revoke(credentials: CredentialRepository) -> None:
    await credentials.add_access_key("acme", "LTAIacme", "enc:secret")
    assert await credentials.access_key("LTAIacme") == AccessKeyLookup(
        "acme", 7, "enc:secret", False
    )
    assert await credentials.access_key("LTAInone") is None

    assert await credentials.revoke_access_key("LTAIacme") is True
    assert await credentials.revoke_access_key("LTAIacme") is False
    # Still found, so the caller can tell "revoked" from "unknown".
    assert await credentials.access_key("LTAIacme") == ("acme", 7, "enc:secret", True)
    with pytest.raises(UnknownCredential):
        await credentials.revoke_access_key("LTAInone")


@pytest.mark.usefixtures("accounts")
async def test_duplicates_and_unknown_accounts_are_refused(
    credentials: CredentialRepository,
) -> None:
    await credentials.add_access_key("acme", "LTAIacme", "enc:1")
    with pytest.raises(Conflict):
        await credentials.add_access_key("beta", "LTAIacme", "enc:2")
    assert await credentials.access_key("LTAIacme") == ("acme", 7, "enc:1", False)
    with pytest.raises(UnknownAccount):
        await credentials.add_access_key("nobody", "LTAIother", "enc")
    await credentials.add_d360_key("acme", D360_HASH, "106540352242922")
    with pytest.raises(Conflict):
        await credentials.add_d360_key("beta", D360_HASH, "1")
    await credentials.add_graph_token("acme", GRAPH_HASH)
    with pytest.raises(Conflict):
        await credentials.add_graph_token("beta", GRAPH_HASH)


@pytest.mark.usefixtures("accounts")
async def test_d360_key_and_graph_token_lookups_skip_revoked_ones(
    credentials: CredentialRepository,
) -> None:
    d360 = await credentials.add_d360_key("acme", D360_HASH, "106540352242922", label="shop")
    graph = await credentials.add_graph_token("beta", GRAPH_HASH, label="ci")
    assert await credentials.d360_key(D360_HASH) == D360KeyLookup("acme", 7, "106540352242922")
    assert await credentials.graph_token(GRAPH_HASH) == GraphTokenLookup("beta", 3, "ci")
    assert await credentials.d360_key(GRAPH_HASH) is None

    assert await credentials.revoke_d360_key(int(d360.id)) is True
    assert await credentials.revoke_graph_token(int(graph.id)) is True
    assert await credentials.d360_key(D360_HASH) is None
    assert await credentials.graph_token(GRAPH_HASH) is None
    with pytest.raises(UnknownCredential):
        await credentials.revoke_graph_token(999)


@pytest.mark.usefixtures("accounts")
async def test_disabled_account_credentials_stop_working(
    tenancy: TenancyRepository, credentials: CredentialRepository
) -> None:
    await credentials.add_access_key("acme", "LTAIacme", "enc")
    await credentials.add_d360_key("acme", D360_HASH, "1")
    await credentials.add_graph_token("acme", GRAPH_HASH)
    await tenancy.disable_account("acme")
    lookup = await credentials.access_key("LTAIacme")
    assert lookup is not None
    assert lookup.revoked
    assert await credentials.d360_key(D360_HASH) is None
    assert await credentials.graph_token(GRAPH_HASH) is None
    await tenancy.enable_account("acme")
    assert await credentials.graph_token(GRAPH_HASH) == ("acme", 7, None)


@pytest.mark.usefixtures("accounts")
async def test_listing_shows_ids_labels_and_hash_prefixes_never_secrets(
    credentials: CredentialRepository,
) -> None:
    await credentials.add_access_key("acme", "LTAIacme", "enc:very-secret")
    d360 = await credentials.add_d360_key("acme", D360_HASH, "106540352242922", label="shop")
    await credentials.add_graph_token("beta", GRAPH_HASH, label="ci")
    await credentials.revoke_d360_key(int(d360.id))

    listed = await credentials.list_credentials()
    assert [(c.account, c.kind, c.label, c.revoked) for c in listed] == [
        ("acme", CredentialKind.ACCESS_KEY, None, False),
        ("acme", CredentialKind.D360_KEY, "shop", True),
        ("beta", CredentialKind.GRAPH_TOKEN, "ci", False),
    ]
    assert listed[0].id == "LTAIacme"
    assert (listed[1].hash_prefix, listed[1].phone_number_id) == ("d3d3d3d3", "106540352242922")
    assert listed[2].hash_prefix == "9a9a9a9a"
    shown = repr(listed)
    assert "very-secret" not in shown
    assert D360_HASH not in shown
    assert GRAPH_HASH not in shown

    assert [c.kind for c in await credentials.list_credentials("beta")] == [
        CredentialKind.GRAPH_TOKEN
    ]
    assert await credentials.list_credentials("nobody") == []


@pytest.mark.usefixtures("accounts")
async def test_put_applies_configuration_idempotently(credentials: CredentialRepository) -> None:
    """What a config file declares is put at every start: no duplicates, no errors."""
    for _ in range(2):
        await credentials.put_access_key("acme", "LTAIcfg", "enc:v1")
        await credentials.put_d360_key("acme", D360_HASH, "106540352242922", "config")
        await credentials.put_graph_token("acme", GRAPH_HASH, "config")
    assert len(await credentials.list_credentials("acme")) == 3

    await credentials.put_access_key("acme", "LTAIcfg", "enc:v2")  # secret rotated in the config
    assert await credentials.access_key("LTAIcfg") == ("acme", 7, "enc:v2", False)
    await credentials.put_d360_key("acme", D360_HASH, "105154286024403", "moved")
    assert await credentials.d360_key(D360_HASH) == ("acme", 7, "105154286024403")

    await credentials.revoke_access_key("LTAIcfg")
    await credentials.put_access_key("acme", "LTAIcfg", "enc:v2")
    lookup = await credentials.access_key("LTAIcfg")
    assert lookup is not None
    assert lookup.revoked  # a revocation outlives restarts

    with pytest.raises(Conflict):
        await credentials.put_access_key("beta", "LTAIcfg", "enc")
    with pytest.raises(Conflict):
        await credentials.put_graph_token("beta", GRAPH_HASH)
    with pytest.raises(Conflict):
        await credentials.put_d360_key("beta", D360_HASH, "1")
    assert await credentials.graph_token(GRAPH_HASH) == ("acme", 7, "config")
