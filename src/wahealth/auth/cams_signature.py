"""Verify Alibaba Cloud request signatures exactly as the official SDKs compute them.

Two styles reach us from `alibabacloud-cams20200606`:

* **V3** (`ACS3-HMAC-SHA256`, the SDK default): headers `Authorization`,
  `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256`; the signature
  covers the method, path, query, the listed headers and the body hash.
* **v1 RPC** (`HMAC-SHA1`, SDK `Config(signature_algorithm='v2')`): parameters
  `Signature`, `SignatureMethod`, `SignatureVersion`, `SignatureNonce`,
  `Timestamp`, `AccessKeyId` in the query (or form body); the signature covers
  every parameter, so headers are not trusted.

The functions here are pure; `authenticate` adds the clock, the secret lookup
and the nonce store, in an order that keeps forged requests from costing us
anything but a hash: nothing is remembered until a signature verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from wahealth.auth.cams_fields import (
    V1_SIGNATURE_METHOD,
    V3_ALGORITHM,
    canonical_query,
    form_params,
    parse_v1,
    parse_v3,
    query_params,
    shown,
)
from wahealth.auth.cams_shapes import CamsCredentials, SignedRequest
from wahealth.auth.errors import (
    IncompleteSignature,
    InvalidAccessKeyIdInactive,
    InvalidAccessKeyIdNotFound,
    InvalidTimeStampExpired,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
)
from wahealth.core.ports import AccessKey, NonceStore, Principal

__all__ = [
    "EMPTY_SHA256",
    "V1_SIGNATURE_METHOD",
    "V3_ALGORITHM",
    "CamsCredentials",
    "CamsSignatureVerifier",
    "SignedRequest",
    "Verified",
    "action_and_version",
    "authenticate",
    "parse_credentials",
    "rpc_params",
    "utc_now",
    "v1_string_to_sign",
    "v3_canonical_request",
    "v3_string_to_sign",
    "verify",
]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose signature checked out: its signature pieces and the signing key."""

    credentials: CamsCredentials
    key: AccessKey


def rpc_params(req: SignedRequest) -> dict[str, str]:
    """All parameters of the request: query plus form body (v1 protocol ones included).

    A parameter given twice (in the query, the body or both) is refused: the
    signature would cover only one of the copies.
    """
    known = req._parsed.get("rpc")
    if known is not None:
        return dict(known)
    params = query_params(req)
    for name, value in form_params(req).items():
        if name in params:
            raise IncompleteSignature(f"Parameter {shown(name)} is given more than once.")
        params[name] = value
    req._parsed["rpc"] = params
    return dict(params)


def action_and_version(req: SignedRequest) -> tuple[str | None, str | None]:
    """The API action and version the request calls, from where its style signs them."""
    if "authorization" in req.headers:
        return req.headers.get("x-acs-action"), req.headers.get("x-acs-version")
    params = rpc_params(req)
    return params.get("Action"), params.get("Version")


def parse_credentials(req: SignedRequest) -> CamsCredentials:
    """Read the signature pieces of a V3 or v1 request; raise if any is missing or malformed."""
    authorization = req.headers.get("authorization")
    params = rpc_params(req)  # refuse unparsable or repeated parameters before any lookup
    if authorization is not None:
        return parse_v3(req, authorization)
    if "Signature" in params:
        return parse_v1(params)
    raise IncompleteSignature("Missing Authorization header or Signature parameter.")


def verify(req: SignedRequest, creds: CamsCredentials, secret: str) -> None:
    """Recompute the signature with `secret`; raise `SignatureDoesNotMatch` if it differs."""
    if creds.style == "v3":
        payload_hash = hashlib.sha256(req.body).hexdigest() if req.body else EMPTY_SHA256
        declared = req.headers.get("x-acs-content-sha256", "").lower()
        if not hmac.compare_digest(declared.encode(), payload_hash.encode()):
            raise SignatureDoesNotMatch("The x-acs-content-sha256 header does not match the body.")
        string_to_sign = v3_string_to_sign(req, creds.signed_headers, payload_hash)
        digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256)
        expected = digest.hexdigest()
    else:
        string_to_sign = v1_string_to_sign(req)
        key = f"{secret}&".encode()
        digest = hmac.new(key, string_to_sign.encode(), hashlib.sha1)
        expected = base64.b64encode(digest.digest()).decode("ascii")
    if not hmac.compare_digest(expected.encode(), creds.signature.encode()):
        raise SignatureDoesNotMatch()


