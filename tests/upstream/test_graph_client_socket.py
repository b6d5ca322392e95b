"""The Graph client against the emulator over a real loopback socket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from tests.upstream.conftest import DEMO_TOKEN, SleepRecorder
from tests.upstream.seed_examples import BY_NODE

from wahealth.domain import HealthReport, render_health_status
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, load_scenario, synthetic_scenario
from wahealth.upstream.emulator.synthetic import synthetic_phone_number_id, synthetic_waba_id
from wahealth.upstream.errors import GraphAuthError, GraphTransientError
from wahealth.upstream.graph import GraphClient


@pytest.fixture(scope="module")
def demo_server() -> Iterator[tuple[RunningServer, Starlette]]:
    app = create_emulator(load_scenario(None))
    with serve_in_thread(app) as server:
        yield server, app


@pytest.fixture(scope="module")
def big_server() -> Iterator[RunningServer]:
    with serve_in_thread(create_emulator(synthetic_scenario(75, wabas=1))) as server:
        yield server


async def test_demo_answers_over_the_socket(demo_server: tuple[RunningServer, Starlette]) -> None:
    server, _ = demo_server
    async with GraphClient(base_url=server.base_url, access_token=DEMO_TOKEN) as client:
        for node_id, expected in BY_NODE.items():
            assert render_health_status(await client.health(node_id)) == expected
        batch = await client.batch_health(list(BY_NODE))
        assert all(isinstance(r, HealthReport) for r in batch.values())


async def test_next_links_are_absolute_urls_of_the_server(big_server: RunningServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{big_server.base_url}/v21.0/{synthetic_waba_id(0)}/phone_numbers",
            params={"limit": "10", "access_token": DEMO_TOKEN},
        )
        next_url = response.json()["paging"]["next"]
        assert next_url.startswith(
            f"{big_server.base_url}/v21.0/{synthetic_waba_id(0)}/phone_numbers?"
        )
        follow = await http.get(next_url)
    assert follow.json()["data"][0]["id"] == synthetic_phone_number_id(10)


async def test_paging_over_the_socket(big_server: RunningServer) -> None:
    client = GraphClient(base_url=big_server.base_url, access_token=DEMO_TOKEN, page_size=8)
    async with client:
        numbers = await client.phone_numbers(synthetic_waba_id(0))
    assert [n.id for n in numbers] == [synthetic_phone_number_id(j) for j in range(75)]


async def test_bad_token_over_the_socket(demo_server: tuple[RunningServer, Starlette]) -> None:
    server, _ = demo_server
    async with GraphClient(base_url=server.base_url, access_token="nope") as client:
        with pytest.raises(GraphAuthError):
            await client.health("106540352242922")


async def test_injected_latency_times_out_and_is_retried(
    demo_server: tuple[RunningServer, Starlette],
) -> None:
    server, _ = demo_server
    sleeps = SleepRecorder()
    async with httpx.AsyncClient(base_url=server.base_url) as admin:
        await admin.delete("/_emulator/calls")
        await admin.post("/_emulator/faults", json={"latency_ms": 400, "count": 1})
        client = GraphClient(
            base_url=server.base_url, access_token=DEMO_TOKEN, timeout=0.1, sleep=sleeps
        )
        async with client:
            report = await client.health("105154286024403")
        calls = (await admin.get("/_emulator/calls")).json()
    assert render_health_status(report) == BY_NODE["105154286024403"]
    assert len(sleeps.delays) == 1
    # The slow call is still counted once it is answered, after the client gave up on it.
    assert calls["by_node"]["105154286024403"] in {1, 2}


async def test_connection_refused_is_transient() -> None:
    app = create_emulator(load_scenario(None))
    with serve_in_thread(app) as server:
        base_url = server.base_url
    sleeps = SleepRecorder()
    async with GraphClient(base_url=base_url, access_token=DEMO_TOKEN, sleep=sleeps) as client:
        with pytest.raises(GraphTransientError, match="cannot reach Graph"):
            await client.health("106540352242922")
    assert len(sleeps.delays) == 2
