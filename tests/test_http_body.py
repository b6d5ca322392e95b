"""read_bounded: stops reading past the limit, from a Request or a bare ASGI receive."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message, Receive

from wahealth.http_body import BodyTooLarge, NotJson, loads_bounded, read_bounded


class Receiver:
    """An ASGI receive that hands out `chunks` and counts how many were taken."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.taken = 0

    async def __call__(self) -> Message:
        if self.taken >= len(self.chunks):
            return {"type": "http.disconnect"}
        chunk = self.chunks[self.taken]
        self.taken += 1
        return {"type": "http.request", "body": chunk, "more_body": self.taken < len(self.chunks)}


def _request(receive: Receive, headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "headers": headers or []}
    return Request(scope, receive)


@pytest.mark.parametrize("as_request", [True, False])
async def test_a_body_within_the_limit_is_read_whole(as_request: bool) -> None:
    receive = Receiver([b"ab", b"cd", b""])
    source = _request(receive) if as_request else receive
    assert await read_bounded(source, 4) == b"abcd"


@pytest.mark.parametrize("as_request", [True, False])
async def test_reading_stops_at_the_first_chunk_past_the_limit(as_request: bool) -> None:
    receive = Receiver([b"x" * 10] * 100)
    source = _request(receive) if as_request else receive
    with pytest.raises(BodyTooLarge):
        await read_bounded(source, 25)
    assert receive.taken == 3


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    receive = Receiver([b"x" * 10])
    with pytest.raises(BodyTooLarge) as info:
        await read_bounded(_request(receive, [(b"content-length", b"11")]), 10)
    assert (receive.taken, info.value.limit) == (0, 10)


async def test_a_client_gone_mid_body_gives_what_arrived() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    assert await read_bounded(_request(receive), 10) == b"ab"


@pytest.mark.parametrize(
    "raw", [b"[" * 5000 + b"]" * 5000, b"[" * 33 + b"]" * 33, b"{", b"", b"\xff", b'"\\ud800"']
)
def test_loads_bounded_refuses_what_is_not_shallow_json(raw: bytes) -> None:
    with pytest.raises(NotJson):
        loads_bounded(raw)


def test_loads_bounded_accepts_json_up_to_the_depth() -> None:
    assert loads_bounded(b"[" * 32 + b"]" * 32) is not None
    assert loads_bounded(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
