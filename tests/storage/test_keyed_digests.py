"""Token digests are stored keyed by the master key; unkeyed and older rows migrate on use."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.auth.secretbox import SecretBox
from wahealth.auth.tokens import hash_token
from wahealth.storage import CredentialRepository
from wahealth.storage.errors import Conflict
from wahealth.storage.models import D360KeyRow, GraphTokenRow

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
async def account(acme: str) -> str:
    return "acme"


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[str], list[str]]:
    async with sessions() as session:
        d360 = list((await session.scalars(select(D360KeyRow.key_hash))).all())
        graph = list((await session.scalars(select(GraphTokenRow.token_hash))).all())
    return d360, graph


async def test_stored_digests_are_keyed_and_found_by_the_lookup_digest(
    sessions: async_sessionmaker[AsyncSession], account: str
) -> None:
    hasher = SecretBox.from_key(NEW_KEY).token_hasher()
    keyed = CredentialRepository(sessions, hasher)
    await keyed.add_d360_key(account, hash_token("weak-key"), "42")
    await keyed.put_graph_token(account, hash_token("weak-token"))

    d360, graph = await _stored(sessions)
    assert d360 == [hasher.hash("weak-key")]
    assert graph == [hasher.hash("weak-token")]
    assert hash_token("weak-key") not in d360  # a leaked table does not confirm a guess
    found = await keyed.d360_key(hash_token("weak-key"))
    assert found is not None
    assert found.phone_number_id == "42"
    assert await keyed.graph_token(hash_token("weak-token")) is not None
    # Another master key (another deployment, or an attacker's guess) finds nothing.
    other = CredentialRepository(sessions, SecretBox.from_key(OLD_KEY).token_hasher())
    assert await other.graph_token(hash_token("weak-token")) is None


async def test_unkeyed_rows_are_rewritten_on_first_use(
    sessions: async_sessionmaker[AsyncSession], account: str
) -> None:
    legacy = CredentialRepository(sessions)  # what older versions stored
    await legacy.add_d360_key(account, hash_token("old-key"), "42")
    await legacy.add_graph_token(account, hash_token("old-token"))
    hasher = SecretBox.from_key(NEW_KEY).token_hasher()
    keyed = CredentialRepository(sessions, hasher)

    assert await keyed.d360_key(hash_token("old-key")) is not None
    assert await keyed.graph_token(hash_token("old-token")) is not None

    assert await _stored(sessions) == ([hasher.hash("old-key")], [hasher.hash("old-token")])
    assert await keyed.graph_token(hash_token("old-token")) is not None
    assert await legacy.graph_token(hash_token("old-token")) is None


async def test_config_apply_rewrites_an_unkeyed_row_instead_of_adding_one(
    sessions: async_sessionmaker[AsyncSession], account: str
) -> None:
    await CredentialRepository(sessions).put_graph_token(account, hash_token("cfg"), "config")
    hasher = SecretBox.from_key(NEW_KEY).token_hasher()
    keyed = CredentialRepository(sessions, hasher)
    await keyed.put_graph_token(account, hash_token("cfg"), "config")
    await keyed.put_graph_token(account, hash_token("cfg"), "config")
    assert (await _stored(sessions))[1] == [hasher.hash("cfg")]
    assert len(await keyed.list_credentials(account)) == 1


async def test_a_master_key_rotation_keeps_tokens_valid_and_rekeys_them(
    sessions: async_sessionmaker[AsyncSession], account: str
) -> None:
    before = CredentialRepository(sessions, SecretBox.from_key(OLD_KEY).token_hasher())
    await before.add_graph_token(account, hash_token("t"))
    rotated = SecretBox.from_key(f"{NEW_KEY},{OLD_KEY}").token_hasher()
    after = CredentialRepository(sessions, rotated)

    assert await after.graph_token(hash_token("t")) is not None
    assert (await _stored(sessions))[1] == [rotated.hash("t")]
    only_new = CredentialRepository(sessions, SecretBox.from_key(NEW_KEY).token_hasher())
    assert await only_new.graph_token(hash_token("t")) is not None


async def test_a_token_known_unkeyed_cannot_be_added_again(
    sessions: async_sessionmaker[AsyncSession], account: str
) -> None:
    await CredentialRepository(sessions).add_graph_token(account, hash_token("dup"))
    keyed = CredentialRepository(sessions, SecretBox.from_key(NEW_KEY).token_hasher())
    with pytest.raises(Conflict):
        await keyed.add_graph_token(account, hash_token("dup"))
