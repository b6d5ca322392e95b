"""The express lane settles a call only when the general check would accept it too.

The lane is a shortcut for a client's usual V3 call; the general path (`authenticate`)
is the definition. Every call the lane accepts must be one the general path accepts,
with the same signer; anything else must come back None, with no nonce claimed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.auth.test_cams_signature import CAPTURED, NOW

from wahealth.auth.cams_express import CamsExpress
from wahealth.auth.cams_signature import CamsSignatureVerifier, SignedRequest, authenticate
from wahealth.auth.errors import CamsAuthError, SignatureNonceUsed
from wahealth.cache.memory import MemoryNonceStore
from wahealth.core.ports import AccessKey, Principal
from wahealth.core.queries import FailClosedNonces

PRINCIPAL = Principal("acme", 10)
KEYS = {"testid": AccessKey(PRINCIPAL, "testsecret", revoked=False)}


async def _lookup(key_id: str) -> AccessKey | None:
    return KEYS.get(key_id)


def _verifier(store: MemoryNonceStore, keys: dict[str, AccessKey] = KEYS) -> CamsSignatureVerifier:
    return CamsSignatureVerifier(
        access_key=_lookup,
        nonces=FailClosedNonces(store),
        now=lambda: NOW,
        access_key_now=keys.get,
    )


def _express(store: MemoryNonceStore, keys: dict[str, AccessKey] = KEYS) -> CamsExpress[bytes]:
    return CamsExpress(_verifier(store, keys), lambda request: request.raw_query)


def _scope(req: SignedRequest, extra: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in req.headers.items()]
    return {
        "type": "http",
        "method": req.method,
        "path": req.path,
        "raw_path": req.path.encode("latin-1"),
        "query_string": req.raw_query,
        "headers": headers + (extra or []),
    }


def _general(req: SignedRequest) -> Principal | CamsAuthError:
    """What the general path answers for `req`, on a nonce store of its own."""
    verifier = _verifier(MemoryNonceStore())
    try:
        verified = asyncio.run(
            authenticate(req, lookup_key=_lookup, nonces=verifier.nonces, now=NOW)
        )
    except CamsAuthError as exc:
        return exc
    return verified.key.principal


def test_the_sdk_s_call_is_settled_once_then_its_replay_goes_the_general_way() -> None:
    store = MemoryNonceStore()
    express = _express(store)

    assert express.verify_now(_scope(CAPTURED)) == (PRINCIPAL, CAPTURED.raw_query)
    assert express.verify_now(_scope(CAPTURED)) is None  # the nonce is spent
    verifier = _verifier(store)
    try:
        asyncio.run(verifier.verify(CAPTURED))
    except SignatureNonceUsed:
        pass
    else:
        raise AssertionError("the replay was accepted")


def test_a_key_not_looked_up_moments_ago_or_revoked_is_left_to_the_general_path() -> None:
    store = MemoryNonceStore()
    assert _express(store, keys={}).verify_now(_scope(CAPTURED)) is None
    revoked = {"testid": replace(KEYS["testid"], revoked=True)}
    assert _express(store, keys=revoked).verify_now(_scope(CAPTURED)) is None
    # Nothing was claimed on the way: the call still verifies.
    assert _express(store).verify_now(_scope(CAPTURED)) == (PRINCIPAL, CAPTURED.raw_query)


def test_a_repeated_header_or_a_body_is_left_to_the_general_path() -> None:
    store = MemoryNonceStore()
    express = _express(store)
    again = [(b"x-acs-date", CAPTURED.headers["x-acs-date"].encode())]

    assert express.verify_now(_scope(CAPTURED, again)) is None
    with_body = replace(CAPTURED, headers={**CAPTURED.headers, "content-length": "3"})
    assert express.verify_now(_scope(with_body)) is None
    assert express.verify_now(_scope(CAPTURED)) == (PRINCIPAL, CAPTURED.raw_query)


_NAMES = sorted(CAPTURED.headers)
_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80),
    st.sampled_from(["", " ", "0", "GET", "identity", "2026-11-23T10:47:45Z"]),
)


@st.composite
def _mutated(draw: st.DrawFn) -> SignedRequest:
    """The captured SDK call with a few of its parts changed, removed or shifted."""
    req = CAPTURED
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["header", "drop", "method", "query", "signature", "date"]))
        headers = dict(req.headers)
        if what == "header":
            headers[draw(st.sampled_from(_NAMES))] = draw(_VALUES)
        elif what == "drop":
            headers.pop(draw(st.sampled_from(_NAMES)), None)
        elif what == "method":
            req = replace(req, method=draw(st.sampled_from(["GET", "PUT", "post", "HEAD"])))
        elif what == "query":
            raw = draw(st.sampled_from([b"", b"CustSpaceId=C123", b"NodeType=phone&x=1"]))
            req = replace(req, raw_query=raw)
        elif what == "signature":
            signature = draw(st.text("0123456789abcdefABCDEF ", min_size=0, max_size=70))
            head = (
                headers["authorization"].rpartition("Signature=")[0]
                if "authorization" in headers
                else ""
            )
            headers["authorization"] = f"{head}Signature={signature}"
        else:
            shift = draw(st.integers(-2000, 2000))
            headers["x-acs-date"] = (NOW + timedelta(seconds=shift)).strftime("%Y-%m-%dT%H:%M:%SZ")
        req = replace(req, headers=headers)
    return req


@settings(max_examples=300)
@given(_mutated())
def test_whatever_the_lane_accepts_the_general_path_accepts_from_the_same_signer(
    req: SignedRequest,
) -> None:
    express = _express(MemoryNonceStore())
    express.verify_now(_scope(CAPTURED))  # the usual call first: the shape is known

    settled = express.verify_now(_scope(req))

    if settled is not None:
        assert _general(req) == PRINCIPAL
        assert settled == (PRINCIPAL, req.raw_query)
