"""Admin tokens: `whadm_<id>_<secret>`, stored as a keyed hash, checked in constant time.

The id in the token finds its row with one primary-key read, so the secret is never
used to search the table; the stored hash is then compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from wahealth.admin.errors import Unauthorized
from wahealth.auth.tokens import TokenHasher, hash_token, tokens_equal
from wahealth.storage.admin import AdminToken, AdminTokenRepository

ADMIN_TOKEN_PREFIX = "whadm_"  # noqa: S105 - a public prefix, not a secret
_ALPHABET = string.digits + string.ascii_letters
_SECRET_LENGTH = 40  # ~238 bits


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is making an admin request, and which account they may manage (None: all)."""

    actor: str
    account: str | None

    def manages(self, account: str) -> bool:
        return self.account is None or self.account == account


class AdminTokens:
    """Issue and check admin tokens."""

    def __init__(self, repository: AdminTokenRepository, hasher: TokenHasher) -> None:
        self._repository = repository
        self._hasher = hasher

    async def issue(self, name: str, account: str | None = None) -> tuple[int, str]:
        """A new token (id, token): the token is shown once, only its hash is stored."""
        secret = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))

        def stored(token_id: int) -> str:
            return self._hasher.hash(_token(token_id, secret))

        token_id = await self._repository.add(name, account, stored)
        return token_id, _token(token_id, secret)

    async def list(self) -> list[AdminToken]:
        return await self._repository.list()

    async def revoke(self, token_id: int) -> bool:
        """Revoke a token; True if this call revoked it (NotFound if there is none)."""
        return await self._repository.revoke(token_id)

    async def check(self, authorization: str | None) -> Caller:
        """The caller an `Authorization: Bearer …` header names; Unauthorized otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("an admin token is required: Authorization: Bearer whadm_…")
        token = token.strip()
        token_id = _token_id(token)
        found = None if token_id is None else await self._repository.find(token_id)
        if found is None:
            raise Unauthorized("unknown admin token")
        presented = self._hasher.accepted(hash_token(token))
        # Every candidate is compared, so the time taken does not say which one matched.
        matches = [tokens_equal(candidate, found.token_hash) for candidate in presented]
        if not any(matches):
            raise Unauthorized("unknown admin token")
        if not found.usable:
            raise Unauthorized("this admin token is revoked")
        shown = found.token
        return Caller(f"admin-token:{shown.id} ({shown.name})", shown.account)


def _token(token_id: int, secret: str) -> str:
    return f"{ADMIN_TOKEN_PREFIX}{token_id}_{secret}"


def _token_id(token: str) -> int | None:
    if not token.startswith(ADMIN_TOKEN_PREFIX):
        return None
    head, _, secret = token[len(ADMIN_TOKEN_PREFIX) :].partition("_")
    if not (head.isascii() and head.isdigit()) or len(head) > 18 or len(secret) != _SECRET_LENGTH:
        return None
    return int(head)
