"""A refused token is its connection's health fact: recorded, alerted once, and it pauses only
that connection's refresh; a later check Meta accepts resumes it. Through the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._databases import database
from tests.connections._scenario import (
    ACME_GRAPH,
    ACME_PHONE,
    ACME_SECRET,
    ACME_TOKEN,
    ACME_WABA,
    BETA_GRAPH,
    BETA_PHONE,
    BETA_TOKEN,
    BETA_WABA,
    two_business_settings,
)
from tests.web._console import sign_in

from wahealth.testing import RunningApp, running_app
from wahealth.upstream.emulator import emulator_state

HOOK = "http://127.0.0.1:9/hook"


def _settings(tmp_path: Path, **sections: Any) -> Any:
    alerts = {
        "allow_private_targets": True,
        "subscriptions": [
            {"space": "acme-space", "url": HOOK, "secret": "acme-hook-secret"},
            {"space": "beta-space", "url": HOOK + "?beta", "secret": "beta-hook-secret"},
        ],
    }
    return two_business_settings(tmp_path, alerts=alerts, **sections)


async def _emulator(running: RunningApp, method: str, path: str, **options: Any) -> None:
    emulator = running.components.emulator
    assert emulator is not None
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as client:
        answer = await client.request(method, path, **options)
    assert answer.status_code < 300, answer.text


def _calls(running: RunningApp, node_id: str) -> int:
    emulator = running.components.emulator
    assert emulator is not None
    return emulator_state(emulator).calls.by_node[node_id]


async def _alerts(running: RunningApp, space: str) -> list[dict[str, Any]]:
    outbox = running.components.monitor.outbox
    alerts = await outbox.list_alerts(space_id=space)
    return [dict(a.payload) for a in alerts if a.event == "CONNECTION"]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


async def test_a_revoked_token_pauses_its_connection_only_until_a_check_succeeds(
    tmp_path: Path, storage_url: str
) -> None:
    async with running_app(_settings(tmp_path, storage={"url": storage_url})) as running:
        refresher = running.components.monitor.refresher
        watch = running.components.monitor.connection_watch
        assert watch is not None
        both = [ACME_PHONE, BETA_PHONE]
        first = await refresher.refresh_all(both)
        assert first.refreshed == 2
        assert not first.failed

        await _emulator(
            running, "PUT", f"/_emulator/tokens/{BETA_TOKEN}", json={"state": "revoked"}
        )
        refused = await refresher.refresh_all(both)
        beta = await running.components.connections.get("beta")
        assert refused.refreshed == 1
        assert set(refused.failed) == {BETA_PHONE}
        assert beta is not None
        assert beta.state == "refused"
        assert beta.problem is not None
        assert "(190)" in beta.problem
        assert BETA_TOKEN not in beta.problem

        beta_calls, acme_calls = _calls(running, BETA_PHONE), _calls(running, ACME_PHONE)
        paused = await refresher.refresh_all(both)
        assert paused.refreshed == 1
        assert "paused" in paused.failed[BETA_PHONE]
        assert _calls(running, BETA_PHONE) == beta_calls  # nothing sent for the paused one
        assert _calls(running, ACME_PHONE) == acme_calls + 1  # the other space carries on

        # Alerted once, to the beta space's subscription only, through the outbox.
        beta_alerts = await _alerts(running, "beta-space")
        assert [(a["event"], a["before"], a["after"]) for a in beta_alerts] == [
            ("CONNECTION", "OK", "REFUSED")
        ]
        assert beta_alerts[0]["connection"] == "beta"
        assert beta_alerts[0]["error_codes"] == ["190"]
        assert await _alerts(running, "acme-space") == []

        assert await watch.step() == []  # still revoked: no change, no second alert
        assert len(await _alerts(running, "beta-space")) == 1

        # Shown on the metrics and on each account's fleet page (only where it matters).
        metrics = (await running.client.get("/metrics")).text
        assert 'wahealth_meta_connection_refused{connection="beta"} 1.0' in metrics
        assert 'wahealth_meta_connection_refused{connection="acme"} 0.0' in metrics
        await sign_in(running.client, BETA_GRAPH)
        beta_page = (await running.client.get("/dashboard")).text
        running.client.cookies.clear()
        await sign_in(running.client, ACME_GRAPH)
        acme_page = (await running.client.get("/dashboard")).text
        assert 'data-testid="connection-trouble"' in beta_page
        assert "Meta connection <b>beta</b>: Meta refuses its token ((190)" in beta_page
        assert "refresh of beta-space is paused" in beta_page
        assert 'data-testid="connection-trouble"' not in acme_page

        await _emulator(running, "PUT", f"/_emulator/tokens/{BETA_TOKEN}", json={"state": "valid"})
        assert await watch.step() == ["beta"]
        resumed = await refresher.refresh_all(both)
        beta = await running.components.connections.get("beta")
        recovered = await _alerts(running, "beta-space")
    assert resumed.refreshed == 2
    assert not resumed.failed
    assert beta is not None
    assert beta.state == "ok"
    assert beta.problem is None
    assert [(a["before"], a["after"]) for a in recovered] == [("REFUSED", "OK"), ("OK", "REFUSED")]


async def test_a_missing_permission_is_token_trouble_too(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path)) as running:
        watch = running.components.monitor.connection_watch
        assert watch is not None
        await _emulator(
            running, "PUT", f"/_emulator/tokens/{BETA_TOKEN}", json={"state": "permission"}
        )
        await watch.check("beta")
        beta = await running.components.connections.get("beta")
        acme = await running.components.connections.get("acme")
        answer = await running.client.get(
            f"/v21.0/{ACME_PHONE}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {ACME_GRAPH}"},
        )
    assert beta is not None
    assert beta.state == "refused"
    assert beta.problem is not None
    assert "whatsapp_business_management" in beta.problem
    assert acme is not None
    assert acme.state == "ok"
    assert answer.status_code == 200


async def test_a_refused_default_token_does_not_stop_the_connections(tmp_path: Path) -> None:
    """Beta's space names no connection and uses the default token; Acme's has its own."""
    settings = _settings(
        tmp_path,
        meta_connections=[{"name": "acme", "access_token": ACME_TOKEN, "app_secret": ACME_SECRET}],
        spaces=[
            {"id": "acme-space", "account": "acme", "connection": "acme", "wabas": [ACME_WABA]},
            {"id": "beta-space", "account": "beta", "wabas": [BETA_WABA]},
        ],
    )
    upstream = settings.upstream.model_copy(update={"access_token": BETA_TOKEN})
    async with running_app(settings.model_copy(update={"upstream": upstream})) as running:
        refresher = running.components.monitor.refresher
        await _emulator(
            running, "PUT", f"/_emulator/tokens/{BETA_TOKEN}", json={"state": "expired"}
        )
        # A chunk of the default token's nodes alone: its refusal is theirs, not everyone's.
        default_only = await refresher.refresh_all([BETA_PHONE])
        acme = await refresher.refresh_all([ACME_PHONE])
        paused_until = refresher.paused_until
    assert set(default_only.failed) == {BETA_PHONE}
    assert acme.refreshed == 1
    assert paused_until == 0.0
