"""Secrets encrypted at rest with a master key from the environment or a private key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from wahealth.auth.secretbox import SecretBox, SecretBoxError

PLAINTEXT = "LTAI-secret Éé中 +/~*"


def _key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_hides_the_plaintext() -> None:
    box = SecretBox.from_key(_key())

    token = box.encrypt(PLAINTEXT)

    assert token.isascii()
    assert PLAINTEXT not in token
    assert box.encrypt(PLAINTEXT) != token  # random IV per encryption
    assert box.decrypt(token) == PLAINTEXT


def test_wrong_key_is_a_clear_error_without_secrets() -> None:
    key = _key()
    token = SecretBox.from_key(key).encrypt(PLAINTEXT)
    other_key = _key()

    with pytest.raises(SecretBoxError) as info:
        SecretBox.from_key(other_key).decrypt(token)

    message = str(info.value)
    assert "wrong master key or corrupted value" in message
    for secret in (PLAINTEXT, key, other_key, token):
        assert secret not in message


@pytest.mark.parametrize("token", ["", "not-a-token", "gAAAAAB" + "A" * 80, "é"])
def test_corrupt_value_is_secretbox_error(token: str) -> None:
    with pytest.raises(SecretBoxError, match="corrupted"):
        SecretBox.from_key(_key()).decrypt(token)


def test_tampered_value_is_secretbox_error() -> None:
    box = SecretBox.from_key(_key())
    token = box.encrypt(PLAINTEXT)
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    with pytest.raises(SecretBoxError):
        box.decrypt(flipped)


@pytest.mark.parametrize("key", ["", " , ", "short", "é" * 44])
def test_unusable_master_key_is_refused(key: str) -> None:
    with pytest.raises(SecretBoxError) as info:
        SecretBox.from_key(key)

    assert key.strip(" ,") == "" or key not in str(info.value)


def test_rotation_first_key_encrypts_all_keys_decrypt() -> None:
    old, new = _key(), _key()
    old_token = SecretBox.from_key(old).encrypt(PLAINTEXT)
    rotating = SecretBox.from_key(f"{new},{old}")

    assert rotating.decrypt(old_token) == PLAINTEXT
    fresh = rotating.encrypt(PLAINTEXT)
    assert SecretBox.from_key(new).decrypt(fresh) == PLAINTEXT
    rotated = rotating.rotate(old_token)
    assert SecretBox.from_key(new).decrypt(rotated) == PLAINTEXT
    with pytest.raises(SecretBoxError):
        SecretBox.from_key(old).decrypt(rotated)


def test_load_creates_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "master.key"
    previous_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        token = SecretBox.load(None, key_file).encrypt(PLAINTEXT)
    finally:
        os.umask(previous_umask)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    created = key_file.read_text()
    Fernet(created.strip().encode())  # a real Fernet key
    assert SecretBox.load(None, key_file).decrypt(token) == PLAINTEXT
    assert SecretBox.load("", key_file).decrypt(token) == PLAINTEXT
    assert key_file.read_text() == created
    assert [p.name for p in key_file.parent.iterdir()] == ["master.key"]  # no temp files left


def test_env_key_wins_over_the_key_file(tmp_path: Path) -> None:
    env_key = _key()
    key_file = tmp_path / "master.key"

    token = SecretBox.load(env_key, key_file).encrypt(PLAINTEXT)

    assert not key_file.exists()
    assert SecretBox.from_key(env_key).decrypt(token) == PLAINTEXT
    key_file.write_text(_key())
    assert SecretBox.load(env_key, key_file).decrypt(token) == PLAINTEXT
    with pytest.raises(SecretBoxError):
        SecretBox.load(None, key_file).decrypt(token)


def test_key_file_may_list_several_keys_newest_first(tmp_path: Path) -> None:
    old, new = _key(), _key()
    old_token = SecretBox.from_key(old).encrypt(PLAINTEXT)
    key_file = tmp_path / "master.key"
    key_file.write_text(f"{new}\n{old}\n")
    key_file.chmod(0o600)

    box = SecretBox.load(None, key_file)

    assert box.decrypt(old_token) == PLAINTEXT
    assert SecretBox.from_key(new).decrypt(box.encrypt(PLAINTEXT)) == PLAINTEXT


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe"])
def test_unusable_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(content)

    with pytest.raises(SecretBoxError, match="master key"):
        SecretBox.load(None, key_file)
