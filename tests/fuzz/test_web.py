"""Fuzzed requests to the other HTTP surfaces: Meta webhooks, the history API, the dashboard.

Webhooks are fuzzed with random bodies and signatures, and validly signed (the
app secret is the test's) with random JSON, so bodies get past the signature check
to the parser and the refreshes they trigger.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from tests.fuzz._strategies import (
    BAD_ESCAPES,
    DEEP_ARRAY,
    DEEP_OBJECT,
    HUGE_INT,
    KNOWN_NODES,
    digits,
    header_values,
    headers,
    json_values,
    mostly,
    raw_query,
    text,
    url_component,
)
from tests.fuzz._wire import html_page, json_error_or, no_python_on_the_wire
from tests.fuzz.conftest import APP_SECRET, VERIFY_TOKEN, Fuzzed, fuzz_settings
from tests.fuzz.test_dialects import send

from wahealth.testing import DEMO
from wahealth.web.meta_webhooks import expected_signature

WEBHOOK_FIELDS = (
    "account_update",
    "business_capability_update",
    "phone_number_quality_update",
    "message_template_status_update",
    "message_template_quality_update",
)

# --- /webhooks/meta --------------------------------------------------------------------------


@fuzz_settings(150)
@given(
    query=mostly(
        st.tuples(
            mostly(st.just("subscribe"), st.sampled_from(("unsubscribe", "", "%00"))),
            mostly(st.just(VERIFY_TOKEN), text.map(quote)),
            mostly(text.filter(bool).map(quote), url_component()),
        ).map(lambda t: f"hub.mode={t[0]}&hub.verify_token={t[1]}&hub.challenge={t[2]}"),
        raw_query(("hub.mode", "hub.verify_token", "hub.challenge"), "subscribe", VERIFY_TOKEN),
    )
)
@example(query=f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%00%ff%fe")
@example(query=f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=" + "9" * 30_000)
async def test_webhook_handshake(fuzzed: Fuzzed, query: str) -> None:
    response = await send(fuzzed.client, "GET", "/webhooks/meta?" + query)

    no_python_on_the_wire(response)
    event(str(response.status_code))
    assert response.status_code in (200, 403), response.content[:200]
    assert response.headers["content-type"].startswith("text/plain")
    if response.status_code == 403:
        assert response.text == "verification failed"


def _entry() -> st.SearchStrategy[dict[str, object]]:
    value = st.fixed_dictionaries(
        {},
        optional={
            "display_phone_number": st.sampled_from(("+86 138 0000 0001", "86138")) | text,
            "message_template_id": st.sampled_from(KNOWN_NODES) | digits | json_values,
            "event": st.sampled_from(("FLAGGED", "PAUSED")) | text,
        },
    )
    change = st.fixed_dictionaries(
        {"field": mostly(st.sampled_from(WEBHOOK_FIELDS), text), "value": value | json_values}
    )
    return st.fixed_dictionaries(
        {
            "id": mostly(st.sampled_from(KNOWN_NODES), digits | json_values),
            "changes": st.lists(change, max_size=3) | json_values,
        },
        optional={"time": st.integers() | json_values},
    )


_NOTIFICATIONS = mostly(
    st.fixed_dictionaries(
        {
            "object": mostly(st.just("whatsapp_business_account"), text),
            "entry": st.lists(_entry(), max_size=3) | json_values,
        }
    ),
    json_values,
)


@fuzz_settings(200)
@given(document=_NOTIFICATIONS.map(lambda d: json.dumps(d).encode()))
@example(document=DEEP_ARRAY)
@example(document=DEEP_OBJECT)
@example(document=b'{"object": "whatsapp_business_account", "entry": %s}' % HUGE_INT.encode())
@example(document=b'{"object": "whatsapp_business_account\\u0000", "entry": [{"id": "\\u0000"}]}')
@example(document=b'{"object": "\xff\xfe"}')
async def test_webhook_validly_signed(fuzzed: Fuzzed, document: bytes) -> None:
    signature = expected_signature(APP_SECRET, document).encode()
    response = await send(
        fuzzed.client,
        "POST",
        "/webhooks/meta",
        [(b"x-hub-signature-256", signature), (b"content-type", b"application/json")],
        document,
    )

    no_python_on_the_wire(response)
    event(str(response.status_code))
    if response.status_code == 200:
        assert response.text == "EVENT_RECEIVED"
    else:
        assert response.status_code == 400, response.content[:200]
        json_error_or(response)


@fuzz_settings(150)
@given(
    body=st.binary(max_size=300) | json_values.map(lambda d: json.dumps(d).encode()),
    header_list=headers(
        ("x-hub-signature-256", header_values("sha256=" + "0" * 64, "sha256=", "")),
        ("content-type", header_values("application/json")),
    ),
)
@example(body=DEEP_ARRAY, header_list=[(b"x-hub-signature-256", b"sha256=" + b"f" * 64)])
async def test_webhook_forged(
    fuzzed: Fuzzed, body: bytes, header_list: list[tuple[bytes, bytes]]
) -> None:
    response = await send(fuzzed.client, "POST", "/webhooks/meta", header_list, body)

    json_error_or(response)
    assert response.status_code in (401, 403), response.content[:200]


# --- /api/v1/nodes/{id}/history --------------------------------------------------------------

_BEARER = f"Bearer {DEMO.graph_token}"
# Integers are kept under Python's 4,300-digit int() limit here; past it, see the test below.
_INTS = (
    st.sampled_from(("", "0", "1", "50", "200", "201", "-1", "1e3", "%D9%A3", "%00", "%ff"))
    | digits
)


@fuzz_settings(200)
@given(
    node=mostly(st.sampled_from(KNOWN_NODES), (url_component() | digits).filter(bool)),
    query=mostly(
        st.tuples(st.sampled_from(("limit", "before")), _INTS).map("=".join),
        raw_query(("limit", "before"), "1", "50"),
    ),
    header_list=headers(
        ("authorization", header_values(_BEARER, f"Bearer {DEMO.other_graph_token}"))
    ),
)
@example(node="1" * 30_000, query="limit=1", header_list=[(b"authorization", _BEARER.encode())])
@example(node="%00%ff", query="before=%00", header_list=[(b"authorization", _BEARER.encode())])
async def test_history(
    fuzzed: Fuzzed, node: str, query: str, header_list: list[tuple[bytes, bytes]]
) -> None:
    response = await send(
        fuzzed.client, "GET", f"/api/v1/nodes/{node}/history?{query}", header_list
    )

    body = json_error_or(response, {"node_id", "acknowledgement", "data", "next"})
    event(str(response.status_code))
    if response.status_code == 200:
        assert isinstance(body["data"], list)


@pytest.mark.parametrize("name", ["limit", "before"])
async def test_history_integer_past_python_int_limit_is_a_400(fuzzed: Fuzzed, name: str) -> None:
    response = await send(
        fuzzed.client,
        "GET",
        f"/api/v1/nodes/{KNOWN_NODES[0]}/history?{name}={HUGE_INT}",
        [(b"authorization", _BEARER.encode())],
    )

    assert response.status_code == 400, response.content[:200]
    json_error_or(response)


# --- /dashboard ------------------------------------------------------------------------------

_TOKEN_VALUES = mostly(
    st.sampled_from((DEMO.graph_token, DEMO.other_graph_token)), text.map(quote) | url_component()
)
_PAGE_PARAMETERS = ("status", "kind", "space", "q", "sort", "dir", "page", "per", "state", "before")
_PAGE_VALUES = (
    "BLOCKED",
    "UNKNOWN",
    "phone",
    "demo-space",
    "other-space",
    "age",
    "desc",
    "2",
    "25",
)


async def _login_form(fuzzed: Fuzzed) -> str:
    """A fresh sign-in form's token (its cookie is now in the client's jar)."""
    fuzzed.client.cookies.clear()
    form = html_page(await fuzzed.client.get("/dashboard/login"))
    return form.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def _session_cookie(fuzzed: Fuzzed, token: str) -> str:
    csrf = await _login_form(fuzzed)
    answer = await fuzzed.client.post("/dashboard/login", data={"token": token, "csrf": csrf})
    assert answer.status_code == 303
    cookie = fuzzed.client.cookies["wahealth_session"]
    fuzzed.client.cookies.clear()
    return cookie


@fuzz_settings(150)
@given(
    path=mostly(
        st.sampled_from(("/dashboard", "/dashboard/alerts", f"/dashboard/nodes/{KNOWN_NODES[0]}")),
        url_component().map(lambda c: "/dashboard/nodes/" + c),
    ),
    query=raw_query(_PAGE_PARAMETERS, *_PAGE_VALUES),
    token=st.sampled_from((DEMO.graph_token, DEMO.other_graph_token, None)),
    header_list=headers(("accept-language", header_values("id-ID,id;q=0.9", "zh-TW, *"))),
)
@example(
    path="/dashboard", query="q=%00%ff&page=99999999999", token=DEMO.graph_token, header_list=[]
)
async def test_dashboard_pages(
    fuzzed: Fuzzed,
    path: str,
    query: str,
    token: str | None,
    header_list: list[tuple[bytes, bytes]],
) -> None:
    cookies = []
    if token is not None:
        cookies = [
            (b"cookie", b"wahealth_session=" + (await _session_cookie(fuzzed, token)).encode())
        ]
    response = await send(fuzzed.client, "GET", f"{path}?{query}", header_list + cookies)

    event(str(response.status_code))
    no_python_on_the_wire(response)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/dashboard/login")
    elif response.headers["content-type"].startswith("application/json"):
        assert response.status_code == 404  # a path no page owns (an id with a "/" in it)
    else:
        html_page(response)
        assert response.status_code in (200, 400, 404)


@fuzz_settings(150)
@given(
    body=mostly(
        _TOKEN_VALUES.map(lambda t: ("token=" + t).encode()),
        st.binary(max_size=300)
        | raw_query(("token", "next"), DEMO.graph_token, "/dashboard/alerts").map(str.encode)
        | st.sampled_from([b"token=" + e.encode() for e in BAD_ESCAPES]),
    ),
    with_form_token=mostly(st.just(True), st.just(False)),
    content_type=st.sampled_from(
        (b"application/x-www-form-urlencoded", b"multipart/form-data", b"text/plain; charset=\xff")
    ),
)
@example(body=b"token=" + b"x" * 9000, with_form_token=True, content_type=b"text/plain")
@example(body=b"token=%00%ff\x00\xff", with_form_token=True, content_type=b"text/plain")
async def test_dashboard_login(
    fuzzed: Fuzzed, body: bytes, with_form_token: bool, content_type: bytes
) -> None:
    csrf = await _login_form(fuzzed)
    if with_form_token:
        body = b"csrf=" + csrf.encode() + b"&" + body
    response = await send(
        fuzzed.client, "POST", "/dashboard/login", [(b"content-type", content_type)], body
    )

    event(str(response.status_code))
    if response.status_code == 303:
        no_python_on_the_wire(response)
        assert response.headers["location"].startswith("/dashboard")
        assert "httponly" in response.headers["set-cookie"].lower()
    else:
        html_page(response)
        assert response.status_code in (400, 401, 403)
        assert "wahealth_session" not in response.headers.get("set-cookie", "")
