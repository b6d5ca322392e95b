"""The emulator's admin API refuses oversized, deep, malformed and odd bodies with 413/400."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.upstream.conftest import AUTH

PHONE = "/v21.0/106540352242922?fields=health_status"
DEEP_LIST = b"[" * 1100 + b"]" * 1100
DEEP_OBJECT = b'{"a":' * 1100 + b"1" + b"}" * 1100
# Below every parser's own depth limit, but far beyond any admin body.
DEEPISH = b'{"can_send_message": "LIMITED", "errors": ' + b"[" * 900 + b"]" * 900 + b"}"
BAD_BODIES = {
    "1100 deep list": DEEP_LIST,
    "1100 deep object": DEEP_OBJECT,
    "900 deep inside": DEEPISH,
    "not JSON": b"can_send_message=BLOCKED",
    "not UTF-8": b'{"can_send_message": "\xff"}',
    "empty": b"",
    "a list": b"[]",
    "a string": b'"BLOCKED"',
    "null": b"null",
    "a number": b"1e400",
    "wrong types": json.dumps({"can_send_message": ["BLOCKED"], "errors": "x"}).encode(),
    "errors of numbers": json.dumps({"can_send_message": "BLOCKED", "errors": [1, 2]}).encode(),
}
ENDPOINTS = [
    ("PUT", "/_emulator/nodes/106540352242922/health"),
    ("POST", "/_emulator/faults"),
    ("POST", "/_emulator/webhooks"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_a_bad_admin_body_is_400_with_a_reason(
    http: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    response = await http.request(method, path, content=body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert "Traceback" not in response.text
    # Nothing changed: the phone is still AVAILABLE and no fault is pending.
    answer = await http.get(PHONE, headers=AUTH)
    assert answer.json()["health_status"]["can_send_message"] == "AVAILABLE"
    assert (await http.get("/_emulator/faults")).json() == {"pending": []}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_a_declared_oversized_admin_body_is_413(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    body = json.dumps({"can_send_message": "BLOCKED", "pad": "a" * 70_000}).encode()
    response = await http.request(method, path, content=body)
    assert response.status_code == 413
    assert response.json() == {"error": "the body is larger than 65536 bytes"}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_a_streamed_oversized_admin_body_is_413_before_the_end(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    sent: list[int] = []

    async def chunks() -> object:
        for _ in range(64):
            sent.append(1)
            yield b" " * 16384

    response = await http.request(method, path, content=chunks())  # type: ignore[arg-type]
    assert response.status_code == 413
    assert len(sent) < 64


async def test_a_good_admin_body_still_works(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/_emulator/nodes/106540352242922/health", json={"can_send_message": "LIMITED"}
    )
    assert response.status_code == 200
    answer = await http.get(PHONE, headers=AUTH)
    assert answer.json()["health_status"]["can_send_message"] == "LIMITED"


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT])
async def test_a_deep_json_graph_post_is_not_a_500(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post(
        "/v21.0/", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


async def test_a_deep_batch_parameter_is_a_batch_error(http: httpx.AsyncClient) -> None:
    response = await http.post("/v21.0/", data={"batch": DEEP_LIST.decode()}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "GraphBatchException"


async def test_an_oversized_graph_post_is_413(http: httpx.AsyncClient) -> None:
    response = await http.post("/v21.0/", content=b"a" * (1024 * 1024 + 1), headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 100
