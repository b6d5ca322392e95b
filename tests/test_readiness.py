"""`/readyz`: ready when storage and Redis answer, whatever Meta does; `/healthz` is liveness."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from tests._redis import REFUSING_URL, fake_redis

from wahealth.app import create_app
from wahealth.readiness import Readiness
from wahealth.testing import DEMO, demo_settings, running_app

GRAPH_QUERY = "/v21.0/102290129340398?fields=health_status"


async def test_ready_on_sqlite_without_redis(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        ready = await running.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"storage": "ok"}}
        assert (await running.client.get("/healthz")).json() == {"status": "ok"}


async def test_ready_with_redis_probes_it(tmp_path: Path, redis_url: str) -> None:
    settings = demo_settings(tmp_path, cache={"url": redis_url}, ratelimit={"url": redis_url})
    async with running_app(settings) as running:
        ready = await running.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"storage": "ok", "redis": "ok"}}


async def test_redis_down_is_unready_and_named_without_its_url(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path, ratelimit={"url": REFUSING_URL})) as running:
        unready = await running.client.get("/readyz")
        assert unready.status_code == 503
        body = unready.json()
        assert body["status"] == "unready"
        assert body["failed"] == ["redis"]
        assert body["checks"]["storage"] == "ok"
        assert body["checks"]["redis"].startswith("error: ")
        assert "hunter2" not in unready.text
        # Liveness is not readiness: the process serves.
        assert (await running.client.get("/healthz")).status_code == 200


async def test_two_redis_urls_are_probed_each_by_role(tmp_path: Path, redis_url: str) -> None:
    settings = demo_settings(tmp_path, cache={"url": redis_url}, ratelimit={"url": REFUSING_URL})
    async with running_app(settings) as running:
        unready = await running.client.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["failed"] == ["redis (ratelimit)"]
        assert unready.json()["checks"]["redis (cache)"] == "ok"


async def test_a_silent_redis_times_out_within_the_bound(tmp_path: Path) -> None:
    async with fake_redis(None) as silent:  # accepts, never answers
        settings = demo_settings(
            tmp_path, cache={"url": silent}, server={"ready_timeout_seconds": 0.2}
        )
        async with running_app(settings) as running:
            unready = await asyncio.wait_for(running.client.get("/readyz"), timeout=5)
            assert unready.status_code == 503
            assert unready.json()["checks"]["redis"] == "timeout"


async def test_meta_down_stays_ready_and_answers(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path, upstream={"max_attempts": 1})) as running:
        client = running.client
        headers = {"Authorization": f"Bearer {DEMO.graph_token}"}
        assert (await client.get(GRAPH_QUERY, headers=headers)).status_code == 200
        fault = {"status": 500, "code": 1, "count": 1000}
        assert (
            await client.post("/_emulator/faults", content=json.dumps(fault))
        ).status_code == 201
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        # The emulator saw no call from /readyz: Meta is not probed.
        calls = (await client.get("/_emulator/calls")).json()["total"]
        await client.get("/readyz")
        assert (await client.get("/_emulator/calls")).json()["total"] == calls


async def test_stop_marker_makes_it_unready_but_alive(tmp_path: Path) -> None:
    marker = tmp_path / "stopping"
    app = create_app(demo_settings(tmp_path), stop_marker=marker)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/readyz")).status_code == 200
            marker.touch()
            stopping = await client.get("/readyz")
            assert (stopping.status_code, stopping.json()) == (503, {"status": "stopping"})
            assert (await client.get("/healthz")).status_code == 200


async def test_not_started_is_starting_on_both() -> None:

    readiness = Readiness({}, timeout_seconds=1)
    app = Starlette(routes=readiness.routes())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/healthz", "/readyz"):
            answer = await client.get(path)
            assert (answer.status_code, answer.json()) == (503, {"status": "starting"})


@pytest.mark.parametrize("outcome", ["timeout", "error: OSError"])
async def test_a_failing_probe_is_reported_by_name(outcome: str) -> None:
    async def probe() -> None:
        if outcome == "timeout":
            await asyncio.sleep(10)
        raise OSError("disk gone")

    readiness = Readiness({"storage": probe}, timeout_seconds=0.05)
    assert await readiness.checks() == {"storage": outcome}
