"""The fuzz suite's app, its Hypothesis profile, and the health check after every test.

One app per test function serves all of that test's examples, as one server serves
many clients: state left by one example (cached reports, nonces, queued faults) is
what the next one meets. After the test the same app must still answer a known-good
request of each dialect correctly.

Examples per test scale with `WAHEALTH_FUZZ_SCALE` (default 1; CI keeps the default,
a local soak might use 20).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings
from tests.gateway._wire import PHONE_OK

from wahealth.app import Components
from wahealth.testing import DEMO, demo_settings, running_app

VERIFY_TOKEN = "fuzz-verify-token"
APP_SECRET = "fuzz-app-secret"
UNTHROTTLED_QPS = 1_000_000

settings.register_profile(
    "wahealth-fuzz",
    deadline=None,
    max_examples=100,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[
        # One app per test is the point: it serves every example, as a server would.
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
_SCALE = float(os.environ.get("WAHEALTH_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int) -> settings:
    """The suite's profile with this test's number of examples (times WAHEALTH_FUZZ_SCALE)."""
    return settings(
        settings.get_profile("wahealth-fuzz"), max_examples=max(1, int(max_examples * _SCALE))
    )


@dataclass
class Fuzzed:
    """The app under fuzz: an HTTP client that sees 500s as responses, and its services."""

    client: httpx.AsyncClient
    components: Components


async def assert_healthy(client: httpx.AsyncClient) -> None:
    """The known-good requests: liveness, and a correct answer in each dialect."""
    alive = await client.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    graph = await client.get(
        f"/v21.0/{PHONE_OK}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )
    assert graph.status_code == 200, graph.content[:300]
    assert graph.json()["id"] == PHONE_OK
    assert graph.json()["health_status"]["entities"][0]["id"] == PHONE_OK
    d360 = await client.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
    assert d360.status_code == 200, d360.content[:300]
    assert d360.json()["id"] == DEMO.d360_phone_number_id


@pytest.fixture
async def fuzzed(tmp_path: Path) -> AsyncIterator[Fuzzed]:
    settings_ = demo_settings(
        tmp_path, meta_webhooks={"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET}
    )
    for account in settings_.accounts:
        account.qps = UNTHROTTLED_QPS
    async with running_app(settings_) as running:
        # raise_app_exceptions=False: an unhandled error is a 500 on the wire, as a client sees.
        transport = httpx.ASGITransport(app=running.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://wahealth.test"
        ) as client:
            fuzzed = Fuzzed(client, running.components)
            yield fuzzed
            await client.delete("/_emulator/faults")
            await running.components.monitor.webhooks.drain()
            await assert_healthy(client)
