"""Every replica must use the master key the stored secrets are under: checked at each start.

Storage keeps one check digest (an HMAC of a fixed text under a key derived from the
master key), written by the first start. A replica whose key gives another digest, or
that cannot decrypt the newest stored secrets, refuses to start with one message,
rather than answer every signed request with a signature error. A replica with no key
at all (no `WAHEALTH_MASTER_KEY`, no key file) on a database that holds secrets refuses
too, and creates no key: a second key beside the first would encrypt new secrets that
the other replicas cannot read.

Rotation: with `WAHEALTH_MASTER_KEY=new,old` (newest first) the check matches the old
key and is moved to the new one; from then on a replica with only the old key refuses.
"""

from __future__ import annotations

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.settings import Settings, master_key_of
from wahealth.storage.master_key_checks import MasterKeyCheckRepository

_CHECK_TEXT = "wahealth master key check v1"
# The newest secrets of each kind decrypted at start: enough to tell a missing old key.
SECRETS_CHECKED = 1000


class MasterKeyRefused(Exception):
    """This replica's master key is not the key of the stored secrets (or it has none)."""


def _which_key(settings: Settings) -> str:
    if master_key_of(settings):
        return "the master key in WAHEALTH_MASTER_KEY (master_key)"
    return f"the master key in {settings.security.master_key_file}"


def key_is_configured(settings: Settings) -> bool:
    """A key is given (WAHEALTH_MASTER_KEY) or its file exists: loading it creates nothing."""
    configured = master_key_of(settings)
    return bool(configured and configured.strip()) or settings.security.master_key_file.exists()


async def refuse_a_new_key(settings: Settings, checks: MasterKeyCheckRepository) -> None:
    """Refuse before a key file is created for a database that already holds secrets."""
    if key_is_configured(settings):
        return
    if await checks.digest() is not None or await checks.holds_secrets():
        raise MasterKeyRefused(
            "no master key: WAHEALTH_MASTER_KEY is unset and the key file "
            f"{settings.security.master_key_file} does not exist, but the database already "
            "holds secrets under a master key. Give this replica the key the others use "
            "(set WAHEALTH_MASTER_KEY, or copy the key file); no new key was created."
        )


async def verify_master_key(
    settings: Settings, secretbox: SecretBox, checks: MasterKeyCheckRepository
) -> None:
    """Raise MasterKeyRefused unless `secretbox` holds the key of the stored secrets."""
    hasher = secretbox.token_hasher()
    newest = hasher.keyed(_CHECK_TEXT)
    stored = await checks.digest()
    decrypted = stored is None
    if stored is None:
        # First start of this version: the secrets already stored say whether the key fits.
        await _decrypt_stored(settings, secretbox, checks)
        stored = await checks.put_if_absent(newest)
    under_each_key = hasher.accepted(_CHECK_TEXT)[:-1]  # the last one is unkeyed
    if stored not in under_each_key:
        raise MasterKeyRefused(
            f"{_which_key(settings)} is not the key the stored secrets are encrypted with. "
            "Every replica needs the same key: set WAHEALTH_MASTER_KEY to it, or copy the "
            "key file from a replica that runs."
        )
    if stored != newest:  # matched an older key of a rotation: the newest one is the key now
        await checks.replace(stored, newest)
    if not decrypted:
        await _decrypt_stored(settings, secretbox, checks)


async def _decrypt_stored(
    settings: Settings, secretbox: SecretBox, checks: MasterKeyCheckRepository
) -> None:
    encrypted = await checks.encrypted_secrets(SECRETS_CHECKED)
    unreadable = 0
    for value in encrypted:
        try:
            secretbox.decrypt(value)
        except SecretBoxError:
            unreadable += 1
    if unreadable == 0:
        return
    if unreadable == len(encrypted):
        raise MasterKeyRefused(
            f"{_which_key(settings)} cannot decrypt the stored secrets. Every replica needs "
            "the same key: set WAHEALTH_MASTER_KEY to it, or copy the key file from a "
            "replica that runs."
        )
    raise MasterKeyRefused(
        f"{unreadable} of {len(encrypted)} stored secrets checked cannot be decrypted with "
        f"{_which_key(settings)}: the key they were encrypted with is missing. Keep every "
        "older key after the new one (WAHEALTH_MASTER_KEY=new,old): stored secrets are not "
        "re-encrypted under a new key."
    )
