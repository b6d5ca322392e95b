"""The BSP clients on their own: each upstream's errors and limits, as the core sees them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.core.ports import (
    Decision,
    UpstreamAuthFailure,
    UpstreamFailure,
    UpstreamNotFound,
    UpstreamThrottled,
)
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.bsp.cams import CamsClient
from wahealth.upstream.bsp.config import CamsAccount, D360Channel
from wahealth.upstream.bsp.d360 import D360Client
from wahealth.upstream.bsp.holds import Holds

KEY = "d360-very-secret-key"
HEALTHY = {
    "health_status": {
        "can_send_message": "AVAILABLE",
        "entities": [
            {"entity_type": "PHONE_NUMBER", "id": "111", "can_send_message": "AVAILABLE"},
            {"entity_type": "WABA", "id": "222", "can_send_message": "AVAILABLE"},
        ],
    },
    "id": "111",
}


class Answers:
    """A 360dialog stand-in answering what it is told, counting requests."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body, headers=self.headers)


async def _ask(answers: Answers) -> D360Client:
    return D360Client(transport=httpx.MockTransport(answers), holds=Holds())


CHANNEL = D360Channel(api_key=KEY, base_url="http://d360.test")


async def test_a_channel_answer_is_a_report_of_the_phone_number_id_it_names() -> None:
    answers = Answers(200, orjson.dumps(HEALTHY))
    client = await _ask(answers)
    report = await client.health(CHANNEL)
    await client.aclose()
    assert (report.node_id, report.entity("WABA").id) == ("111", "222")  # type: ignore[union-attr]
    [request] = answers.requests
    assert (str(request.url), request.headers["d360-api-key"]) == (
        "http://d360.test/health_status",
        KEY,
    )


@pytest.mark.parametrize(
    ("status", "kind", "held"),
    [(429, UpstreamThrottled, True), (503, UpstreamFailure, True)],
)
async def test_429_and_503_hold_the_channel_for_retry_after(
    status: int, kind: type[Exception], held: bool
) -> None:
    answers = Answers(status, b'{"meta": {}}', {"Retry-After": "7"})
    client = await _ask(answers)
    with pytest.raises(kind) as first:
        await client.health(CHANNEL)
    assert first.value.retry_after == 7  # type: ignore[attr-defined]
    with pytest.raises(UpstreamThrottled) as second:
        await client.health(CHANNEL)
    await client.aclose()
    assert 0 < (second.value.retry_after or 0) <= 7
    assert len(answers.requests) == 1  # the held channel was not asked again
    assert KEY not in str(first.value) + str(second.value) + repr(CHANNEL)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, b'{"meta": {}}', UpstreamAuthFailure),
        (403, b'{"meta": {}}', UpstreamAuthFailure),
        (404, b'{"meta": {}}', UpstreamNotFound),
        (500, b"oops", UpstreamFailure),
        (200, b"not json", UpstreamFailure),
        (200, b'{"health_status": {"entities": []}}', UpstreamFailure),
        (200, b'{"health_status": 3, "id": "1"}', UpstreamFailure),
    ],
)
async def test_other_answers_are_the_cores_failures(
    status: int, body: bytes, kind: type[Exception]
) -> None:
    client = await _ask(Answers(status, body))
    with pytest.raises(kind):
        await client.health(CHANNEL)
    await client.aclose()


# --- CAMS --------------------------------------------------------------------------------


