"""Truthful answers, end to end through the app: what a client sees after a webhook whose
refresh failed, with a scenario of its own tokens, for an unsigned CAMS call, and from
the emulator's admin API to a client that is not on this machine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.faults._matrix import STALE_MESSAGE, add_fault, cams, emulator_calls, graph
from tests.fuzz._wire import cams_answer, graph_answer
from tests.gateway._wire import PHONE_OK, WABA_OK

from wahealth.settings import Settings
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.upstream.emulator.app import emulator_state

UNTHROTTLED_QPS = 1_000_000


def _unthrottled(settings: Settings) -> Settings:
    for account in settings.accounts:
        account.qps = UNTHROTTLED_QPS
    return settings


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo app in emulator mode: its emulator posts Meta webhooks to the gateway."""
    settings = _unthrottled(demo_settings(tmp_path))
    assert settings.upstream.emulator_webhooks
    async with running_app(settings) as app:
        yield app


async def _settle(running: RunningApp) -> None:
    """Wait for the emulator's webhook POSTs, the monitor's refreshes and the observers."""
    emulator = running.components.emulator
    assert emulator is not None
    await emulator_state(emulator).webhooks.drain()
    await running.components.monitor.webhooks.drain()
    await running.components.health.drain()


async def test_a_webhook_whose_refresh_fails_leaves_the_report_stale_never_fresh(
    running: RunningApp,
) -> None:
    client = running.client
    first = await graph(client)
    assert first.status_code == 200, first.text
    assert first.headers["x-wahealth-source"] == "upstream"
    assert graph_answer(first)["health_status"]["can_send_message"] == "AVAILABLE"
    cached = await cams(client)
    assert cams_answer(cached)["Message"] == "None"

    # Meta fails from now on, then the number changes: the webhook arrives, its refresh fails.
    calls_before = await emulator_calls(client)
    await add_fault(client, status=500, count=1000)
    changed = await client.put(
        f"/_emulator/nodes/{PHONE_OK}/health",
        json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
    )
    assert changed.status_code == 200, changed.text
    await _settle(running)
    deliveries = (await client.get("/_emulator/webhooks")).json()
    assert any(d.get("status") == 200 for d in deliveries["deliveries"]), deliveries
    assert await emulator_calls(client) > calls_before, "the webhook refreshed nothing"

    # Inside the cache ttl, yet the answer is the old report marked stale, in every dialect.
    answer = await graph(client)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-wahealth-source"] == "stale"
    assert graph_answer(answer)["health_status"]["can_send_message"] == "AVAILABLE"
    signed = await cams(client)
    body = cams_answer(signed)
    assert body["Message"].startswith(STALE_MESSAGE), body["Message"]
    assert body["Data"]["CanSendMessage"] == "AVAILABLE"
    assert body["Data"]["Entities"][0]["PhoneNumber"] == "8613800000001"
    again = await graph(client)
    assert again.headers["x-wahealth-source"] == "stale"


async def test_a_webhook_whose_refresh_succeeds_answers_the_new_status(
    running: RunningApp,
) -> None:
    """The control: the same chain with Meta answering brings the change, fresh."""
    client = running.client
    assert (await graph(client)).headers["x-wahealth-source"] == "upstream"
    changed = await client.put(
        f"/_emulator/nodes/{PHONE_OK}/health",
        json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
    )
    assert changed.status_code == 200, changed.text
    await _settle(running)
    answer = await graph(client)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-wahealth-source"] in ("cache", "upstream")
    assert graph_answer(answer)["health_status"]["can_send_message"] == "BLOCKED"


# --- a scenario with its own tokens ---------------------------------------------------------

SCENARIO = f"""
tokens = ["scenario-own-token-not-the-demo-one"]

[[businesses]]
id = "506914307656634"

[[apps]]
id = "634974688087057"

[[wabas]]
id = "{WABA_OK}"
business = "506914307656634"
app = "634974688087057"

[[wabas]]
id = "299399000000001"
business = "506914307656634"
app = "634974688087057"

[[phone_numbers]]
id = "{PHONE_OK}"
waba = "{WABA_OK}"
display_phone_number = "+86 138 0000 0001"

[phone_numbers.health]
can_send_message = "LIMITED"
additional_info = ["A scenario of our own."]
"""


async def test_a_scenario_with_its_own_tokens_and_no_access_token_answers(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    settings = _unthrottled(demo_settings(tmp_path, upstream={"scenario": str(scenario)}))
    assert settings.upstream.access_token is None
    async with running_app(settings) as running:
        answer = await graph(running.client)
        assert answer.status_code == 200, answer.text
        body = graph_answer(answer)
        assert body["health_status"]["can_send_message"] == "LIMITED"
        assert body["id"] == PHONE_OK
        # The CAMS path resolves the number through the catalog synced with that token.
        signed = await cams(running.client)
        data = cams_answer(signed)["Data"]
        assert data["CanSendMessage"] == "LIMITED"


# --- an unsigned CAMS call ------------------------------------------------------------------


async def test_an_unsigned_cams_call_is_told_that_it_is_not_signed(running: RunningApp) -> None:
    answer = await running.client.post(
        "/",
        headers={
            "x-acs-action": "GetWhatsappHealthStatus",
            "x-acs-version": "2020-06-06",
            "content-type": "application/x-www-form-urlencoded",
        },
        content=(f"NodeType=phone&PhoneNumber=8613800000001&CustSpaceId={DEMO.space}").encode(),
    )
    assert answer.status_code == 400, answer.text
    body = cams_answer(answer)
    assert body["Code"] == "IncompleteSignature", body
    assert "not signed" in body["Message"], body["Message"]
    assert "MissingParameter" not in answer.text


# --- the emulator's admin API: loopback only unless opened ----------------------------------


def _remote(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://wahealth.test")


async def test_the_emulator_admin_api_is_not_there_for_a_remote_client(
    running: RunningApp,
) -> None:
    async with _remote(running.app) as remote:
        answer = await remote.get("/_emulator/calls")
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert isinstance(json.loads(answer.content)["error"], str)
        changed = await remote.put(
            f"/_emulator/nodes/{PHONE_OK}/health", json={"can_send_message": "BLOCKED"}
        )
        assert changed.status_code == 404
        # Nothing changed: the number is still AVAILABLE for everyone.
        assert (await remote.get("/healthz")).status_code == 200
    answer = await graph(running.client)
    assert graph_answer(answer)["health_status"]["can_send_message"] == "AVAILABLE"
    local = await running.client.get("/_emulator/calls")
    assert local.status_code == 200


async def test_the_emulator_admin_api_answers_a_remote_client_when_opened(
    tmp_path: Path,
) -> None:
    settings = _unthrottled(demo_settings(tmp_path, upstream={"emulator_admin_open": True}))
    async with running_app(settings) as running, _remote(running.app) as remote:
        answer = await remote.get("/_emulator/calls")
        assert answer.status_code == 200, answer.text
        assert "by_path" in answer.json()
