"""Meta webhooks through the whole app: replays cost nothing, refreshes are rate-bounded per
node, and a node whose refresh was skipped is still never answered from the cache as fresh.

The emulator does not post webhooks here (`upstream.emulator_webhooks = false`); the test
plays Meta, signing each body with the configured app secret. Graph calls are counted by
the emulator (`GET /_emulator/calls`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

APP_SECRET = "replay-e2e-app-secret"
VERIFY_TOKEN = "replay-e2e-verify-token"
WABA = "102290129340398"
PHONE = "106540352242922"
PHONE_SHOWN = "+86 138 0000 0001"


def signed(document: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document, separators=(",", ":")).encode()
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def notification(field: str, value: dict[str, Any], at: int) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "time": at, "changes": [{"field": field, "value": value}]}],
    }


def quality_update(event: str, at: int) -> dict[str, Any]:
    value = {"display_phone_number": PHONE_SHOWN, "event": event, "current_limit": "TIER_1K"}
    return notification("phone_number_quality_update", value, at)


async def _app(tmp_path: Path, min_refresh_interval: float) -> AsyncIterator[RunningApp]:
    settings = demo_settings(
        tmp_path,
        meta_webhooks={
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "min_refresh_interval_seconds": min_refresh_interval,
        },
        upstream={"emulator_webhooks": False},
    )
    for account in settings.accounts:
        account.qps = 1_000_000
    async with running_app(settings) as running:
        yield running


@pytest.fixture
async def unbounded(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """Refreshes not rate-bounded per node: only replay protection can stop a repeat."""
    async for running in _app(tmp_path, 0):
        yield running


@pytest.fixture
async def bounded(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """At most one webhook refresh per node a minute (far longer than the test runs)."""
    async for running in _app(tmp_path, 60):
        yield running


async def settle(running: RunningApp) -> None:
    await running.components.monitor.webhooks.drain()
    await running.components.health.drain()


async def health_calls(client: httpx.AsyncClient) -> dict[str, int]:
    answer = await client.get("/_emulator/calls")
    assert answer.status_code == 200, answer.text
    by_path: dict[str, int] = answer.json()["by_path"]
    return by_path


async def graph_query(client: httpx.AsyncClient, node_id: str) -> httpx.Response:
    return await client.get(
        f"/v21.0/{node_id}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )


async def test_a_replayed_notification_refreshes_each_node_once(unbounded: RunningApp) -> None:
    client = unbounded.client
    catalog = unbounded.components.catalog
    numbers = [n.id for n in await catalog.phone_numbers_of_waba(WABA)]
    templates = [t.id for t in await catalog.templates_of_waba(WABA)]
    affected = {WABA, *numbers, *templates}
    assert PHONE in numbers  # the catalog was synced at start
    body, headers = signed(
        notification(
            "account_update",
            {"event": "ACCOUNT_RESTRICTION", "restriction_info": [{"restriction_type": "X"}]},
            int(time.time()),
        )
    )
    (await client.delete("/_emulator/calls")).raise_for_status()
    for _ in range(20):
        answer = await client.post("/webhooks/meta", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.text == "EVENT_RECEIVED"
        await settle(unbounded)  # each delivery's work is done before the next arrives
    calls = await health_calls(client)
    assert {path: calls.get(path, 0) for path in (f"/{node}" for node in affected)} == {
        f"/{node}": 1 for node in affected
    }
    assert sum(calls.values()) == len(affected), calls  # nothing else was called


async def test_a_bad_signature_costs_nothing(unbounded: RunningApp) -> None:
    client = unbounded.client
    body, headers = signed(quality_update("FLAGGED", int(time.time())))
    (await client.delete("/_emulator/calls")).raise_for_status()
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    answer = await client.post("/webhooks/meta", content=body, headers=forged)
    assert answer.status_code == 403
    await settle(unbounded)
    assert await health_calls(client) == {}
    # The same body, signed, is then accepted: a refused forgery does not burn its digest.
    answer = await client.post("/webhooks/meta", content=body, headers=headers)
    assert answer.status_code == 200
    await settle(unbounded)
    assert (await health_calls(client)).get(f"/{PHONE}") == 1


async def test_a_refresh_skipped_by_the_interval_still_marks_the_node_outdated(
    bounded: RunningApp,
) -> None:
    client = bounded.client
    now = int(time.time())
    (await client.delete("/_emulator/calls")).raise_for_status()
    body, headers = signed(quality_update("FLAGGED", now))
    assert (await client.post("/webhooks/meta", content=body, headers=headers)).status_code == 200
    await settle(bounded)
    assert (await health_calls(client)).get(f"/{PHONE}") == 1
    # The refreshed report is fresh in the cache: the next query is a cache hit.
    hit = await graph_query(client, PHONE)
    assert hit.status_code == 200, hit.text
    assert hit.headers["x-wahealth-source"] == "cache"
    assert (await health_calls(client)).get(f"/{PHONE}") == 1

    # A second, distinct notification for the same number inside the interval.
    body, headers = signed(quality_update("UNFLAGGED", now + 1))
    assert (await client.post("/webhooks/meta", content=body, headers=headers)).status_code == 200
    await settle(bounded)
    assert (await health_calls(client)).get(f"/{PHONE}") == 1  # no Graph call for it
    answer = await graph_query(client, PHONE)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-wahealth-source"] in ("stale", "upstream")
