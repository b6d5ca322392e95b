"""Hypothesis strategies for hostile HTTP input: raw query strings, headers, JSON, CAMS params.

Everything is built as the bytes a client could put on the wire: percent-escapes
are generated as text, so `%ff`, `%00`, `%zz` and lone `%` reach the server as written.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from tests.gateway._wire import (
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_ID,
    WABA_BLOCKED,
    WABA_OK,
)

from wahealth.testing import DEMO

KNOWN_NODES = (PHONE_OK, PHONE_LIMITED, PHONE_ON_BLOCKED_WABA, TEMPLATE_ID, WABA_OK, WABA_BLOCKED)
# Percent-escapes that decode to nothing valid: broken UTF-8, NUL, not hex, truncated.
BAD_ESCAPES = ("%ff", "%fe%ff", "%c3%28", "%e2%82", "%ed%a0%80", "%00", "%zz", "%", "%4", "%%")
_UTF8_TEXT = st.characters(codec="utf-8")

text = st.text(_UTF8_TEXT, max_size=40)
digits = st.text("0123456789", min_size=1, max_size=60)


def mostly(likely: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`likely` three times in four, `other` otherwise (one_of would give each half)."""
    return st.sampled_from((0, 1, 2, 3)).flatmap(lambda pick: other if pick == 3 else likely)


@st.composite
def url_component(draw: st.DrawFn, *special: str) -> str:
    """One query name or value, or path segment, already percent-encoded (or broken on purpose)."""
    choice = draw(st.integers(0, 4))
    if choice == 0 and special:
        return quote(draw(st.sampled_from(special)), safe="")
    if choice == 1:
        return draw(st.sampled_from(BAD_ESCAPES))
    if choice == 2:
        return draw(digits)
    if choice == 3:
        parts = draw(st.lists(st.sampled_from(BAD_ESCAPES) | text.map(quote), max_size=4))
        return "".join(parts)
    return quote(draw(text), safe="")


def raw_query(names: tuple[str, ...], *values: str) -> st.SearchStrategy[str]:
    """A query string of known and random names with hostile values, `=` and `&` as they come."""
    pair = st.tuples(
        url_component(*names), st.sampled_from(("=", "", "==")), url_component(*values)
    )
    return st.lists(pair, max_size=8).map(
        lambda pairs: "&".join(name + eq + value for name, eq, value in pairs)
    )


_HEADER_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
# Header values as bytes: visible ASCII, space, tab and obs-text (0x80-0xff), never CR, LF, NUL.
_HEADER_VALUE = st.binary(max_size=60).map(
    lambda raw: bytes(b if (b >= 0x20 and b != 0x7F) or b == 0x09 else 0x2E for b in raw).strip()
)


def headers(
    *known: tuple[str, st.SearchStrategy[bytes]],
) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Random headers plus, sometimes, each known header with its own value strategy."""
    randoms = st.lists(st.tuples(_HEADER_NAME.map(str.encode), _HEADER_VALUE), max_size=4)
    chosen = [
        mostly(st.tuples(st.just(name.encode()), values), st.none()) for name, values in known
    ]
    return st.tuples(randoms, *chosen).map(
        lambda drawn: [*drawn[0], *(h for h in drawn[1:] if h is not None)]
    )


def header_values(*good: str) -> st.SearchStrategy[bytes]:
    return mostly(st.sampled_from([g.encode() for g in good]), _HEADER_VALUE)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.sampled_from(["\x00", "\ud7ff", "AVAILABLE", "BLOCKED", PHONE_OK, "9" * 200]),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            text | st.sampled_from(["id", "entry", "changes", "value"]), children, max_size=4
        )
    ),
    max_leaves=25,
)


def nested(depth: int, kind: str = "array") -> bytes:
    """JSON nested `depth` deep: `[[[...]]]` or `{"a":{"a":...}}`."""
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"0" + b"}" * depth


DEEP_ARRAY = nested(5000)
DEEP_OBJECT = nested(5000, "object")
LONG_PHONE = "86" + "1" * 30_000  # digits only, so it still normalises to a number
LONG_NODE_ID = "1" * 30_000
HUGE_INT = "9" * 5_000  # past Python's 4,300-digit int() limit

CAMS_PARAM_NAMES = (
    "NodeType",
    "PhoneNumber",
    "TemplateCode",
    "Language",
    "WabaId",
    "CustSpaceId",
    "Action",
    "Version",
)


@st.composite
def cams_business_params(draw: st.DrawFn) -> dict[str, str]:
    """GetWhatsappHealthStatus parameters: mostly plausible for their NodeType, or random."""
    node_type = draw(mostly(st.sampled_from(("phone", "template", "waba")), text))
    plausible: dict[str, st.SearchStrategy[str]] = {
        "NodeType": st.just(node_type),
        "CustSpaceId": mostly(st.sampled_from((DEMO.space, DEMO.space, DEMO.other_space)), text),
    }
    if node_type == "phone":
        plausible["PhoneNumber"] = mostly(
            st.sampled_from(("8613800000001", "+86 138 0000 0002", "8613800000009", "86138")),
            digits | text,
        )
    elif node_type == "template":
        plausible["TemplateCode"] = mostly(st.just("order_update"), text)
        plausible["Language"] = mostly(st.sampled_from(("en", "en_US")), text)
        plausible["WabaId"] = mostly(st.just(WABA_OK), digits)
    else:
        plausible["WabaId"] = mostly(st.sampled_from((WABA_OK, WABA_BLOCKED, "1")), digits | text)
    params: dict[str, str] = {}
    for name, values in plausible.items():
        if draw(st.integers(0, 9)) > 0:  # each one left out now and then
            params[name] = draw(values)
    extra = draw(
        mostly(
            st.just({}),
            st.dictionaries(st.text(_UTF8_TEXT, min_size=1, max_size=12), text, max_size=3),
        )
    )
    for name, value in extra.items():
        params.setdefault(name, value)
    return params
