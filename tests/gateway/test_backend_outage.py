"""Redis down: each dialect answers its own "try again" error, or answers from Meta.

The rate limiter and the CAMS nonce store fail closed (503 with Retry-After, in each
dialect's own shape, never the app's last-resort 500); the report cache fails open (a
miss: the answer comes from Meta, which the emulator's call counter shows).
A Redis "down" is redis://127.0.0.1:1: nothing listens on port 1, so loopback refuses at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.gateway._wire import (
    PHONE_OK,
    SEED_003_AVAILABLE,
    WABA_OK,
    cams_error,
    d360_error,
    graph_error,
    no_traceback,
)

from wahealth.app import Overrides
from wahealth.domain import ReportSource
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

DEAD_REDIS = "redis://127.0.0.1:1/0"
GRAPH_PATH = f"/v21.0/{PHONE_OK}?fields=health_status"


async def _app(
    tmp_path: Path, overrides: Overrides | None = None, **sections: Any
) -> AsyncIterator[RunningApp]:
    async with running_app(demo_settings(tmp_path, **sections), overrides=overrides) as running:
        yield running


@pytest.fixture
async def dead_limiter(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo app whose rate limiter's Redis is down (the report cache is in memory)."""
    async for running in _app(tmp_path, ratelimit={"url": DEAD_REDIS}):
        yield running


@pytest.fixture
async def dead_cache(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo app whose report cache's Redis is down (the rate limiter is in memory).

    A stopped limiter clock: "a burst within one second" whatever the machine's speed.
    """
    limiter = MemoryRateLimiter(clock=lambda: 0.0)
    async for running in _app(tmp_path, Overrides(limiter=limiter), cache={"url": DEAD_REDIS}):
        yield running


async def _health_calls(client: httpx.AsyncClient, node_id: str) -> int:
    """How many health calls for `node_id` reached the Meta emulator so far."""
    response = await client.get("/_emulator/calls")
    response.raise_for_status()
    count: int = response.json()["by_path"].get(f"/{node_id}", 0)
    return count


async def _d360(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})


async def _graph(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(GRAPH_PATH, headers={"Authorization": f"Bearer {DEMO.graph_token}"})


# --- the rate limiter is down: fail closed --------------------------------------------------


async def test_d360_answers_its_own_503_when_the_limiter_is_down(
    dead_limiter: RunningApp,
) -> None:
    client = dead_limiter.client
    before = await _health_calls(client, PHONE_OK)

    response = await _d360(client)

    assert response.status_code == 503
    error = d360_error(response.content, 503)
    assert "rate limiter" in error["meta"]["developerMessage"]
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-request-id"]
    assert await _health_calls(client, PHONE_OK) == before  # nothing was spent at Meta


async def test_graph_answers_meta_code_2_when_the_limiter_is_down(
    dead_limiter: RunningApp,
) -> None:
    client = dead_limiter.client
    before = await _health_calls(client, PHONE_OK)

    response = await _graph(client)

    assert response.status_code == 503
    error = graph_error(response.content, 2)
    assert error["type"] == "OAuthException"
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-fb-trace-id"] == error["fbtrace_id"]
    assert await _health_calls(client, PHONE_OK) == before


async def test_bad_credentials_are_still_refused_as_such_when_the_limiter_is_down(
    dead_limiter: RunningApp,
) -> None:
    """Identity comes before the limit: an outage does not turn a 401 into a 503."""
    response = await dead_limiter.client.get(
        "/health_status", headers={"D360-API-KEY": "not-a-key"}
    )

    assert response.status_code == 401
    d360_error(response.content, 401)


# --- the report cache is down: answers still come from Meta ---------------------------------


async def test_d360_answers_from_meta_when_the_cache_is_down(dead_cache: RunningApp) -> None:
    client = dead_cache.client
    before = await _health_calls(client, PHONE_OK)

    answers = [await _d360(client) for _ in range(2)]

    for response in answers:
        assert response.status_code == 200, response.text
        assert response.json() == SEED_003_AVAILABLE
        assert response.headers["x-wahealth-source"] == ReportSource.UPSTREAM.value
    # Nothing could be cached, so each query was a Meta call (one each, not more).
    assert await _health_calls(client, PHONE_OK) == before + 2


async def test_graph_answers_from_meta_when_the_cache_is_down(dead_cache: RunningApp) -> None:
    client = dead_cache.client
    before = await _health_calls(client, PHONE_OK)

    response = await _graph(client)

    assert response.status_code == 200, response.text
    assert response.json() == SEED_003_AVAILABLE
    assert response.headers["x-wahealth-source"] == ReportSource.UPSTREAM.value
    assert await _health_calls(client, PHONE_OK) == before + 1


async def test_the_limit_still_holds_when_the_cache_is_down(dead_cache: RunningApp) -> None:
    statuses = [(await _d360(dead_cache.client)).status_code for _ in range(7)]

    assert statuses == [200] * 5 + [429] * 2  # the demo account's 5 requests per second


# --- CAMS over the socket, with the official SDK --------------------------------------------


@pytest.fixture(params=["ratelimit", "cache"], ids=["limiter-down", "nonce-store-down"])
def cams_outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedGateway]:
    """A served gateway with one Redis-backed section down.

    The nonce store lives at the cache's URL, so "cache" takes CAMS's replay check down.
    """
    section: str = request.param
    with serve_gateway(tmp_path, qps=UNTHROTTLED_QPS, **{section: {"url": DEAD_REDIS}}) as served:
        yield served


def test_cams_sdk_gets_service_unavailable_when_redis_is_down(
    cams_outage: ServedGateway,
) -> None:
    before = cams_outage.health_calls(WABA_OK)

    with pytest.raises(AlibabaCloudException) as info:
        cams_outage.cams().get_whatsapp_health_status(
            GetWhatsappHealthStatusRequest(
                node_type="waba", waba_id=WABA_OK, cust_space_id=DEMO.space
            )
        )

    refused = info.value
    assert (refused.code, refused.status_code) == ("ServiceUnavailable", 503)
    exchange = cams_outage.exchange(refused.request_id)
    assert exchange.status == 503
    assert exchange.response_header("retry-after") == b"1"
    assert exchange.response_header("x-acs-request-id") == refused.request_id.encode()
    body = cams_error(exchange.response_body, "ServiceUnavailable", refused.request_id)
    assert "temporary failure" in body["Message"]
    # Fail closed: neither an unlimited nor a possibly replayed request reached Meta.
    assert cams_outage.health_calls(WABA_OK) == before


def test_no_dialect_answers_a_500_when_every_redis_is_down(tmp_path: Path) -> None:
    with (
        serve_gateway(tmp_path, cache={"url": DEAD_REDIS}, ratelimit={"url": DEAD_REDIS}) as served,
        served.http() as http,
    ):
        d360 = http.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        graph = http.get(GRAPH_PATH, headers={"Authorization": f"Bearer {DEMO.graph_token}"})

    for response in (d360, graph):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        no_traceback(response.content)
        assert "internal error" not in json.dumps(response.json())
