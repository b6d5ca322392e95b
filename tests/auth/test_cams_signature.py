"""Signature parsing and verification, against the SDK's own signer and a captured request."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alibabacloud_tea_openapi.utils import Utils
from darabonba.core import DaraCore
from darabonba.request import DaraRequest
from darabonba.utils.form import Form
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.auth.cams_stub import DictNonceStore

from wahealth.auth.cams_signature import (
    SignedRequest,
    action_and_version,
    authenticate,
    parse_credentials,
    rpc_params,
    verify,
)
from wahealth.auth.errors import (
    CamsAuthError,
    IncompleteSignature,
    InvalidAccessKeyIdNotFound,
    InvalidTimeStampExpired,
    InvalidTimeStampFormat,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
)
from wahealth.core.ports import AccessKey, Principal

AK = "LTAIpropertytest0000001"
NOW = datetime(2026, 11, 23, 10, 47, 44, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
V1_PROTOCOL = {
    "Action",
    "Format",
    "Version",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
    "SignatureVersion",
    "AccessKeyId",
    "Signature",
}

# The request `alibabacloud-cams20200606` 5.3.1 sent with Config(access_key_id='testid',
# access_key_secret='testsecret'), byte for byte (Accept-Encoding and Content-Length unsigned).
CAPTURED = SignedRequest(
    method="POST",
    path="/",
    raw_query=b"CustSpaceId=C123&NodeType=phone&PhoneNumber=8613800000000",
    headers={
        "accept-encoding": "identity",
        "host": "127.0.0.1:46261",
        "x-acs-version": "2020-06-06",
        "x-acs-action": "GetWhatsappHealthStatus",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
        "x-acs-date": "2026-11-23T10:47:44Z",
        "x-acs-signature-nonce": "364f913a5c4a0a1168e09250a46de076",
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        "x-acs-credentials-provider": "static_ak",
        "authorization": "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;host;"
        "user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version,"
        "Signature=c036e12824957f62e7433a7c6e52ecc52074c67aa7435bbe7754ae76d3df2b19",
        "content-length": "0",
    },
    body=b"",
)


def _with_headers(req: SignedRequest, **changes: str | None) -> SignedRequest:
    headers = dict(req.headers)
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return replace(req, headers=headers)


def _with_authorization(req: SignedRequest, old: str, new: str) -> SignedRequest:
    return _with_headers(req, authorization=req.headers["authorization"].replace(old, new))


# --- A request captured from the SDK -------------------------------------------------------


def test_captured_sdk_request_verifies_with_its_secret_only() -> None:
    creds = parse_credentials(CAPTURED)

    assert (creds.style, creds.access_key_id) == ("v3", "testid")
    assert creds.algorithm == "ACS3-HMAC-SHA256"
    assert creds.nonce == "364f913a5c4a0a1168e09250a46de076"
    assert creds.timestamp == NOW
    verify(CAPTURED, creds, "testsecret")
    with pytest.raises(SignatureDoesNotMatch):
        verify(CAPTURED, creds, "wrongsecret")
    assert action_and_version(CAPTURED) == ("GetWhatsappHealthStatus", "2020-06-06")
    assert rpc_params(CAPTURED) == {
        "CustSpaceId": "C123",
        "NodeType": "phone",
        "PhoneNumber": "8613800000000",
    }


def test_query_order_on_the_wire_does_not_matter() -> None:
    reordered = replace(
        CAPTURED, raw_query=b"PhoneNumber=8613800000000&CustSpaceId=C123&NodeType=phone"
    )

    verify(reordered, parse_credentials(reordered), "testsecret")


def test_payload_hash_header_must_match_the_body() -> None:
    with_body = replace(CAPTURED, body=b"x")

    with pytest.raises(SignatureDoesNotMatch, match="x-acs-content-sha256"):
        verify(with_body, parse_credentials(with_body), "testsecret")


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(_with_headers(CAPTURED, authorization=None), id="no-authorization"),
        pytest.param(_with_headers(CAPTURED, authorization="ACS3-HMAC-SHA256"), id="no-fields"),
        pytest.param(_with_headers(CAPTURED, authorization="Bearer abc"), id="other-scheme"),
        pytest.param(_with_authorization(CAPTURED, "ACS3-HMAC-SHA256", "ACS3-HMAC-SM3"), id="sm3"),
        pytest.param(_with_authorization(CAPTURED, "Credential=testid,", ""), id="no-credential"),
        pytest.param(_with_authorization(CAPTURED, "Credential=testid", "Credential="), id="empty"),
        pytest.param(
            _with_authorization(CAPTURED, "Credential=testid", "Credential=testid,Credential=x"),
            id="repeated-field",
        ),
        pytest.param(
            _with_authorization(CAPTURED, "Credential=testid", "Credential=a b"), id="space-in-id"
        ),
        pytest.param(_with_authorization(CAPTURED, "Signature=c0", "Signature=zz"), id="not-hex"),
        pytest.param(_with_authorization(CAPTURED, "Signature=c036e1", "Sig=c036e1"), id="unknown"),
        pytest.param(_with_authorization(CAPTURED, "host;", ""), id="host-unsigned"),
        pytest.param(_with_authorization(CAPTURED, "x-acs-date;", ""), id="date-unsigned"),
        pytest.param(
            _with_authorization(CAPTURED, "x-acs-signature-nonce;", ""), id="nonce-unsigned"
        ),
        pytest.param(_with_authorization(CAPTURED, ";x-acs-version", ""), id="version-unsigned"),
        pytest.param(_with_authorization(CAPTURED, "accept;", "Accept;"), id="uppercase-name"),
        pytest.param(_with_authorization(CAPTURED, "accept;", "accept;accept;"), id="dup-header"),
        pytest.param(_with_headers(CAPTURED, user_agent=None), id="signed-header-absent"),
        pytest.param(_with_headers(CAPTURED, x_acs_content_sha256=None), id="no-payload-hash"),
        pytest.param(_with_headers(CAPTURED, x_acs_signature_nonce="a" * 200), id="long-nonce"),
        pytest.param(replace(CAPTURED, raw_query=b"NodeType=%ff"), id="query-not-utf8-escaped"),
        pytest.param(replace(CAPTURED, raw_query=b"NodeType=\xff"), id="query-not-utf8-raw"),
        pytest.param(replace(CAPTURED, raw_query=b"a=1&a=1"), id="repeated-param"),
        pytest.param(replace(CAPTURED, raw_query=b"&".join([b"a=1"] * 300)), id="too-many"),
        pytest.param(
            _with_headers(replace(CAPTURED, body=b"CustSpaceId=C9"), content_type=FORM),
            id="param-in-query-and-body",
        ),
        pytest.param(
            _with_headers(replace(CAPTURED, body=b"a=%fe"), content_type=FORM + "; charset=UTF-8"),
            id="body-not-utf8",
        ),
    ],
)
def test_malformed_request_is_incomplete_signature(broken: SignedRequest) -> None:
    with pytest.raises(IncompleteSignature) as info:
        parse_credentials(broken)

    assert info.value.code == "IncompleteSignature"
    assert info.value.http_status == 400
    assert info.value.message.startswith(
        "The request signature does not conform to Aliyun standards."
    )


@pytest.mark.parametrize(
    "date", ["2026-11-23 10:47:44Z", "2026-11-23T10:47:44", "2026-13-23T10:47:44Z", "١٢٣"]
)
def test_badly_formatted_date_is_invalid_timestamp_format(date: str) -> None:
    with pytest.raises(InvalidTimeStampFormat) as info:
        parse_credentials(_with_headers(CAPTURED, x_acs_date=date))

    assert info.value.code == "InvalidTimeStamp.Format"


def test_non_form_body_is_not_read_as_parameters() -> None:
    req = _with_headers(replace(CAPTURED, body=b"WabaId=1"), content_type="text/plain")

    assert "WabaId" not in rpc_params(req)
    assert rpc_params(_with_headers(req, content_type=FORM))["WabaId"] == "1"


def test_from_asgi_keeps_the_wire_form() -> None:
    scope = {
        "method": "POST",
        "path": "/a b",
        "raw_path": b"/a%20b",
        "query_string": b"x=%2B",
        "headers": [(b"Host", b"h"), (b"X-Dup", b"1"), (b"x-dup", b"2"), (b"User-Agent", b"\xe9")],
    }

    req = SignedRequest.from_asgi(scope, b"body")

    assert req == SignedRequest(
        "POST", "/a%20b", b"x=%2B", {"host": "h", "x-dup": "1,2", "user-agent": "é"}, b"body"
    )


# --- authenticate: order of checks, nonce handling ---------------------------------------


class _Secrets:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.looked_up: list[str] = []

    async def __call__(self, access_key_id: str) -> AccessKey | None:
        self.looked_up.append(access_key_id)
        secret = self.secrets.get(access_key_id)
        return None if secret is None else AccessKey(Principal("test", 5), secret, False)


async def _authenticate(req: SignedRequest, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "lookup_key": _Secrets({"testid": "testsecret"}),
        "nonces": DictNonceStore(),
        "now": NOW,
    }
    options.update(kw)
    return await authenticate(req, **options)


async def test_authenticate_claims_the_nonce_for_twice_the_window() -> None:
    nonces = DictNonceStore()

    creds = (await _authenticate(CAPTURED, nonces=nonces, max_skew_seconds=300)).credentials

    assert creds.access_key_id == "testid"
    assert nonces.claimed == {"cams:testid:364f913a5c4a0a1168e09250a46de076": 600}
    with pytest.raises(SignatureNonceUsed):
        await _authenticate(CAPTURED, nonces=nonces)


@pytest.mark.parametrize("offset", [timedelta(minutes=15), timedelta(minutes=-15)])
async def test_authenticate_accepts_the_edges_of_the_window(offset: timedelta) -> None:
    await _authenticate(CAPTURED, now=NOW + offset)


@pytest.mark.parametrize("offset", [timedelta(seconds=901), timedelta(seconds=-901)])
async def test_stale_request_is_refused_before_the_secret_is_looked_up(offset: timedelta) -> None:
    secrets = _Secrets({"testid": "testsecret"})

    with pytest.raises(InvalidTimeStampExpired):
        await _authenticate(CAPTURED, now=NOW + offset, lookup_key=secrets)
    assert secrets.looked_up == []


async def test_unknown_key_is_not_found() -> None:
    with pytest.raises(InvalidAccessKeyIdNotFound) as info:
        await _authenticate(CAPTURED, lookup_key=_Secrets({}))
    assert (info.value.code, info.value.http_status) == ("InvalidAccessKeyId.NotFound", 404)


async def test_bad_signature_leaves_the_nonce_unclaimed() -> None:
    nonces = DictNonceStore()

    with pytest.raises(SignatureDoesNotMatch):
        await _authenticate(CAPTURED, nonces=nonces, lookup_key=_Secrets({"testid": "x"}))
    assert nonces.claimed == {}


async def test_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await _authenticate(CAPTURED, now=NOW.replace(tzinfo=None))


def test_errors_carry_alibaba_codes_and_statuses() -> None:
    error: CamsAuthError = SignatureNonceUsed("detail here")

    assert (error.code, error.http_status) == ("SignatureNonceUsed", 400)
    assert error.message == "Specified signature nonce was used already. detail here"
    assert str(error) == f"SignatureNonceUsed: {error.message}"


# --- Properties: whatever the SDK signs, we verify -----------------------------------------

_params = st.dictionaries(st.text(max_size=12), st.text(max_size=24), max_size=6)
_secrets = st.text(min_size=1, max_size=40)
_user_agents = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


def _v3_sdk_request(
    query: dict[str, str], body: dict[str, str], secret: str, user_agent: str
) -> SignedRequest:
    """Sign like `Client.do_request` (RPC style, formData body) and put it on the wire like it."""
    request = DaraRequest()
    request.method = "POST"
    request.pathname = "/"
    request.protocol = "http"
    request.query = dict(query)
    request.headers = {
        "host": "127.0.0.1:8080",
        "x-acs-version": "2020-06-06",
        "x-acs-action": "GetWhatsappHealthStatus",
        "user-agent": user_agent,
        "x-acs-date": "2026-11-23T10:47:44Z",
        "x-acs-signature-nonce": Utils.get_nonce(),
        "accept": "application/json",
    }
    payload = b""
    if body:
        payload = Utils.to_form(body).encode()
        request.headers["content-type"] = FORM
    request.headers["x-acs-content-sha256"] = hashlib.sha256(payload).hexdigest()
    request.headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", hashlib.sha256(payload).hexdigest(), AK, secret
    )
    raw_query = DaraCore.compose_url(request).partition("?")[2].encode()
    headers = {name.lower(): value for name, value in request.headers.items()}
    return SignedRequest("POST", "/", raw_query, headers, payload)


def _v1_sdk_request(query: dict[str, str], body: dict[str, str], secret: str) -> SignedRequest:
    """Sign like `Client.do_rpcrequest` and put it on the wire like it."""
    request = DaraRequest()
    request.method = "POST"
    request.pathname = "/"
    request.protocol = "http"
    request.headers = {"host": "127.0.0.1:8080"}
    request.query = {
        "Action": "GetWhatsappHealthStatus",
        "Format": "json",
        "Version": "2020-06-06",
        "Timestamp": "2026-11-23T10:47:44Z",
        "SignatureNonce": Utils.get_nonce(),
        **query,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": AK,
    }
    signed = {**request.query, **body}
    request.query["Signature"] = Utils.get_rpcsignature(signed, "POST", secret)
    raw_query = DaraCore.compose_url(request).partition("?")[2].encode()
    payload = Form.to_form_string(body).encode() if body else b""
    headers = {"host": "127.0.0.1:8080"}
    if body:
        headers["content-type"] = FORM
    return SignedRequest("POST", "/", raw_query, headers, payload)


@settings(deadline=None)
@given(query=_params, body=_params, secret=_secrets, user_agent=_user_agents)
def test_property_v3_sdk_signatures_verify(
    query: dict[str, str], body: dict[str, str], secret: str, user_agent: str
) -> None:
    body = {name: value for name, value in body.items() if name not in query}
    req = _v3_sdk_request(query, body, secret, user_agent)

    creds = parse_credentials(req)
    verify(req, creds, secret)
    assert rpc_params(req) == {**query, **body}
    with pytest.raises(SignatureDoesNotMatch):
        verify(req, creds, secret + "x")


@settings(deadline=None)
@given(query=_params, body=_params, secret=_secrets)
def test_property_v1_sdk_signatures_verify(
    query: dict[str, str], body: dict[str, str], secret: str
) -> None:
    query = {name: value for name, value in query.items() if name not in V1_PROTOCOL}
    body = {name: v for name, v in body.items() if name not in query and name not in V1_PROTOCOL}
    req = _v1_sdk_request(query, body, secret)

    creds = parse_credentials(req)
    assert creds.style == "v1"
    verify(req, creds, secret)
    params = rpc_params(req)
    assert {name: params[name] for name in {**query, **body}} == {**query, **body}
    assert action_and_version(req) == ("GetWhatsappHealthStatus", "2020-06-06")
    with pytest.raises(SignatureDoesNotMatch):
        verify(req, creds, secret + "x")


@pytest.mark.parametrize(
    "missing", ["AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"]
)
def test_v1_without_a_signature_piece_is_incomplete(missing: str) -> None:
    req = _v1_sdk_request({"NodeType": "phone"}, {}, "s")
    pairs = [p for p in req.raw_query.split(b"&") if not p.startswith(missing.encode() + b"=")]

    with pytest.raises(IncompleteSignature, match=missing):
        parse_credentials(replace(req, raw_query=b"&".join(pairs)))


def test_v1_other_signature_method_is_incomplete() -> None:
    req = _v1_sdk_request({}, {}, "s")
    raw_query = req.raw_query.replace(b"HMAC-SHA1", b"HMAC-SHA256")

    with pytest.raises(IncompleteSignature, match="HMAC-SHA1"):
        parse_credentials(replace(req, raw_query=raw_query))
