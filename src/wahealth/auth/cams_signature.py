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
import functools
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

from wahealth.auth.errors import (
    IncompleteSignature,
    InvalidAccessKeyIdInactive,
    InvalidAccessKeyIdNotFound,
    InvalidTimeStampExpired,
    InvalidTimeStampFormat,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
)
from wahealth.core.ports import AccessKey, NonceStore, Principal

V3_ALGORITHM = "ACS3-HMAC-SHA256"
V1_SIGNATURE_METHOD = "HMAC-SHA1"

# Without these in SignedHeaders an attacker could move a signature to another
# host, date, nonce or API, so a V3 request must sign them.
REQUIRED_SIGNED_HEADERS = frozenset(
    {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-action", "x-acs-version"}
)
_V1_REQUIRED_PARAMS = (
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
)
_AUTHORIZATION_FIELDS = frozenset({"Credential", "SignedHeaders", "Signature"})
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# The header names an SDK sends, decoded once (ASGI servers hand them over lower-cased).
_HEADER_NAMES = {
    name.encode("latin-1"): name
    for name in (
        "host",
        "authorization",
        "content-type",
        "content-length",
        "accept",
        "accept-encoding",
        "user-agent",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
        "x-acs-accesskey-id",
        "x-acs-security-token",
        "x-request-id",
    )
}
# Parsed query strings and Authorization prefixes are memoized when short (an SDK's are a
# few hundred bytes): at most 1024 of each, each under 1 KiB, so about 2 MiB at most.
_PARSED_CACHE_ENTRIES = 1024
_MEMO_MAX_CHARS = 1024
_MAX_PARAMS = 256  # the CAMS API has nine parameters; bound the parsing work
_MAX_TOKEN_CHARS = 128  # access key ids and nonces: bound what reaches the nonce store
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z",
    re.ASCII,
)
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+", re.ASCII)
_PRINTABLE = re.compile(r"[\x21-\x7e]+", re.ASCII)
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request a signature covers, as received on the wire."""

    method: str
    path: str
    raw_query: bytes
    headers: Mapping[str, str]  # lowercase names
    body: bytes = b""
    # Parsed parameters, computed once: several steps of verification need them.
    _parsed: dict[str, dict[str, str]] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_asgi(cls, scope: Mapping[str, Any], body: bytes) -> SignedRequest:
        """Build from an ASGI HTTP scope; repeated headers are joined with ','."""
        headers: dict[str, str] = {}
        names = _HEADER_NAMES
        for raw_name, raw_value in scope["headers"]:
            # HTTP header bytes are latin-1, which is also how the SDK's HTTP
            # library encodes the str values it signed.
            name = names.get(raw_name)
            if name is None:
                name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        return cls(scope["method"], path, scope.get("query_string", b""), headers, body)


@dataclass(frozen=True, slots=True)
class CamsCredentials:
    """What a request claims about its signer; trusted only after `verify`."""

    access_key_id: str
    algorithm: str
    signed_headers: tuple[str, ...]  # empty for v1, where parameters are signed
    signature: str
    style: Literal["v3", "v1"]
    nonce: str
    timestamp: datetime


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
    params = _query_params(req)
    for name, value in _form_params(req).items():
        if name in params:
            raise IncompleteSignature(f"Parameter {_shown(name)} is given more than once.")
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
        return _parse_v3(req, authorization)
    if "Signature" in params:
        return _parse_v1(params)
    raise IncompleteSignature("Missing Authorization header or Signature parameter.")


def verify(req: SignedRequest, creds: CamsCredentials, secret: str) -> None:
    """Recompute the signature with `secret`; raise `SignatureDoesNotMatch` if it differs."""
    if creds.style == "v3":
        payload_hash = hashlib.sha256(req.body).hexdigest() if req.body else _EMPTY_SHA256
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
    canonical_query = _canonical_query(req.raw_query)
    names = sorted(signed_headers)
    canonical_headers = "".join(f"{name}:{req.headers[name].strip()}\n" for name in names)
    canonical_request = "\n".join(
        (
            req.method,
            req.path or "/",
            canonical_query,
            canonical_headers,
            ";".join(names),
            payload_hash,
        )
    )
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def v1_string_to_sign(req: SignedRequest) -> str:
    """The RPC v1 string to sign (the SDK's `Utils.get_rpcsignature`): all parameters but one."""
    params = rpc_params(req)
    params.pop("Signature", None)
    canonical = "&".join(
        f"{quote(name, safe='~')}={quote(params[name], safe='~')}" for name in sorted(params)
    )
    return f"{req.method}&%2F&{quote(canonical, safe='~')}"


def _parse_v3(req: SignedRequest, authorization: str) -> CamsCredentials:
    access_key_id, signed_headers, signature = _authorization_fields(authorization)
    for name in signed_headers:
        if name not in req.headers:
            raise IncompleteSignature(f"Signed header {name} is missing.")
    if "x-acs-content-sha256" not in req.headers:
        raise IncompleteSignature("Header x-acs-content-sha256 is missing.")
    return CamsCredentials(
        access_key_id=access_key_id,
        algorithm=V3_ALGORITHM,
        signed_headers=signed_headers,
        signature=signature,
        style="v3",
        nonce=_token(req.headers["x-acs-signature-nonce"], "x-acs-signature-nonce"),
        timestamp=_parse_timestamp(req.headers["x-acs-date"]),
    )


def _authorization_fields(authorization: str) -> tuple[str, tuple[str, ...], str]:
    """(Credential, SignedHeaders, Signature) of a V3 Authorization header, checked.

    A client signs every request with the same Credential and SignedHeaders, so that part
    is parsed once (memoized, bounded) and only the signature is read per request.
    """
    head, sep, signature = authorization.strip().rpartition(",Signature=")
    if not sep:
        head, signature = authorization.strip(), ""
    else:
        signature = signature.strip().lower()
    if len(head) <= _MEMO_MAX_CHARS:
        access_key_id, signed_headers, signed = _authorization_head_memo(head)
    else:
        access_key_id, signed_headers, signed = _authorization_head(head)
    if not signed:
        # The Signature field is not last (or missing): parse the slow, general way.
        return _authorization_general(authorization)
    if not _HEX_SHA256.fullmatch(signature):
        raise IncompleteSignature("Signature is not a hex SHA-256 value.")
    return access_key_id, signed_headers, signature


def _authorization_head(head: str) -> tuple[str, tuple[str, ...], bool]:
    """Credential and SignedHeaders of `head` (an Authorization header up to `,Signature=`).

    The third item is False when `head` is not such a prefix (the caller then falls back).
    """
    algorithm, _, rest = head.partition(" ")
    if algorithm != V3_ALGORITHM:
        raise IncompleteSignature(f"Only {V3_ALGORITHM} signatures are supported.")
    fields = _fields(rest)
    if set(fields) != _AUTHORIZATION_FIELDS - {"Signature"}:
        return "", (), False
    return (*_checked_credential_and_headers(fields), True)


_authorization_head_memo = functools.lru_cache(maxsize=_PARSED_CACHE_ENTRIES)(_authorization_head)


def _authorization_general(authorization: str) -> tuple[str, tuple[str, ...], str]:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        raise IncompleteSignature(f"Only {V3_ALGORITHM} signatures are supported.")
    fields = _fields(rest)
    if len(fields) != len(_AUTHORIZATION_FIELDS):
        raise IncompleteSignature("The Authorization header is malformed.")
    access_key_id, signed_headers = _checked_credential_and_headers(fields)
    signature = fields["Signature"].lower()
    if not _HEX_SHA256.fullmatch(signature):
        raise IncompleteSignature("Signature is not a hex SHA-256 value.")
    return access_key_id, signed_headers, signature


def _fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq or name not in _AUTHORIZATION_FIELDS or name in fields or not value.strip():
            raise IncompleteSignature("The Authorization header is malformed.")
        fields[name] = value.strip()
    return fields


def _checked_credential_and_headers(fields: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    signed_headers = tuple(fields["SignedHeaders"].split(";"))
    if len(set(signed_headers)) != len(signed_headers) or not all(
        _HEADER_NAME.fullmatch(name) for name in signed_headers
    ):
        raise IncompleteSignature("SignedHeaders is malformed.")
    missing = REQUIRED_SIGNED_HEADERS.difference(signed_headers)
    if missing:
        raise IncompleteSignature(f"SignedHeaders must include {', '.join(sorted(missing))}.")
    return _token(fields["Credential"], "Credential"), signed_headers


def _parse_v1(params: Mapping[str, str]) -> CamsCredentials:
    for name in _V1_REQUIRED_PARAMS:
        if not params.get(name):
            raise IncompleteSignature(f"Parameter {name} is missing.")
    if params["SignatureMethod"] != V1_SIGNATURE_METHOD or params["SignatureVersion"] != "1.0":
        raise IncompleteSignature(f"Only {V1_SIGNATURE_METHOD} version 1.0 is supported.")
    return CamsCredentials(
        access_key_id=_token(params["AccessKeyId"], "AccessKeyId"),
        algorithm=V1_SIGNATURE_METHOD,
        signed_headers=(),
        signature=params["Signature"],
        style="v1",
        nonce=_token(params["SignatureNonce"], "SignatureNonce"),
        timestamp=_parse_timestamp(params["Timestamp"]),
    )


def _parse_timestamp(value: str) -> datetime:
    # Requests signed within the same second carry the same date: parse each once.
    if len(value) <= 40:
        return _parse_timestamp_memo(value)
    return _parse_timestamp_now(value)


def _parse_timestamp_now(value: str) -> datetime:
    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None:
        raise InvalidTimeStampFormat("Expected YYYY-MM-DDThh:mm:ssZ (UTC).")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:  # e.g. month 13
        raise InvalidTimeStampFormat("Expected YYYY-MM-DDThh:mm:ssZ (UTC).") from exc


_parse_timestamp_memo = functools.lru_cache(maxsize=256)(_parse_timestamp_now)


def _token(value: str, what: str) -> str:
    if len(value) > _MAX_TOKEN_CHARS or not _PRINTABLE.fullmatch(value):
        raise IncompleteSignature(f"{what} is malformed.")
    return value


def _query_params(req: SignedRequest) -> dict[str, str]:
    return dict(_parsed_query(req.raw_query))


def _parsed_query(raw_query: bytes) -> Mapping[str, str]:
    """The query's parameters; a client polling one node sends the same query each time."""
    if len(raw_query) <= _MEMO_MAX_CHARS:
        return _parsed_query_memo(raw_query)
    return _parse_query(raw_query)


def _parse_query(raw_query: bytes) -> Mapping[str, str]:
    return MappingProxyType(_unique(_parse_form(raw_query, "query string"), "query string"))


_parsed_query_memo = functools.lru_cache(maxsize=_PARSED_CACHE_ENTRIES)(_parse_query)


def _canonical_query(raw_query: bytes) -> str:
    if len(raw_query) <= _MEMO_MAX_CHARS:
        return _canonical_query_memo(raw_query)
    return _canonical(raw_query)


def _canonical(raw_query: bytes) -> str:
    query = _parsed_query(raw_query)
    return "&".join(f"{name}={quote(query[name], safe='~')}" for name in sorted(query))


_canonical_query_memo = functools.lru_cache(maxsize=_PARSED_CACHE_ENTRIES)(_canonical)


def _form_params(req: SignedRequest) -> dict[str, str]:
    media_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE or not req.body:
        return {}
    parsed = req._parsed.get("form")
    if parsed is None:
        parsed = _unique(_parse_form(req.body, "form body"), "form body")
        req._parsed["form"] = parsed
    return dict(parsed)


def _parse_form(raw: bytes, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_PARAMS,
        )
    except ValueError as exc:  # includes UnicodeDecodeError
        raise IncompleteSignature(f"The {where} is not valid UTF-8 form data.") from exc


def _unique(pairs: list[tuple[str, str]], where: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise IncompleteSignature(f"Parameter {_shown(name)} is repeated in the {where}.")
        params[name] = value
    return params


def _shown(name: str) -> str:
    """A parameter name safe to echo back: bounded and printable."""
    return repr(name[:40])


@dataclass(frozen=True, slots=True)
class CamsSignatureVerifier:
    """The core's `SignatureVerifier` for Alibaba Cloud signed requests (V3 and v1).

    `access_key` looks an AccessKey id up (None when unknown); `nonces` remembers the
    nonces of verified requests (the core's fail-closed store); `now` is a UTC clock.
    """

    access_key: Callable[[str], Awaitable[AccessKey | None]]
    nonces: NonceStore
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    max_skew_seconds: int = 900

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
