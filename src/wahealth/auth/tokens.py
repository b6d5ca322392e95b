"""Generate API credentials and hash the bearer-style ones for storage.

360dialog keys and Graph tokens are only ever compared, so we store a hash.
A plain SHA-256 is enough: every such token is generated here with over 200
bits from `secrets`, so there is nothing to brute-force and a slow password
KDF (bcrypt, scrypt, argon2) would only add latency to every request. A fixed
domain-separation prefix keeps these digests from matching a SHA-256 of the
same string computed anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_HASH_DOMAIN = b"wahealth.token.v1\x00"

ACCESS_KEY_ID_PREFIX = "LTAI"
D360_KEY_PREFIX = "whd360_"
GRAPH_TOKEN_PREFIX = "whgr_"  # noqa: S105 - a public prefix, not a secret


def hash_token(token: str) -> str:
    """Hex SHA-256 of a domain-separated token, for storage and lookup."""
    return hashlib.sha256(_HASH_DOMAIN + token.encode("utf-8")).hexdigest()


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
