"""The express lane for V3-signed CAMS calls: a client's usual call, verified in one pass.

The official SDK signs every call of a client alike: the same Authorization prefix
(Credential and SignedHeaders), the same query for the same node, the same host, action,
version and body hash; only the date, the nonce and the signature change. So the
canonical request of such a *shape* is built once, by the general code (`cams_signature`,
which also checks everything about it), with the date and the nonce left as holes; each
call then costs two hashes, a nonce claim and a few dictionary lookups.

The lane settles a call only when it can do so exactly as the general code would and
when every step answers at once (an in-process nonce store, an AccessKey looked up
moments ago). Anything else — a v1 signature, a body, a repeated header, a new shape,
a date near or outside the window, a signature that does not match, a used nonce —
returns None *before* anything is claimed, and the general path answers and words the
error. Once the lane claims the nonce, the call is verified.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from wahealth.auth.cams_fields import V3_ALGORITHM, authorization_head, parse_timestamp
from wahealth.auth.cams_shapes import SignedRequest
from wahealth.auth.cams_signature import (
    EMPTY_SHA256,
    CamsSignatureVerifier,
    parse_credentials,
    utc_now,
    v3_canonical_request,
)
from wahealth.core.immediate import ImmediateNonceStore, immediate_nonces
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import AccessKey, Principal
from wahealth.core.queries import FailClosedNonces

T = TypeVar("T")

_DATE = "x-acs-date"
_NONCE = "x-acs-signature-nonce"
_SIGNATURE_MARK = b",Signature="
_EMPTY_SHA256 = EMPTY_SHA256.encode()
_STRING_TO_SIGN_HEAD = f"{V3_ALGORITHM}\n".encode()
_HEX_SHA256 = re.compile(rb"[0-9a-f]{64}")
_NONCE_TOKEN = re.compile(rb"[\x21-\x7e]{1,128}")
# Stand-ins for the date and the nonce while a shape's canonical request is built: a NUL
# never reaches it otherwise (header values cannot hold one; the query is percent-encoded).
_DATE_HOLE = "\x00date\x00"
_NONCE_HOLE = "\x00nonce\x00"
# A call this close to the edge of the accepted window is left to the general check, so
# float rounding can never make the two disagree.
_EDGE_SECONDS = 1.0
# Bounded both ways: an Authorization prefix per client key, a shape per (client, node).
HEADS_MAX_ENTRIES = 1024
SHAPES_MAX_ENTRIES = 8192
SHAPES_MAX_BYTES = 16 * 1024 * 1024
DATES_MAX_ENTRIES = 64  # signing dates in use at once: one a second per client clock


# The values of the headers an Authorization prefix signs, the date and the nonce aside.
_Statics = Callable[[Mapping[bytes, bytes]], tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class Shape(Generic[T]):
    """One client's call for one node: its canonical request around the date and the nonce."""

    access_key_id: str
    nonce_prefix: str
    before_date: bytes
    between: bytes
    after_nonce: bytes
    info: T  # what the dialect read from the call once (its action checked, its query parsed)


