"""One rate limit per account (5 requests/s) across CAMS, 360dialog and Graph, on the socket.

The limiter is the real in-memory one with a clock the tests can stop: "a burst within one
second" then means the same thing on a loaded CI machine as on a fast laptop. The steady
client test lets the clock run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ClientException,
    ThrottlingException,
)
from tests.gateway._served import ServedGateway, serve_gateway
from tests.gateway._wire import PHONE_OK, d360_error, graph_error

from wahealth.app import Overrides
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.testing import DEMO

QPS = 5


class SteerableClock:
    """A monotonic clock that runs with real time, or stands still while frozen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at: float | None = None

    def __call__(self) -> float:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.monotonic() + self._offset

    def freeze(self) -> None:
        now = self()
        with self._lock:
            self._frozen_at = now

    def run(self) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.monotonic()
            self._frozen_at = None

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds


@dataclass
class Limited:
    gateway: ServedGateway
    clock: SteerableClock


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """Every account at 5/s; no caching, so each admitted query costs one Meta call."""
    clock = SteerableClock()

    with serve_gateway(
        tmp_path_factory.mktemp("ratelimit"),
        qps=QPS,
        overrides=Overrides(limiter=MemoryRateLimiter(clock=clock)),
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        upstream={"max_attempts": 1},
    ) as gateway:
        yield Limited(gateway, clock)


@pytest.fixture
def limited(limited_server: Limited) -> Iterator[Limited]:
    """The server with every account's window empty and the clock stopped."""
    limited_server.clock.run()
    limited_server.clock.advance(10)
    limited_server.clock.freeze()
    yield limited_server
    limited_server.clock.run()


# One request per dialect, answering "admitted" or "throttled" after checking the shape.


def _cams(gateway: ServedGateway, key_id: str, secret: str, space: str) -> str:
    request = GetWhatsappHealthStatusRequest(
        node_type="phone", phone_number="8613800000001", cust_space_id=space
    )
    refused: AlibabaCloudException
    try:
        gateway.cams(key_id, secret).get_whatsapp_health_status(request)
    except (ThrottlingException, ClientException) as exc:
        refused = exc
    else:
        return "admitted"
    if isinstance(refused, ThrottlingException):
        assert (refused.code, refused.status_code) == ("Throttling.User", 400)
        assert refused.retry_after is not None
        assert 0 < refused.retry_after <= 1000
        exchange = gateway.exchange(refused.request_id)
        assert exchange.response_header("retry-after") == b"1"
        assert exchange.response_header("x-acs-retry-after") == str(refused.retry_after).encode()
        return "throttled"
    # Admitted, then refused for what it asked (the other account owns no number).
    assert refused.code.startswith("NotExists."), refused.code
    return "admitted"


def _demo_cams(gateway: ServedGateway) -> str:
    return _cams(gateway, DEMO.access_key_id, DEMO.access_key_secret, DEMO.space)


async def _d360(http: httpx.AsyncClient) -> str:
    response = await http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
    if response.status_code == 429:
        d360_error(response.content, 429)
        assert response.headers["retry-after"] == "1"
        return "throttled"
    assert response.status_code == 200, response.text
    return "admitted"


async def _graph(http: httpx.AsyncClient, token: str = DEMO.graph_token) -> str:
    response = await http.get(
        f"/v21.0/{PHONE_OK}", params={"fields": "health_status", "access_token": token}
    )
    if response.status_code == 429:
        graph_error(response.content, 4)
        assert response.headers["retry-after"] == "1"
        return "throttled"
    # 400 (code 100) is the other account, admitted but not allowed to see the node.
    assert response.status_code in (200, 400), response.text
    return "admitted"


async def test_cams_sdk_gets_throttling_exception_past_five_per_second(limited: Limited) -> None:
    outcomes = [await asyncio.to_thread(_demo_cams, limited.gateway) for _ in range(QPS + 2)]

    assert outcomes == ["admitted"] * QPS + ["throttled"] * 2


async def test_burst_across_dialects_admits_exactly_five(limited: Limited) -> None:
    gateway = limited.gateway
    async with gateway.ahttp() as http:
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(_demo_cams, gateway) for _ in range(4)),
            *(_d360(http) for _ in range(4)),
            *(_graph(http) for _ in range(4)),
        )

    assert outcomes.count("admitted") == QPS
    assert outcomes.count("throttled") == 12 - QPS


async def test_throttled_requests_never_reach_meta(limited: Limited) -> None:
    gateway = limited.gateway
    gateway.reset_emulator_calls()
    outcomes: list[str] = []
    async with gateway.ahttp() as http:
        for _ in range(4):
            outcomes.append(await asyncio.to_thread(_demo_cams, gateway))
            outcomes.append(await _d360(http))
            outcomes.append(await _graph(http))

    assert outcomes == ["admitted"] * QPS + ["throttled"] * (12 - QPS)
    # Nothing is cached here: each admitted query went to Meta once, no throttled one did.
    assert gateway.emulator_calls()["total"] == QPS
    assert gateway.health_calls(PHONE_OK) == QPS


async def test_another_account_is_not_affected_by_a_burst(limited: Limited) -> None:
    gateway = limited.gateway
    async with gateway.ahttp() as http:
        demo = [await _graph(http) for _ in range(QPS + 1)]
        other = [await _graph(http, DEMO.other_graph_token) for _ in range(QPS - 1)]
        other.append(
            await asyncio.to_thread(
                _cams,
                gateway,
                DEMO.other_access_key_id,
                DEMO.other_access_key_secret,
                DEMO.other_space,
            )
        )
        other.append(await _graph(http, DEMO.other_graph_token))
        demo.append(await _d360(http))

    assert demo == ["admitted"] * QPS + ["throttled", "throttled"]
    assert other == ["admitted"] * QPS + ["throttled"]


async def test_window_slides_with_time(limited: Limited) -> None:
    async with limited.gateway.ahttp() as http:
        first = [await _graph(http) for _ in range(QPS + 1)]
        limited.clock.advance(1.0)
        second = [await _graph(http) for _ in range(QPS + 1)]

    assert first == second == ["admitted"] * QPS + ["throttled"]


async def test_steady_client_at_ninety_percent_of_the_limit_is_never_throttled(
    limited: Limited,
) -> None:
    limited.clock.run()
    gateway = limited.gateway
    interval = 1 / (0.9 * QPS)
    outcomes: list[str] = []
    async with gateway.ahttp() as http:
        for i in range(9):  # about two seconds at 4.5 requests per second
            if i:
                await asyncio.sleep(interval)
            if i % 3 == 0:
                outcomes.append(await asyncio.to_thread(_demo_cams, gateway))
            elif i % 3 == 1:
                outcomes.append(await _d360(http))
            else:
                outcomes.append(await _graph(http))

    assert outcomes == ["admitted"] * 9
