"""Parsing the signature pieces of Alibaba Cloud requests: Authorization, dates, parameters.

Pure functions, each refusing malformed input with the error Alibaba would answer. What a
client repeats on every request (its Authorization prefix, its query, its date within a
second) is parsed once and memoized, bounded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from urllib.parse import parse_qsl, quote

from wahealth.auth.cams_shapes import CamsCredentials, SignedRequest
from wahealth.auth.errors import IncompleteSignature, InvalidTimeStampFormat

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


def parse_v3(req: SignedRequest, authorization: str) -> CamsCredentials:
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
        timestamp=parse_timestamp(req.headers["x-acs-date"]),
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
        access_key_id, signed_headers, signed = authorization_head(head)
    if not signed:
        # The Signature field is not last (or missing): parse the slow, general way.
        return _authorization_general(authorization)
    if not _HEX_SHA256.fullmatch(signature):
        raise IncompleteSignature("Signature is not a hex SHA-256 value.")
    return access_key_id, signed_headers, signature


def authorization_head(head: str) -> tuple[str, tuple[str, ...], bool]:
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


_authorization_head_memo = functools.lru_cache(maxsize=_PARSED_CACHE_ENTRIES)(authorization_head)


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


def parse_v1(params: Mapping[str, str]) -> CamsCredentials:
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
        timestamp=parse_timestamp(params["Timestamp"]),
    )


def parse_timestamp(value: str) -> datetime:
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


def query_params(req: SignedRequest) -> dict[str, str]:
    return dict(_parsed_query(req.raw_query))


def _parsed_query(raw_query: bytes) -> Mapping[str, str]:
    """The query's parameters; a client polling one node sends the same query each time."""
    if len(raw_query) <= _MEMO_MAX_CHARS:
        return _parsed_query_memo(raw_query)
    return _parse_query(raw_query)


def _parse_query(raw_query: bytes) -> Mapping[str, str]:
    return MappingProxyType(_unique(_parse_form(raw_query, "query string"), "query string"))


_parsed_query_memo = functools.lru_cache(maxsize=_PARSED_CACHE_ENTRIES)(_parse_query)


def canonical_query(raw_query: bytes) -> str:
    if len(raw_query) <= _MEMO_MAX_CHARS:
        return _canonical_query_memo(raw_query)
    return _canonical(raw_query)


def _canonical(raw_query: bytes) -> str:
    query = _parsed_query(raw_query)
    return "&".join(f"{name}={quote(query[name], safe='~')}" for name in sorted(query))


_canonical_query_memo = functools.lru_cache(maxsize=_PARSED_CACHE_ENTRIES)(_canonical)


def form_params(req: SignedRequest) -> dict[str, str]:
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
            raise IncompleteSignature(f"Parameter {shown(name)} is repeated in the {where}.")
        params[name] = value
    return params


def shown(name: str) -> str:
    """A parameter name safe to echo back: bounded and printable."""
    return repr(name[:40])
