"""Whatever Meta answers, the client raises GraphBadResponse (or its error), never anything else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.upstream.conftest import SleepRecorder

from wahealth.upstream.errors import GraphBadResponse, GraphRateLimited, GraphTransientError
from wahealth.upstream.graph import MAX_BODY_BYTES, GraphClient

NODE = "106540352242922"
GOOD = {
    "id": NODE,
    "health_status": {
        "can_send_message": "AVAILABLE",
        "entities": [{"entity_type": "PHONE_NUMBER", "id": NODE, "can_send_message": "AVAILABLE"}],
    },
}


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _with_extra(value: Any) -> bytes:
    return json.dumps({**GOOD, "x_extra": value}).encode()


GARBAGE: dict[str, bytes] = {
    "5000 deep list": _nested(5000).encode(),
    "1100 deep objects": _nested_objects(1100).encode(),
    # Parses at any depth limit of a parser, but a report this deep cannot be rendered.
    "300 deep inside an answer": _with_extra(json.loads(_nested(300))),
    "invalid JSON": b'{"health_status": ',
    "empty body": b"",
    "not UTF-8": b'{"id": "\xff\xfe"}',
    "lone surrogate": b'{"id": "\\ud800", "health_status": {"entities": []}}',
    "a list": b"[1, 2, 3]",
    "a string": b'"health"',
    "null": b"null",
    "no health_status": json.dumps({"id": NODE}).encode(),
    "health_status a list": json.dumps({"id": NODE, "health_status": []}).encode(),
    "entities an object": json.dumps({"id": NODE, "health_status": {"entities": {}}}).encode(),
    "entity a number": json.dumps({"id": NODE, "health_status": {"entities": [1]}}).encode(),
    "entity id a list": json.dumps(
        {"id": NODE, "health_status": {"entities": [{"entity_type": "WABA", "id": []}]}}
    ).encode(),
    "errors an object": json.dumps(
        {
            "id": NODE,
            "health_status": {
                "entities": [
                    {"entity_type": "WABA", "id": "1", "can_send_message": "OK", "errors": {"a": 1}}
                ]
            },
        }
    ).encode(),
    "error code too large": json.dumps(
        {
            "id": NODE,
            "health_status": {
                "entities": [
                    {
                        "entity_type": "WABA",
                        "id": "1",
                        "can_send_message": "BLOCKED",
                        "errors": [{"error_code": 10**30}],
                    }
                ]
            },
        }
    ).encode(),
    "huge body": json.dumps({**GOOD, "x_pad": "a" * (MAX_BODY_BYTES + 1)}).encode(),
}


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[GraphClient, list[int]]:
    calls: list[int] = []

    def counted(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return handler(request)

    client = GraphClient(
        base_url="http://graph.test",
        access_token="t",
        transport=httpx.MockTransport(counted),
        sleep=SleepRecorder(),
    )
    return client, calls


@pytest.mark.parametrize("body", GARBAGE.values(), ids=GARBAGE.keys())
async def test_a_garbage_health_answer_is_a_bad_response(body: bytes) -> None:
    client, calls = _client(lambda _: httpx.Response(200, content=body))
    async with client:
        with pytest.raises(GraphBadResponse):
            await client.health(NODE)
    assert len(calls) == 1  # not worth retrying


async def test_a_huge_body_without_a_length_is_cut_off_while_reading() -> None:
    sent: list[int] = []

    async def endless() -> Any:
        for _ in range(1024):
            sent.append(1)
            yield b" " * 65536

    client, _ = _client(lambda _: httpx.Response(200, content=endless()))
    async with client:
        with pytest.raises(GraphBadResponse, match="more than"):
            await client.health(NODE)
    assert len(sent) <= MAX_BODY_BYTES // 65536 + 2


@pytest.mark.parametrize("body", [_nested(5000).encode(), b"<html>oops</html>", b""])
async def test_garbage_on_a_server_error_is_still_a_transient_error(body: bytes) -> None:
    client, calls = _client(lambda _: httpx.Response(503, content=body))
    async with client:
        with pytest.raises(GraphTransientError):
            await client.health(NODE)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "1e400"},
        {"X-Business-Use-Case-Usage": _nested(5000)},
        {
            "X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": "'
            + "9" * 5000
            + '"}]}'
        },
        [
            (
                b"X-Business-Use-Case-Usage",
                '{"1": [{"estimated_time_to_regain_access": "²"}]}'.encode(),
            )
        ],
    ],
)
async def test_odd_throttling_headers_give_a_finite_wait_or_none(headers: Any) -> None:
    client, _ = _client(lambda _: httpx.Response(429, headers=headers))
    async with client:
        with pytest.raises(GraphRateLimited) as info:
            await client.health(NODE)
    assert info.value.retry_after is None or info.value.retry_after <= 86_400


def _batch_answer(*items: Any) -> httpx.Response:
    return httpx.Response(200, json=list(items))


def _item(body: Any, code: int = 200, headers: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "body": body}
    if headers is not None:
        item["headers"] = headers
    return item


SUB_GARBAGE: dict[str, Any] = {
    name: body.decode("utf-8", errors="replace")
    for name, body in GARBAGE.items()
    if name not in {"huge body", "not UTF-8", "lone surrogate"}
}
SUB_GARBAGE.update({"no body": None, "body a number": 5, "body an object": GOOD})


@pytest.mark.parametrize("body", SUB_GARBAGE.values(), ids=SUB_GARBAGE.keys())
async def test_a_garbage_batch_item_is_a_bad_response_for_that_node_only(body: Any) -> None:
    good = _item(json.dumps(GOOD))
    client, _ = _client(lambda _: _batch_answer(good, _item(body)))
    async with client:
        results = await client.batch_health([NODE, "2"])
    assert results[NODE].node_id == NODE  # type: ignore[union-attr]
    assert isinstance(results["2"], GraphBadResponse)


@pytest.mark.parametrize(
    "item",
    [
        {"code": True, "body": "{}"},
        {"code": "200", "body": "{}"},
        [200],
        "item",
        _item(json.dumps(GOOD), headers=[{"name": "X-Note", "value": "é"}, 5, {"name": 1}]),
        _item(_nested(2000), code=500, headers={"not": "a list"}),
    ],
)
async def test_odd_batch_items_do_not_escape(item: Any) -> None:
    client, _ = _client(lambda _: _batch_answer(item))
    async with client:
        results = await client.batch_health([NODE])
    assert set(results) == {NODE}


@pytest.mark.parametrize(
    "answer",
    [_nested(5000).encode(), b"{}", b"[]", b"not json", json.dumps([None, None]).encode()],
)
async def test_a_garbage_batch_answer_fails_every_node_in_it(answer: bytes) -> None:
    client, _ = _client(lambda _: httpx.Response(200, content=answer))
    async with client:
        results = await client.batch_health([NODE])
    assert isinstance(results[NODE], GraphBadResponse)