async def authenticate(
    req: SignedRequest,
    *,
    lookup_key: Callable[[str], Awaitable[AccessKey | None]],
    nonces: NonceStore,
    now: datetime,
    max_skew_seconds: int = 900,
) -> Verified:
    """Who signed the request and how, or the `CamsAuthError` Alibaba would answer.

    `lookup_key` returns the AccessKey for an id, or None for an unknown one; a
    revoked key is refused as inactive. `now` must be timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    creds = parse_credentials(req)
    if abs((now - creds.timestamp).total_seconds()) > max_skew_seconds:
        raise InvalidTimeStampExpired(f"The accepted window is {max_skew_seconds} seconds.")
    key = await lookup_key(creds.access_key_id)
    if key is None:
        raise InvalidAccessKeyIdNotFound()
    if key.revoked:
        raise InvalidAccessKeyIdInactive()
    verify(req, creds, key.secret)
    # A request is accepted while its date is within ±skew of our clock, a span
    # of 2*skew; a nonce remembered that long outlives every replay of it.
    nonce = f"cams:{creds.access_key_id}:{creds.nonce}"
    if not await nonces.claim(nonce, ttl_seconds=2 * max_skew_seconds):
        raise SignatureNonceUsed()
    return Verified(creds, key)


def v3_string_to_sign(
    req: SignedRequest, signed_headers: tuple[str, ...], payload_hash: str
) -> str:
    """The ACS3-HMAC-SHA256 string to sign (the SDK's `Utils.get_authorization`)."""
    canonical_request = v3_canonical_request(req, signed_headers, payload_hash)
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def v3_canonical_request(
    req: SignedRequest, signed_headers: tuple[str, ...], payload_hash: str
) -> str:
    """The canonical request whose SHA-256 the V3 string to sign carries."""
    query = canonical_query(req.raw_query)
    names = sorted(signed_headers)
    canonical_headers = "".join(f"{name}:{req.headers[name].strip()}\n" for name in names)
    return "\n".join(
        (
            req.method,
            req.path or "/",
            query,
            canonical_headers,
            ";".join(names),
            payload_hash,
        )
    )


def v1_string_to_sign(req: SignedRequest) -> str:
    """The RPC v1 string to sign (the SDK's `Utils.get_rpcsignature`): all parameters but one."""
    params = rpc_params(req)
    params.pop("Signature", None)
    canonical = "&".join(
        f"{quote(name, safe='~')}={quote(params[name], safe='~')}" for name in sorted(params)
    )
    return f"{req.method}&%2F&{quote(canonical, safe='~')}"


def utc_now() -> datetime:
    """The default clock of `CamsSignatureVerifier`: the wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CamsSignatureVerifier:
    """The core's `SignatureVerifier` for Alibaba Cloud signed requests (V3 and v1).

    `access_key` looks an AccessKey id up (None when unknown); `nonces` remembers the
    nonces of verified requests (the core's fail-closed store); `now` is a UTC clock.
    `access_key_now`, when given, answers an id `access_key` was asked moments ago without
    awaiting (None otherwise): the express lane (`cams_express`) uses it.
    """

    access_key: Callable[[str], Awaitable[AccessKey | None]]
    nonces: NonceStore
    now: Callable[[], datetime] = field(default=utc_now)
    max_skew_seconds: int = 900
    access_key_now: Callable[[str], AccessKey | None] | None = None

    async def verify(self, request: Any) -> Principal:
        """The principal whose key signed `request` (a `SignedRequest`), or a `CamsAuthError`."""
        if not isinstance(request, SignedRequest):
            raise TypeError("CamsSignatureVerifier verifies SignedRequest objects")
        verified = await authenticate(
            request,
            lookup_key=self.access_key,
            nonces=self.nonces,
            now=self.now(),
            max_skew_seconds=self.max_skew_seconds,
        )
        return verified.key.principal