class CamsExpress(Generic[T]):
    """Verifies a client's usual V3 call at once, or says None (the general path answers).

    `describe` reads, once per shape, what the dialect needs of the call (it raises on
    anything it would refuse: the general path then words the refusal).
    """

    def __init__(
        self, verifier: CamsSignatureVerifier, describe: Callable[[SignedRequest], T]
    ) -> None:
        store = verifier.nonces
        self._nonces: ImmediateNonceStore | None = (
            store.immediate() if isinstance(store, FailClosedNonces) else immediate_nonces(store)
        )
        self._keys: Callable[[str], AccessKey | None] | None = verifier.access_key_now
        clock = verifier.now
        self._epoch: Callable[[], float] = (
            time.time if clock is utc_now else (lambda: clock().timestamp())
        )
        self._window = verifier.max_skew_seconds - _EDGE_SECONDS
        self._nonce_ttl = 2 * verifier.max_skew_seconds
        self._describe = describe
        self._heads: BoundedLru[bytes, _Statics] = BoundedLru(HEADS_MAX_ENTRIES, 2 * 1024 * 1024)
        self._shapes: BoundedLru[tuple[object, ...], Shape[T]] = BoundedLru(
            SHAPES_MAX_ENTRIES, SHAPES_MAX_BYTES
        )
        self._dates: dict[bytes, float] = {}

    @property
    def enabled(self) -> bool:
        """Whether the lane can ever settle a call (an in-process nonce store, quick keys)."""
        return self._nonces is not None and self._keys is not None

    def verify_now(
        self, scope: Mapping[str, Any], headers: Mapping[bytes, bytes] | None = None
    ) -> tuple[Principal, T] | None:
        """The signer and the shape's info of a call settled here; None: use the general path.

        `headers` is `dict(scope["headers"])` when the caller has made it already.
        """
        nonces, keys = self._nonces, self._keys
        if nonces is None or keys is None:
            return None
        raw_headers = scope["headers"]
        if headers is None:
            headers = dict(raw_headers)
        if len(headers) != len(raw_headers):
            return None  # a repeated header: the general path joins them
        authorization = headers.get(b"authorization")
        if authorization is None:
            return None
        head_bytes, mark, signature = authorization.rpartition(_SIGNATURE_MARK)
        if not mark or not _HEX_SHA256.fullmatch(signature):
            return None
        statics_of = self._heads.get(head_bytes) or self._head(head_bytes)
        if statics_of is None:
            return None
        method = scope["method"]
        length = headers.get(b"content-length")
        if length != b"0" and (
            length is not None or method not in ("GET", "HEAD") or b"transfer-encoding" in headers
        ):
            return None  # a body, or one that may follow: read and checked the general way
        if headers.get(b"x-acs-content-sha256") != _EMPTY_SHA256:
            return None
        try:
            statics = statics_of(headers)
        except KeyError:
            return None  # a signed header is missing: the general path says which
        key = (method, scope.get("raw_path") or scope["path"], scope["query_string"], statics)
        shape = self._shapes.get((head_bytes, key)) or self._shape(scope, head_bytes, key)
        if shape is None:
            return None
        date = headers.get(b"x-acs-date")
        nonce = headers.get(b"x-acs-signature-nonce")
        if date is None or nonce is None:
            return None  # signed but missing: the general path says which
        signed_at = self._dates.get(date)
        if signed_at is None:
            signed_at = self._date(date)
            if signed_at is None:
                return None
        if abs(self._epoch() - signed_at) > self._window:
            return None
        if not _NONCE_TOKEN.fullmatch(nonce):
            return None
        access_key = keys(shape.access_key_id)
        if access_key is None or access_key.revoked:
            return None
        canonical = b"".join((shape.before_date, date, shape.between, nonce, shape.after_nonce))
        string_to_sign = _STRING_TO_SIGN_HEAD + hashlib.sha256(canonical).hexdigest().encode()
        expected = hmac.digest(access_key.secret.encode(), string_to_sign, "sha256").hex()
        if not hmac.compare_digest(expected.encode(), signature):
            return None
        if not nonces.claim_now(shape.nonce_prefix + nonce.decode("ascii"), self._nonce_ttl):
            return None
        return access_key.principal, shape.info

    def _head(self, head_bytes: bytes) -> _Statics | None:
        try:
            _, signed_headers, complete = authorization_head(head_bytes.decode("latin-1"))
        except Exception:  # noqa: BLE001 — malformed: the general path words it
            return None
        if not complete or _DATE not in signed_headers or _NONCE not in signed_headers:
            return None
        names = [n.encode("latin-1") for n in signed_headers if n not in (_DATE, _NONCE)]
        if len(names) < 2:
            return None  # itemgetter of one name would not return a tuple
        statics_of: _Statics = operator.itemgetter(*names)
        self._heads.put(head_bytes, statics_of, len(head_bytes) + 64 * len(names))
        return statics_of

    def _shape(
        self, scope: Mapping[str, Any], head_bytes: bytes, key: tuple[object, ...]
    ) -> Shape[T] | None:
        try:
            request = SignedRequest.from_asgi(scope, b"")
            credentials = parse_credentials(request)
            if credentials.style != "v3":
                return None
            info = self._describe(request)
            holes = dict(request.headers)
            holes[_DATE], holes[_NONCE] = _DATE_HOLE, _NONCE_HOLE
            template = SignedRequest(request.method, request.path, request.raw_query, holes)
            canonical = v3_canonical_request(template, credentials.signed_headers, EMPTY_SHA256)
        except Exception:  # noqa: BLE001 — anything refused is refused by the general path
            return None
        if canonical.count(_DATE_HOLE) != 1 or canonical.count(_NONCE_HOLE) != 1:
            return None
        before, _, rest = canonical.partition(_DATE_HOLE)
        between, _, after = rest.partition(_NONCE_HOLE)
        if _NONCE_HOLE in before:
            return None  # the holes are always in this order (sorted names); be sure
        shape = Shape(
            credentials.access_key_id,
            f"cams:{credentials.access_key_id}:",
            before.encode(),
            between.encode(),
            after.encode(),
            info,
        )
        size = len(canonical) + len(head_bytes) + sum(len(str(part)) for part in key)
        self._shapes.put((head_bytes, key), shape, 2 * size)
        return shape

    def _date(self, date: bytes) -> float | None:
        text = date.decode("latin-1")
        if text != text.strip():
            return None
        try:
            signed_at = parse_timestamp(text).timestamp()
        except Exception:  # noqa: BLE001 — malformed: the general path words it
            return None
        if len(self._dates) >= DATES_MAX_ENTRIES:
            self._dates.clear()
        self._dates[date] = signed_at
        return signed_at
