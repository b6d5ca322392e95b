"""Bad input gets a 4xx in the dialect's own JSON shape: never a 500, never a traceback.

Requests an HTTP client would send go through httpx; bytes it would refuse or rewrite
(raw non-UTF-8 in the request line and in header values) go through a raw socket.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import httpx
import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from tests.gateway._served import ServedGateway
from tests.gateway._wire import (
    PHONE_OK,
    cams_error,
    d360_error,
    graph_error,
    no_traceback,
    raw_request,
)

from wahealth.testing import DEMO

BEARER = {"Authorization": f"Bearer {DEMO.graph_token}"}
# Signed-looking CAMS headers that reach the action and version checks.
CAMS_V3 = {
    "Authorization": "ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=00",
    "x-acs-action": "GetWhatsappHealthStatus",
    "x-acs-version": "2020-06-06",
}


@dataclass(frozen=True)
class Bad:
    """A bad request and the answer expected: HTTP status, dialect, the dialect's error code."""

    method: str
    target: str
    status: int
    dialect: str  # "cams" | "d360" | "graph"
    code: str | int | None = None
    headers: Mapping[str, str | bytes] = field(default_factory=dict)
    content: bytes | None = None


BAD_REQUESTS: dict[str, Bad] = {
    # CAMS RPC at /
    "cams-no-action": Bad("POST", "/", 400, "cams", "MissingParameter"),
    "cams-malformed-query": Bad("POST", "/?%zz=%%%&&==&a", 400, "cams", "MissingParameter"),
    "cams-repeated-parameter": Bad(
        "GET", "/?Action=GetWhatsappHealthStatus&Action=Other", 400, "cams", "IncompleteSignature"
    ),
    "cams-non-utf8-query": Bad("POST", "/?Action=%ff%fe", 400, "cams", "IncompleteSignature"),
    "cams-unknown-action-rpc": Bad(
        "POST",
        "/?Action=DeleteEverything&Version=2020-06-06",
        404,
        "cams",
        "InvalidAction.NotFound",
    ),
    "cams-unknown-action-v3": Bad(
        "POST",
        "/",
        404,
        "cams",
        "InvalidAction.NotFound",
        headers={**CAMS_V3, "x-acs-action": "SendChatappMessage"},
    ),
    "cams-wrong-version": Bad(
        "POST",
        "/",
        400,
        "cams",
        "InvalidParameter",
        headers={**CAMS_V3, "x-acs-version": "2019-01-01"},
    ),
    "cams-missing-version": Bad(
        "POST",
        "/?Action=GetWhatsappHealthStatus",
        400,
        "cams",
        "MissingParameter",
    ),
    "cams-garbage-signature": Bad("POST", "/", 400, "cams", "IncompleteSignature", headers=CAMS_V3),
    "cams-unsigned-rpc": Bad(
        "POST",
        "/?Action=GetWhatsappHealthStatus&Version=2020-06-06&NodeType=phone",
        400,
        "cams",
        "IncompleteSignature",
    ),
    "cams-bad-date": Bad(
        "GET",
        "/?Action=GetWhatsappHealthStatus&Version=2020-06-06&AccessKeyId=x&Signature=x"
        "&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=yesterday",
        400,
        "cams",
        "InvalidTimeStamp.Format",
    ),
    "cams-oversized-body": Bad(
        "POST", "/", 413, "cams", "InvalidParameter", content=b"NodeType=phone&" * 5000
    ),
    "cams-non-utf8-form-body": Bad(
        "POST",
        "/",
        400,
        "cams",
        "IncompleteSignature",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=b"Action=\xff\xfe",
    ),
    "cams-delete": Bad("DELETE", "/", 405, "cams", "MethodNotAllowed"),
    "cams-put": Bad("PUT", "/?Action=GetWhatsappHealthStatus", 405, "cams", "MethodNotAllowed"),
    "cams-options": Bad("OPTIONS", "/", 405, "cams", "MethodNotAllowed"),
    # 360dialog at /health_status
    "d360-post": Bad(
        "POST", "/health_status", 405, "d360", headers={"D360-API-KEY": DEMO.d360_key}
    ),
    "d360-delete": Bad("DELETE", "/health_status", 405, "d360"),
    "d360-malformed-query": Bad("GET", "/health_status?%%%&&=%zz", 401, "d360"),
    "d360-non-utf8-key": Bad(
        "GET", "/health_status", 401, "d360", headers={"D360-API-KEY": b"\xff\xfe\x80"}
    ),
    "d360-huge-key": Bad(
        "GET", "/health_status", 401, "d360", headers={"D360-API-KEY": "k" * 8000}
    ),
    # Graph at /v<major>.<minor>/<node>
    **{
        f"graph-version-{name}": Bad(
            "GET", f"/{version}/{PHONE_OK}?fields=health_status", 400, "graph", 2500, headers=BEARER
        )
        for name, version in {
            "letters": "vX",
            "empty": "v",
            "trailing-dot": "v1.",
            "leading-dot": "v.1",
            "three-parts": "v1.2.3",
            "suffix": "v21.0x",
            "non-utf8": "v%ff",
            "unicode-digits": "v%D9%A1.0",
        }.items()
    },
    # A phone number has no phone_numbers edge: Meta's "nonexisting field".
    "graph-edge-of-a-number": Bad(
        "GET", f"/v21.0/{PHONE_OK}/phone_numbers", 400, "graph", 100, headers=BEARER
    ),
    "graph-too-deep": Bad(
        "GET", f"/v21.0/{PHONE_OK}/phone_numbers/x", 400, "graph", 2500, headers=BEARER
    ),
    "graph-no-node": Bad("GET", "/v21.0/", 400, "graph", 2500, headers=BEARER),
    "graph-version-only": Bad("GET", "/v21.0", 400, "graph", 2500, headers=BEARER),
    "graph-post": Bad("POST", f"/v21.0/{PHONE_OK}", 400, "graph", 100, headers=BEARER),
    "graph-delete": Bad("DELETE", f"/v21.0/{PHONE_OK}", 400, "graph", 100),
    "graph-long-numeric-id": Bad(
        "GET", "/v21.0/" + "1" * 4000 + "?fields=health_status", 400, "graph", 100, headers=BEARER
    ),
    "graph-long-id": Bad(
        "GET", "/v21.0/" + "a" * 4000 + "?fields=health_status", 400, "graph", 100, headers=BEARER
    ),
    "graph-non-utf8-id": Bad(
        "GET", "/v21.0/%ff%fe?fields=health_status", 400, "graph", 100, headers=BEARER
    ),
    "graph-malformed-query": Bad(
        "GET", f"/v21.0/{PHONE_OK}?fields=%zz&&=&access_token=%%", 401, "graph", 190
    ),
    "graph-non-utf8-fields": Bad(
        "GET", f"/v21.0/{PHONE_OK}?fields=%ff", 400, "graph", 100, headers=BEARER
    ),
    "graph-non-utf8-token": Bad(
        "GET", f"/v21.0/{PHONE_OK}?fields=health_status&access_token=%ff%fe", 401, "graph", 190
    ),
    "graph-non-utf8-bearer": Bad(
        "GET",
        f"/v21.0/{PHONE_OK}?fields=health_status",
        401,
        "graph",
        190,
        headers={"Authorization": b"Bearer \xff\xfe"},
    ),
}