class CamsStub:
    """Answers the SDK's POST / with what it is told (no signature check), counting calls."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {}
        self.headers: dict[str, str] = {}
        self.calls = 0

    async def answer(self, request: Request) -> Response:
        self.calls += 1
        return Response(
            orjson.dumps(self.body), self.status, self.headers, media_type="application/json"
        )


@pytest.fixture
def stub() -> Iterator[tuple[CamsStub, RunningServer]]:
    cams = CamsStub()
    with serve_in_thread(Starlette(routes=[Route("/", cams.answer, methods=["POST"])])) as s:
        yield cams, s


def _account(server: RunningServer) -> CamsAccount:
    return CamsAccount(
        access_key_id="LTAI-test",
        access_key_secret="cams-very-secret",
        cust_space_id="space-1",
        endpoint=f"{server.host}:{server.port}",
        protocol="http",
    )


class Limiter:
    """A limiter that says no `deny` times, then yes; remembers what it was asked."""

    def __init__(self, deny: int) -> None:
        self.deny = deny
        self.asked: list[tuple[str, int]] = []

    async def acquire(self, key: str, limit: int, cost: int = 1) -> Decision:
        self.asked.append((key, limit))
        if self.deny > 0:
            self.deny -= 1
            return Decision(False, 0.25)
        return Decision(True)

    async def aclose(self) -> None:
        return None


async def test_each_cams_call_waits_for_one_of_the_accounts_five_per_second(
    stub: tuple[CamsStub, RunningServer],
) -> None:
    cams, server = stub
    cams.body = {"RequestId": "R", "Code": "OK", "Success": True, "Data": {"Entities": []}}
    limiter = Limiter(deny=2)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = CamsClient(_account(server), limiter=limiter, holds=Holds(), sleep=sleep)
    body = await client.health_status(node_type="phone", phone_number="8613800000001")
    assert body.code == "OK"
    key = f"bsp:cams:{server.host}:{server.port}:LTAI-test"
    assert limiter.asked == [(key, 5)] * 3
    assert slept == [0.25, 0.25]
    assert cams.calls == 1


async def test_the_cams_limit_holds_with_the_real_limiter(
    stub: tuple[CamsStub, RunningServer],
) -> None:
    cams, server = stub
    cams.body = {"RequestId": "R", "Code": "OK", "Success": True, "Data": {"Entities": []}}
    now = [0.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = CamsClient(_account(server), limiter=limiter, holds=Holds(), sleep=sleep)
    for _ in range(6):
        await client.health_status(node_type="phone", phone_number="8613800000001")
    assert cams.calls == 6
    assert len(slept) >= 1
    assert now[0] >= 1.0


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (
            400,
            {"Code": "Throttling.User", "Message": "flow"},
            {"x-acs-retry-after": "2000"},
            UpstreamThrottled,
        ),
        (200, {"Code": "Throttling.User", "Success": False}, {}, UpstreamThrottled),
        (403, {"Code": "Forbidden.NoPermission", "Message": "no"}, {}, UpstreamAuthFailure),
        (404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "no"}, {}, UpstreamAuthFailure),
        (404, {"Code": "NotExists.PhoneNumber", "Message": "no"}, {}, UpstreamNotFound),
        (503, {"Code": "ServiceUnavailable", "Message": "down"}, {}, UpstreamFailure),
        (200, {"Code": "OK", "Success": True}, {}, UpstreamFailure),
    ],
)
async def test_cams_answers_are_the_cores_failures(
    stub: tuple[CamsStub, RunningServer],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    kind: type[Exception],
) -> None:
    cams, server = stub
    cams.status, cams.body, cams.headers = status, body, headers
    client = CamsClient(_account(server), limiter=MemoryRateLimiter(), holds=Holds())
    with pytest.raises(kind) as info:
        await client.health_status(node_type="phone", phone_number="8613800000001")
    assert "cams-very-secret" not in str(info.value)
    if kind is UpstreamThrottled:
        # Held: the next call is refused here, without asking Alibaba.
        with pytest.raises(UpstreamThrottled):
            await client.health_status(node_type="phone", phone_number="8613800000001")
        assert cams.calls == 1
        if headers:
            assert info.value.retry_after == 2.0  # type: ignore[attr-defined]


async def test_cams_unreachable_is_a_failure() -> None:
    with serve_in_thread(Starlette()) as server:
        account = _account(server)
    client = CamsClient(account, limiter=MemoryRateLimiter(), holds=Holds(), timeout_seconds=2)
    with pytest.raises(UpstreamFailure):
        await client.health_status(node_type="phone", phone_number="8613800000001")
