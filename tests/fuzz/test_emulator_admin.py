"""Fuzzed calls to the Meta emulator's admin API as the gateway mounts it (`/_emulator/`).

Bodies are random JSON, fault- and health-shaped dicts with random values, and raw
bytes. Whatever they queue is cleared after each example, so a fault never reaches
the known-good requests; webhook targets are never registered (the emulator would
POST to them), so no body here has a `url`.
"""

from __future__ import annotations

import json

from hypothesis import event, example, given
from hypothesis import strategies as st
from tests.fuzz._strategies import (
    HUGE_INT,
    KNOWN_NODES,
    json_values,
    mostly,
    nested,
    url_component,
)
from tests.fuzz._wire import json_error_or
from tests.fuzz.conftest import Fuzzed, fuzz_settings
from tests.fuzz.test_dialects import send

_FAULT_KEYS = ("status", "code", "latency_ms", "count", "body", "retry_after")
_HEALTH_KEYS = ("can_send_message", "errors", "additional_info", "can_receive_call_sip")
_ENDPOINTS = (
    ("PUT", "/_emulator/nodes/{node}/health"),
    ("POST", "/_emulator/faults"),
    ("GET", "/_emulator/faults"),
    ("DELETE", "/_emulator/faults"),
    ("GET", "/_emulator/calls"),
    ("DELETE", "/_emulator/calls"),
    ("GET", "/_emulator/scenario"),
    ("DELETE", "/_emulator/rate-limits"),
    ("GET", "/_emulator/webhooks"),
    ("POST", "/_emulator/webhooks"),
    ("PATCH", "/_emulator/{node}"),
)


def _shaped(keys: tuple[str, ...], values: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


_VALUES = (
    st.sampled_from((500, 429, 80007, 0, -1, 10**30, "BLOCKED", "LIMITED", [], None, 1.5, "\x00"))
    | json_values
)
_FAULTS = st.fixed_dictionaries(
    {},
    optional={
        "status": mostly(st.integers(100, 700), _VALUES),
        "code": mostly(st.sampled_from((1, 2, 4, 100, 190, 80007, 130429)), _VALUES),
        "latency_ms": mostly(st.integers(-1, 50), _VALUES),
        "count": mostly(st.integers(-1, 3), _VALUES),
        "body": mostly(st.text(max_size=20), _VALUES),
        "retry_after": mostly(st.integers(-1, 100), _VALUES),
    },
)
_ERRORS = st.fixed_dictionaries(
    {},
    optional={
        "error_code": mostly(st.sampled_from((141002, 141006)), _VALUES),
        "error_description": mostly(st.text(max_size=20), _VALUES),
        "possible_solution": mostly(st.text(max_size=20), _VALUES),
    },
)
_HEALTHS = st.fixed_dictionaries(
    {"can_send_message": mostly(st.sampled_from(("AVAILABLE", "LIMITED", "BLOCKED")), _VALUES)},
    optional={
        "errors": mostly(st.lists(_ERRORS, max_size=2), _VALUES),
        "additional_info": mostly(st.lists(st.text(max_size=20), max_size=2), _VALUES),
        "can_receive_call_sip": mostly(st.sampled_from(("AVAILABLE", None)), _VALUES),
    },
)
_BODIES = (
    st.one_of(
        _FAULTS,
        _HEALTHS,
        _shaped(_FAULT_KEYS + _HEALTH_KEYS, _VALUES),
        json_values,
    )
    .filter(lambda body: not (isinstance(body, dict) and "url" in body))
    .map(lambda body: json.dumps(body).encode())
)


@fuzz_settings(250)
@given(
    endpoint=mostly(st.sampled_from(_ENDPOINTS[:2]), st.sampled_from(_ENDPOINTS)),
    node=mostly(st.sampled_from(KNOWN_NODES), url_component().filter(bool)),
    body=mostly(_BODIES, st.binary(max_size=200)),
)
@example(endpoint=_ENDPOINTS[0], node=KNOWN_NODES[0], body=nested(50, "object"))
@example(endpoint=_ENDPOINTS[1], node="", body=b'{"count": %s, "status": 500}' % HUGE_INT.encode())
@example(endpoint=_ENDPOINTS[1], node="", body=b'{"status": 500, "body": "\\u0000\xff"}')
@example(endpoint=_ENDPOINTS[0], node="%00%ff", body=b'{"can_send_message": "BLOCKED"}')
@example(endpoint=_ENDPOINTS[0], node="1" * 30_000, body=b'{"can_send_message": "BLOCKED"}')
async def test_emulator_admin(
    fuzzed: Fuzzed, endpoint: tuple[str, str], node: str, body: bytes
) -> None:
    method, path = endpoint
    try:
        response = await send(
            fuzzed.client,
            method,
            path.format(node=node),
            [(b"content-type", b"application/json")],
            body,
        )
    finally:
        await fuzzed.client.delete("/_emulator/faults")

    json_error_or(response)
    event(f"{method} {path} {response.status_code}")
    assert response.status_code != 404 or "{node}" in path, response.content[:200]


@fuzz_settings(10)
@given(
    endpoint=st.sampled_from(_ENDPOINTS[:2] + _ENDPOINTS[9:10]),
    depth=st.integers(1_100, 6_000),
    kind=st.sampled_from(("array", "object")),
)
@example(endpoint=_ENDPOINTS[1], depth=5_000, kind="array")
@example(endpoint=_ENDPOINTS[0], depth=5_000, kind="object")
async def test_emulator_admin_deeply_nested_json_is_a_4xx(
    fuzzed: Fuzzed, endpoint: tuple[str, str], depth: int, kind: str
) -> None:
    method, path = endpoint
    response = await send(
        fuzzed.client,
        method,
        path.format(node=KNOWN_NODES[0]),
        [(b"content-type", b"application/json")],
        nested(depth, kind),
    )

    assert 400 <= response.status_code < 500, response.content[:200]
    json_error_or(response)
