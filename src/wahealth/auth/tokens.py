"""Generate API credentials and hash the bearer-style ones for storage.

360dialog keys and Graph tokens are only ever compared, so we store a digest.
`hash_token` is a domain-separated SHA-256: the *lookup digest*, what a caller
computes from a presented token. What is stored is `TokenHasher.keyed(digest)`,
an HMAC-SHA256 of that digest under a secret derived from the master key, so a
leaked database alone does not allow offline guessing of a weak configured
token. Generated tokens carry over 200 bits from `secrets`; a slow password KDF
would only add latency to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_HASH_DOMAIN = b"wahealth.token.v1\x00"

ACCESS_KEY_ID_PREFIX = "LTAI"
D360_KEY_PREFIX = "whd360_"
GRAPH_TOKEN_PREFIX = "whgr_"  # noqa: S105 - a public prefix, not a secret


def hash_token(token: str) -> str:
    """Hex SHA-256 of a domain-separated token, for storage and lookup."""
    return hashlib.sha256(_HASH_DOMAIN + token.encode("utf-8")).hexdigest()


class TokenHasher:
    """Keyed digests of tokens; several keys during a master-key rotation, newest first."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a TokenHasher needs at least one key")
        self._keys = tuple(keys)

    def hash(self, token: str) -> str:
        """What is stored for `token`: the keyed digest of its lookup digest."""
        return self.keyed(hash_token(token))

    @staticmethod
    def legacy(token: str) -> str:
        """The unkeyed digest older versions stored (and the lookup digest): `hash_token`."""
        return hash_token(token)

    def keyed(self, digest: str) -> str:
        """The stored form of a lookup digest, under the newest key."""
        return _hmac_hex(self._keys[0], digest)

    def accepted(self, digest: str) -> tuple[str, ...]:
        """Every stored form that matches `digest`: keyed under each key, then unkeyed."""
        return (*(_hmac_hex(key, digest) for key in self._keys), digest)


def _hmac_hex(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Compare two tokens (or hashes) in time independent of where they differ."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_access_key_id() -> str:
    """An Alibaba-style AccessKey id: "LTAI" + 20 base62 characters."""
    return ACCESS_KEY_ID_PREFIX + _base62(20)


def new_access_key_secret() -> str:
    """An Alibaba-style AccessKey secret: 30 base62 characters (~178 bits)."""
    return _base62(30)


def new_d360_key() -> str:
    """A 360dialog-style API key with a recognisable prefix (~214 bits)."""
    return D360_KEY_PREFIX + _base62(36)


def new_graph_token() -> str:
    """A Graph bearer token with a recognisable prefix (~238 bits)."""
    return GRAPH_TOKEN_PREFIX + _base62(40)


def _base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))
