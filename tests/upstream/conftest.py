"""Fixtures: the demo emulator in-process, a controllable clock, a Graph client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from wahealth.upstream.emulator import Scenario, create_emulator, load_scenario
from wahealth.upstream.graph import GraphClient

DEMO_TOKEN = "demo-meta-token"
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
BASE_URL = "http://graph.test"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    """Stands in for asyncio.sleep: records the delays, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def scenario() -> Scenario:
    return load_scenario(None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(scenario: Scenario, clock: FakeClock) -> Starlette:
    return create_emulator(scenario, clock=clock)


@pytest.fixture
async def http(emulator: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client on the emulator (no Graph client logic in between)."""
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def graph(emulator: Starlette, sleeps: SleepRecorder) -> AsyncIterator[GraphClient]:
    client = GraphClient(
        base_url=BASE_URL,
        access_token=DEMO_TOKEN,
        transport=httpx.ASGITransport(app=emulator),
        sleep=sleeps,
    )
    async with client:
        yield client