def _check(status: int, headers: httpx.Headers | dict[str, str], body: bytes, bad: Bad) -> None:
    assert status == bad.status, body[:300]
    request_id = headers.get("x-request-id")
    assert request_id
    if bad.dialect == "cams":
        assert isinstance(bad.code, str)
        cams_error(body, bad.code, request_id)
    elif bad.dialect == "d360":
        d360_error(body, bad.status)
    else:
        assert isinstance(bad.code, int)
        graph_error(body, bad.code)


@pytest.fixture(scope="module")
def http(gateway: ServedGateway) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gets_dialect_error(http: httpx.Client, case: str) -> None:
    bad = BAD_REQUESTS[case]
    headers = [
        (name.encode(), value if isinstance(value, bytes) else value.encode())
        for name, value in bad.headers.items()
    ]
    request = http.build_request(bad.method, bad.target, headers=headers, content=bad.content)
    # Send the target exactly as written (httpx would otherwise normalise it).
    request.url = request.url.copy_with(raw_path=bad.target.encode())

    response = http.send(request)

    _check(response.status_code, response.headers, response.content, bad)
    if bad.status == 405:
        assert response.headers["allow"]


def test_chunked_body_past_the_limit_is_refused(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 4096

    response = http.post("/", content=chunks())

    too_large = Bad("POST", "/", 413, "cams", "InvalidParameter")
    _check(response.status_code, response.headers, response.content, too_large)


@pytest.mark.parametrize(
    "target", ["/nope", "/favicon.ico", "/health_status/extra", "/_healthz", "/%ff"]
)
def test_path_no_dialect_owns_gets_a_json_error(http: httpx.Client, target: str) -> None:
    response = http.get(target)

    assert 400 <= response.status_code < 500
    assert response.headers["x-request-id"]
    assert response.headers["content-type"].startswith("application/json")
    no_traceback(response.content)


def test_sdk_with_absurd_phone_numbers_gets_not_found(gateway: ServedGateway) -> None:
    client = gateway.cams()
    for phone_number in ("8" * 4000, "☎️ 138 0000", "%ff%00\\'\"<>"):
        with pytest.raises(ClientException) as info:
            client.get_whatsapp_health_status(
                GetWhatsappHealthStatusRequest(
                    node_type="phone", phone_number=phone_number, cust_space_id=DEMO.space
                )
            )
        assert (info.value.code, info.value.status_code) == ("NotExists.PhoneNumber", 404)


# --- raw sockets ----------------------------------------------------------------------------


def _raw(
    gateway: ServedGateway, request_line: bytes, *headers: bytes
) -> tuple[int, dict[str, str], bytes]:
    data = request_line + b"\r\nHost: 127.0.0.1\r\n"
    data += b"".join(h + b"\r\n" for h in headers)
    data += b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    answer = raw_request(gateway.server.host, gateway.server.port, data)
    return answer.status, answer.headers, answer.body


RAW_HEADER_CASES: dict[str, tuple[bytes, tuple[bytes, ...], Bad]] = {
    "d360-key": (
        b"GET /health_status HTTP/1.1",
        (b"D360-API-KEY: \xff\xfe\x80",),
        Bad("GET", "", 401, "d360"),
    ),
    "graph-bearer": (
        b"GET /v21.0/106540352242922?fields=health_status HTTP/1.1",
        (b"Authorization: Bearer \xc3\x28\xff",),
        Bad("GET", "", 401, "graph", 190),
    ),
    "cams-action": (
        b"POST / HTTP/1.1",
        (
            b"Authorization: ACS3-HMAC-SHA256 \xff",
            b"x-acs-action: \xff\xfe",
            b"x-acs-version: 2020-06-06",
        ),
        Bad("POST", "", 404, "cams", "InvalidAction.NotFound"),
    ),
    "cams-signed-headers": (
        b"POST / HTTP/1.1",
        (
            b"Authorization: ACS3-HMAC-SHA256 Credential=\xff,SignedHeaders=host;x-acs-action;"
            b"x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=" + b"0" * 64,
            b"x-acs-action: GetWhatsappHealthStatus",
            b"x-acs-version: 2020-06-06",
            b"x-acs-date: 2026-01-01T00:00:00Z",
            b"x-acs-signature-nonce: \xff\xfe",
            b"x-acs-content-sha256: " + b"e" * 64,
        ),
        Bad("POST", "", 400, "cams", "IncompleteSignature"),
    ),
}


@pytest.mark.parametrize("case", RAW_HEADER_CASES)
def test_non_utf8_header_values_get_dialect_errors(gateway: ServedGateway, case: str) -> None:
    request_line, headers, bad = RAW_HEADER_CASES[case]

    status, answer_headers, body = _raw(gateway, request_line, *headers)

    _check(status, answer_headers, body, bad)


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /v21.0/\xff\xfe?fields=health_status HTTP/1.1",
        b"GET /v21.0/106540352242922?fields=health_status&access_token=\xff HTTP/1.1",
        b"GET /health_status?\xc3\x28 HTTP/1.1",
        b"POST /?Action=\xff HTTP/1.1",
        b"GET /\x80 HTTP/1.1",
    ],
)
def test_raw_non_utf8_request_line_is_refused_without_a_traceback(
    gateway: ServedGateway, request_line: bytes
) -> None:
    status, headers, body = _raw(gateway, request_line)

    # The HTTP server refuses these bytes before the app sees them; a JSON error when it
    # does pass them on.
    assert status == 400
    no_traceback(body)
    if "x-request-id" in headers:
        assert headers["content-type"].startswith("application/json")


def test_every_answer_of_this_module_carried_its_own_request_id(gateway: ServedGateway) -> None:
    with gateway.http() as http:
        http.get("/healthz").raise_for_status()

    request_ids = [e.response_header("x-request-id") for e in gateway.tap.exchanges]

    assert request_ids
    assert all(request_ids)
    assert len(set(request_ids)) == len(request_ids)
