"""The master key check at start, on the stored rows: wrong key, rotation, a missing old key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from wahealth.auth.secretbox import SecretBox
from wahealth.master_key import MasterKeyRefused, refuse_a_new_key, verify_master_key
from wahealth.storage import (
    CredentialRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.storage.connections import ConnectionRepository
from wahealth.storage.master_key_checks import MasterKeyCheckRepository
from wahealth.testing import demo_settings

A = Fernet.generate_key().decode()
B = Fernet.generate_key().decode()


@pytest.fixture
async def checks(tmp_path: Path) -> AsyncIterator[MasterKeyCheckRepository]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    await TenancyRepository(sessions).upsert_account("a")
    yield MasterKeyCheckRepository(sessions)
    await engine.dispose()


async def _store_secret(checks: MasterKeyCheckRepository, box: SecretBox, key_id: str) -> None:
    credentials = CredentialRepository(checks._sessions, box.token_hasher())
    await credentials.put_access_key("a", key_id, box.encrypt("the secret"))


async def test_first_key_is_recorded_and_another_refused(
    checks: MasterKeyCheckRepository, tmp_path: Path
) -> None:
    settings = demo_settings(tmp_path)
    await verify_master_key(settings, SecretBox.from_key(A), checks)
    assert await checks.digest() is not None
    await verify_master_key(settings, SecretBox.from_key(A), checks)  # again: fine
    with pytest.raises(MasterKeyRefused, match="is not the key the stored secrets"):
        await verify_master_key(settings, SecretBox.from_key(B), checks)


async def test_a_database_from_before_the_check_is_judged_by_its_secrets(
    checks: MasterKeyCheckRepository, tmp_path: Path
) -> None:
    await _store_secret(checks, SecretBox.from_key(A), "LTAI1")
    settings = demo_settings(tmp_path)
    with pytest.raises(MasterKeyRefused, match="cannot decrypt the stored secrets"):
        await verify_master_key(settings, SecretBox.from_key(B), checks)
    assert await checks.digest() is None  # nothing recorded for the wrong key
    await verify_master_key(settings, SecretBox.from_key(A), checks)
    assert await checks.digest() is not None


async def test_rotation_then_dropping_the_old_key_too_early(
    checks: MasterKeyCheckRepository, tmp_path: Path
) -> None:
    settings = demo_settings(tmp_path)
    await verify_master_key(settings, SecretBox.from_key(A), checks)
    await _store_secret(checks, SecretBox.from_key(A), "LTAI1")
    await verify_master_key(settings, SecretBox.from_key(f"{B},{A}"), checks)
    with pytest.raises(MasterKeyRefused, match="is not the key"):
        await verify_master_key(settings, SecretBox.from_key(A), checks)
    await _store_secret(checks, SecretBox.from_key(f"{B},{A}"), "LTAI2")  # under the new key
    # The new key alone passes the check, but the secret stored under the old one is unreadable.
    with pytest.raises(MasterKeyRefused, match="1 of 2 stored secrets checked cannot be decrypted"):
        await verify_master_key(settings, SecretBox.from_key(B), checks)


async def test_no_key_on_a_database_with_secrets_creates_none(
    checks: MasterKeyCheckRepository, tmp_path: Path
) -> None:
    key_file = tmp_path / "absent.key"
    settings = demo_settings(tmp_path, security={"master_key_file": str(key_file)})
    await refuse_a_new_key(settings, checks)  # nothing stored yet: a new key is fine
    await _store_secret(checks, SecretBox.from_key(A), "LTAI1")
    with pytest.raises(MasterKeyRefused, match="no new key was created"):
        await refuse_a_new_key(settings, checks)
    assert not key_file.exists()


async def test_a_database_holding_only_a_meta_connection_is_judged_by_its_token(
    checks: MasterKeyCheckRepository, tmp_path: Path
) -> None:
    box = SecretBox.from_key(A)
    await ConnectionRepository(checks._sessions).put(
        "acme", box.encrypt("EAAG-token"), box.encrypt("app-secret"), same=False
    )
    assert await checks.holds_secrets()
    settings = demo_settings(tmp_path)
    with pytest.raises(MasterKeyRefused, match="cannot decrypt the stored secrets"):
        await verify_master_key(settings, SecretBox.from_key(B), checks)
    await verify_master_key(settings, box, checks)
