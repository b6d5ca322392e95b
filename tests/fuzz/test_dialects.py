"""Fuzzed requests to the three dialects: never a 5xx, nothing of Python on the wire, their shape.

CAMS is fuzzed unsigned (random parameters and headers), with forged signature pieces,
and validly signed (the SDK's own v1 signer) with random parameters, so the input gets
past authentication to the parser, the directory and the health core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import event, example, given
from hypothesis import strategies as st
from tests.fuzz._cams import encode, signed_v1
from tests.fuzz._strategies import (
    BAD_ESCAPES,
    CAMS_PARAM_NAMES,
    KNOWN_NODES,
    LONG_NODE_ID,
    LONG_PHONE,
    cams_business_params,
    digits,
    header_values,
    headers,
    mostly,
    raw_query,
    url_component,
)
from tests.fuzz._wire import cams_answer, d360_answer, graph_answer, no_python_on_the_wire
from tests.fuzz.conftest import Fuzzed, fuzz_settings

from wahealth.testing import DEMO

FORM = (b"content-type", b"application/x-www-form-urlencoded")
METHODS = mostly(
    st.sampled_from(("GET", "POST")), st.sampled_from(("PUT", "DELETE", "OPTIONS", "PATCH"))
)


async def send(
    client: httpx.AsyncClient,
    method: str,
    target: str,
    header_list: list[tuple[bytes, bytes]] | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    """Send `target` exactly as written (httpx would otherwise re-encode it)."""
    request = client.build_request(method, "/", headers=header_list or [], content=body)
    request.url = request.url.copy_with(raw_path=target.encode("ascii"))
    return await client.send(request)


# --- CAMS RPC at / ---------------------------------------------------------------------------

_V3_HEADERS = headers(
    (
        "authorization",
        header_values("ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=0"),
    ),
    ("x-acs-action", header_values("GetWhatsappHealthStatus")),
    ("x-acs-version", header_values("2020-06-06")),
    ("x-acs-date", header_values("2026-01-01T00:00:00Z")),
    ("x-acs-signature-nonce", header_values("n0nce")),
    ("x-acs-content-sha256", header_values("e" * 64)),
    ("content-type", header_values("application/x-www-form-urlencoded", "application/json")),
)


@fuzz_settings(300)
@given(
    method=METHODS,
    query=raw_query((*CAMS_PARAM_NAMES, "Signature", "AccessKeyId", "Timestamp"), "phone"),
    header_list=_V3_HEADERS,
    body=st.none() | st.binary(max_size=200) | raw_query(CAMS_PARAM_NAMES).map(str.encode),
)
@example(method="POST", query="Action=%00&Version=%ff", header_list=[FORM], body=b"\x00\xff")
@example(method="GET", query="PhoneNumber=" + LONG_PHONE, header_list=[], body=None)
async def test_cams_unsigned_or_forged(
    fuzzed: Fuzzed,
    method: str,
    query: str,
    header_list: list[tuple[bytes, bytes]],
    body: bytes | None,
) -> None:
    response = await send(fuzzed.client, method, "/?" + query, header_list, body)

    answer = cams_answer(response)
    event(f"{response.status_code} {answer['Code']}")
    assert response.status_code != 200, answer  # nothing unsigned is answered


_SKEWS = mostly(st.just(0), st.sampled_from((-3600, 3600, 10**6))).map(
    lambda seconds: timedelta(seconds=seconds)
)


@fuzz_settings(300)
@given(
    method=st.sampled_from(("GET", "POST")),
    business=cams_business_params(),
    in_body=st.booleans(),
    skew=_SKEWS,
    key=mostly(
        st.just((DEMO.access_key_id, DEMO.access_key_secret)),
        st.sampled_from(
            (
                (DEMO.other_access_key_id, DEMO.other_access_key_secret),
                (DEMO.access_key_id, "wrong secret"),
            )
        ),
    ),
)
@example(
    method="POST",
    business={"NodeType": "phone", "PhoneNumber": LONG_PHONE, "CustSpaceId": DEMO.space},
    in_body=True,
    skew=timedelta(0),
    key=(DEMO.access_key_id, DEMO.access_key_secret),
)
@example(
    method="GET",
    business={"NodeType": "waba", "WabaId": "1" * 3000, "CustSpaceId": "\x00" * 50},
    in_body=False,
    skew=timedelta(0),
    key=(DEMO.access_key_id, DEMO.access_key_secret),
)
@example(
    method="POST",
    business={
        "NodeType": "template",
        "TemplateCode": "\x00order_update\ud7ff" * 500,
        "Language": "e" * 5000,
        "CustSpaceId": DEMO.space,
    },
    in_body=True,
    skew=timedelta(0),
    key=(DEMO.access_key_id, DEMO.access_key_secret),
)
async def test_cams_validly_signed_with_random_parameters(
    fuzzed: Fuzzed,
    method: str,
    business: dict[str, str],
    in_body: bool,
    skew: timedelta,
    key: tuple[str, str],
) -> None:
    params = signed_v1(method, business, key_id=key[0], secret=key[1], now=datetime.now(UTC) + skew)
    if in_body and method == "POST":
        response = await send(fuzzed.client, "POST", "/", [FORM], encode(params).encode())
    else:
        response = await send(fuzzed.client, method, "/?" + encode(params))

    answer = cams_answer(response)
    event(f"{response.status_code} {answer['Code']}")
    if response.status_code == 200:
        assert answer["Data"]["Entities"], answer


# --- 360dialog at /health_status -------------------------------------------------------------


@fuzz_settings(200)
@given(
    method=METHODS,
    query=raw_query(("phone_number", "api_key")),
    header_list=headers(("d360-api-key", header_values(DEMO.d360_key, "", "k" * 5000))),
)
@example(method="GET", query="%00=%ff", header_list=[(b"d360-api-key", b"k" * 30_000)])
async def test_d360(
    fuzzed: Fuzzed, method: str, query: str, header_list: list[tuple[bytes, bytes]]
) -> None:
    response = await send(fuzzed.client, method, "/health_status?" + query, header_list)

    d360_answer(response)
    event(str(response.status_code))


# --- Graph at /vN.M/<node> -------------------------------------------------------------------

_VERSIONS = mostly(
    st.sampled_from(("21.0", "19.0")),
    st.sampled_from(("1.0", "21", "21.0.1", "", *BAD_ESCAPES)) | digits,
)
_NODES = mostly(st.sampled_from(KNOWN_NODES), url_component() | digits)
_TOKENS = header_values(
    f"Bearer {DEMO.graph_token}", f"OAuth {DEMO.graph_token}", f"Bearer {DEMO.other_graph_token}"
)


@fuzz_settings(400)
@given(
    method=mostly(st.just("GET"), st.sampled_from(("HEAD", "POST", "DELETE"))),
    version=_VERSIONS,
    node=_NODES,
    rest=mostly(st.just(""), st.sampled_from(("/phone_numbers", "/", "/%ff"))),
    query=mostly(
        st.sampled_from(
            ("fields=health_status", f"fields=health_status&access_token={DEMO.graph_token}")
        ),
        raw_query(("fields", "access_token"), "health_status", DEMO.graph_token),
    ),
    header_list=headers(("authorization", _TOKENS), ("authorization", _TOKENS)),
)
@example(
    method="GET",
    version="21.0",
    node=LONG_NODE_ID,
    rest="",
    query="fields=health_status",
    header_list=[(b"authorization", f"Bearer {DEMO.graph_token}".encode())],
)
@example(
    method="GET",
    version="21.0",
    node="%00%ff%fe",
    rest="",
    query="fields=health_status%00&access_token=%ff",
    header_list=[],
)
async def test_graph(
    fuzzed: Fuzzed,
    method: str,
    version: str,
    node: str,
    rest: str,
    query: str,
    header_list: list[tuple[bytes, bytes]],
) -> None:
    response = await send(fuzzed.client, method, f"/v{version}/{node}{rest}?{query}", header_list)

    if method == "HEAD":
        assert response.status_code < 500
        assert response.content == b""
        return
    body = graph_answer(response)
    event(f"{response.status_code} {body.get('error', {}).get('code')}")


@fuzz_settings(150)
@given(path=st.lists(url_component(), min_size=1, max_size=4), method=METHODS)
@example(path=["%ff", "%00"], method="GET")
async def test_any_other_path(fuzzed: Fuzzed, path: list[str], method: str) -> None:
    """Paths no dialect or page owns: a JSON error, never a 5xx."""
    target = "/" + "/".join(path)
    response = await send(fuzzed.client, method, target)

    no_python_on_the_wire(response)
    media_type = response.headers.get("content-type", "")
    assert media_type.startswith(("application/json", "text/html", "text/plain")), media_type
