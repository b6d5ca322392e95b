"""Encrypt secrets at rest with a master key (Fernet: AES-128-CBC + HMAC-SHA256).

AccessKey secrets cannot be stored as hashes: verifying an HMAC signature
needs the secret itself. So they are encrypted with a master key kept out of
the database (env var or a 0600 key file), and a database dump alone reveals
nothing. Several keys may be configured, newest first, to rotate the master
key: the first encrypts, all of them decrypt.

The box also derives (HKDF-SHA256) the keys that make stored token digests
keyed: `token_hasher()`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wahealth.auth.tokens import TokenHasher

_log = structlog.get_logger(__name__)
_TOKEN_HASH_INFO = b"wahealth token digest key v1"


class SecretBoxError(Exception):
    """A master key is unusable, or a stored value cannot be decrypted with it."""


class SecretBox:
    """Encrypts and decrypts short secrets with the configured master key(s)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretBoxError("no master key given")
        fernets: list[Fernet] = []
        raw_keys: list[bytes] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
                raw_keys.append(base64.urlsafe_b64decode(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError) as exc:
                raise SecretBoxError(
                    f"master key #{position} is not a Fernet key "
                    "(32 bytes, url-safe base64; create one with Fernet.generate_key())"
                ) from exc
        self._fernet = MultiFernet(fernets)
        self._hasher = TokenHasher([_derive(raw) for raw in raw_keys])

    @classmethod
    def from_key(cls, key: str) -> SecretBox:
        """A box for `key`, or for comma-separated keys (newest first) during a rotation."""
        return cls([part for part in key.split(",") if part.strip()])

    @classmethod
    def load(cls, env_value: str | None, key_file: Path) -> SecretBox:
        """The configured key (`master_key`, i.e. WAHEALTH_MASTER_KEY) if set, else the key
        file, created if missing."""
        if env_value and env_value.strip():
            return cls.from_key(env_value)
        return cls.from_key(_read_or_create_key_file(key_file))

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the newest key; the result is ASCII, safe for any text column."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt with whichever configured key encrypted `token`."""
        try:
            return self._fernet.decrypt(token.encode("utf-8")).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise SecretBoxError(
                "cannot decrypt a stored secret: wrong master key or corrupted value"
            ) from exc

    def token_hasher(self) -> TokenHasher:
        """Keyed token digests; one key per master key, so a rotation keeps tokens valid."""
        return self._hasher

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` under the newest key (after adding a key in front)."""
        return self.encrypt(self.decrypt(token))


def _derive(master_key: bytes) -> bytes:
    # A key of its own, so token digests never reuse the encryption key's bytes.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TOKEN_HASH_INFO).derive(
        master_key
    )


def _read_or_create_key_file(key_file: Path) -> str:
    try:
        return _read_key_file(key_file)
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(parents=True, exist_ok=True)
    # Write the key to a private temporary file, then link it into place: the
    # link fails if another process won the race, and no reader ever sees a
    # half-written key file.
    tmp = key_file.with_name(f".{key_file.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, key_file)
        _log.info("master_key_created", key_file=str(key_file))
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _read_key_file(key_file)


def _read_key_file(key_file: Path) -> str:
    mode = key_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("master_key_file_readable_by_others", key_file=str(key_file))
    try:
        keys = key_file.read_text(encoding="ascii").split()
    except UnicodeDecodeError as exc:
        raise SecretBoxError(f"master key file {key_file} is not a Fernet key") from exc
    if not keys:
        raise SecretBoxError(f"master key file {key_file} is empty")
    return ",".join(keys)
