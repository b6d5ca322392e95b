"""Quality, limits and statuses end to end, through the real app on SQLite.

A change made in the emulator reaches the catalog and the history by each road Meta
offers (its webhook, the fleet refresh, the catalog sync), and becomes an alert of its
own event, delivered signed to a receiver on 127.0.0.1, to the subscriptions that chose
that event and to no other.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wahealth.monitor.payloads import verify
from wahealth.settings import Settings
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import emulator_state
from wahealth.web.history import transition_json

from .test_end_to_end import Receiver, eventually

SECRET = "receiver-secret"
PHONE = "106540352242922"  # GREEN, TIER_1K, CONNECTED in the demo
TEMPLATE = "2632273056924580"  # PENDING, quality UNKNOWN in the demo
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}
SUBSCRIBED = {
    "/quality": ["QUALITY"],
    "/statuses": ["NUMBER_STATUS", "TEMPLATE_STATUS"],
    "/limits": ["LIMIT"],
    "/default": ["BLOCKED", "LIMITED", "RECOVERED"],
    "/any": ["ANY"],
}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, RunningServer]]:
    got = Receiver()
    with serve_in_thread(got.app()) as server:
        yield got, server


def settings_for(
    tmp_path: Path, base_url: str, *, emulator_webhooks: bool, monitor: bool = True
) -> Settings:
    return demo_settings(
        tmp_path,
        upstream={"emulator_webhooks": emulator_webhooks},
        cache={"ttl_seconds": 3600},
        monitor={"enabled": monitor, "interval_seconds": 3600, "meta_calls_per_minute": 600},
        alerts={
            "allow_private_targets": True,
            "flap_window_seconds": 0,
            "subscriptions": [
                {"space": DEMO.space, "url": f"{base_url}{path}", "secret": SECRET, "on": on}
                for path, on in SUBSCRIBED.items()
            ],
        },
        meta_webhooks={"min_refresh_interval_seconds": 0},
    )


async def patch(running: RunningApp, node_id: str, fields: dict[str, Any]) -> None:
    answer = await running.client.patch(f"/_emulator/nodes/{node_id}", json=fields)
    assert answer.status_code == 200, answer.text
    emulator = running.components.emulator
    assert emulator is not None
    await emulator_state(emulator).webhooks.drain()
    await running.components.monitor.webhooks.drain()


async def history(running: RunningApp, node_id: str) -> list[dict[str, Any]]:
    """The node's history as the API shows it."""
    answer = await running.client.get(f"/api/v1/nodes/{node_id}/history", headers=GRAPH)
    assert answer.status_code == 200
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def stored(running: RunningApp, node_id: str) -> list[dict[str, Any]]:
    """The same, read from storage (the API counts against the account's 5 requests/s)."""
    return [transition_json(t) for t in await running.components.history.history(node_id)]


def of_field(transitions: list[dict[str, Any]], field: str) -> list[tuple[Any, ...]]:
    return [(t["before"], t["after"], t["cause"]) for t in transitions if t["field"] == field]


def at(path: str) -> Any:
    """Alerts at `path` about a kept field (ANY also hears of each node's first health)."""
    return lambda alert: alert.path == path and alert.json.get("field")


async def baseline(running: RunningApp) -> None:
    async def refreshed() -> bool:
        monitor = running.components.monitor
        return all([await monitor.history.get(n) is not None for n in (PHONE, TEMPLATE)])

    await eventually(refreshed, "the first fleet refresh")


async def test_a_quality_drop_in_the_emulator_becomes_a_quality_alert(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    got, server = receiver
    settings = settings_for(tmp_path, server.base_url, emulator_webhooks=True)
    async with running_app(settings) as running:
        await baseline(running)
        calls = (await running.client.get("/_emulator/calls")).json()["total"]
        await patch(running, PHONE, {"quality_rating": "YELLOW"})
        [quality] = await got.wait_for(at("/quality"))
        [anything] = await got.wait_for(at("/any"))
        transitions = await history(running, PHONE)
        spent = (await running.client.get("/_emulator/calls")).json()["total"] - calls
        numbers = await running.components.catalog.phone_numbers_of_waba("102290129340398")
        deliveries = (await running.client.get("/_emulator/webhooks")).json()["deliveries"]

    assert [d["field"] for d in deliveries] == ["phone_number_quality_update"]
    assert spent == 1  # the webhook's one refresh asked health and the fields together
    assert {n.id: n.quality_rating for n in numbers}[PHONE] == "YELLOW"
    assert of_field(transitions, "quality_rating") == [("GREEN", "YELLOW", "webhook")]
    [transition] = [t for t in transitions if t["field"] == "quality_rating"]
    for alert in (quality, anything):
        verify(alert.headers.get("x-wahealth-signature"), alert.body, SECRET, now=time.time())
        assert alert.headers["x-wahealth-event"] == "QUALITY"
    body = quality.json
    assert body == {
        "alert_id": quality.alert_id,
        "event": "QUALITY",
        "node_id": PHONE,
        "node_kind": "PHONE_NUMBER",
        "space_id": DEMO.space,
        "field": "quality_rating",
        "before": "GREEN",
        "after": "YELLOW",
        "error_codes": [],
        "errors": [],
        "additional_info": [],
        "cause": "webhook",
        "occurred_at": transition["occurred_at"],
        "transition_id": transition["id"],
        "grouped": 1,
    }
    # Nobody else chose QUALITY; the health of the number did not change.
    assert sorted(a.path for a in got.alerts if a.json.get("field")) == ["/any", "/quality"]


async def test_a_paused_template_and_a_flagged_number_reach_the_status_subscriber(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    got, server = receiver
    settings = settings_for(tmp_path, server.base_url, emulator_webhooks=True)
    async with running_app(settings) as running:
        await baseline(running)
        await patch(running, TEMPLATE, {"status": "PAUSED"})
        await patch(running, PHONE, {"status": "FLAGGED", "messaging_limit_tier": "TIER_250"})
        statuses = await got.wait_for(at("/statuses"), count=2)
        [limit] = await got.wait_for(at("/limits"))
        await got.wait_for(at("/any"), count=3)
        template_history = await stored(running, TEMPLATE)

    events = {
        (a.json["node_id"], a.json["event"], a.json["field"], a.json["after"]) for a in statuses
    }
    assert events == {
        (TEMPLATE, "TEMPLATE_STATUS", "status", "PAUSED"),
        (PHONE, "NUMBER_STATUS", "status", "FLAGGED"),
    }
    assert (limit.json["field"], limit.json["before"], limit.json["after"]) == (
        "messaging_limit_tier",
        "TIER_1K",
        "TIER_250",
    )
    assert of_field(template_history, "status") == [("PENDING", "PAUSED", "webhook")]
    assert not [a for a in got.alerts if a.path == "/quality"]
    assert not [a for a in got.alerts if a.path == "/default" and a.json.get("field")]
    assert len([a for a in got.alerts if at("/any")(a)]) == 3


async def test_the_fleet_refresh_sees_a_change_no_webhook_told(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    got, server = receiver
    settings = settings_for(tmp_path, server.base_url, emulator_webhooks=False, monitor=False)
    async with running_app(settings) as running:
        services = running.components
        refresher = services.monitor.refresher
        await refresher.refresh_all([PHONE, TEMPLATE], cause="poll")  # the baseline
        await patch(running, PHONE, {"messaging_limit_tier": "TIER_250", "throughput": "HIGH"})
        await patch(running, TEMPLATE, {"quality_score": "RED"})
        assert of_field(await stored(running, PHONE), "messaging_limit_tier") == []

        summary = await refresher.refresh_all([PHONE, TEMPLATE], cause="poll")
        phone_history = await stored(running, PHONE)
        template_history = await stored(running, TEMPLATE)
        [template] = await services.catalog.templates_of_waba("102290129340398")
        answer = await running.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        d360 = await running.client.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        calls = (await running.client.get("/_emulator/calls")).json()["total"]
        shown = await running.client.get(
            f"/v21.0/{PHONE}?fields=messaging_limit_tier,throughput,quality_rating", headers=GRAPH
        )
        read_through = (await running.client.get("/_emulator/calls")).json()["total"] - calls
        limit_alerts = [
            a for a in await services.monitor.outbox.list_alerts() if a.event == "LIMIT"
        ]

    assert (summary.refreshed, summary.calls) == (2, 2)  # the same calls as health alone
    assert of_field(phone_history, "messaging_limit_tier") == [("TIER_1K", "TIER_250", "poll")]
    assert of_field(phone_history, "throughput") == [("STANDARD", "HIGH", "poll")]
    assert of_field(template_history, "quality_score") == [("UNKNOWN", "RED", "poll")]
    assert template.quality_score == "RED"
    # The health answers, served from the cache the refresh filled, carry only health.
    assert answer.headers["x-wahealth-source"] == "cache"
    assert set(answer.json()) == {"health_status", "id"}
    assert set(d360.json()) == {"health_status", "id"}
    # The Graph read API shows the kept values from the catalog, without asking Meta.
    assert shown.json() == {
        "messaging_limit_tier": "TIER_250",
        "throughput": {"level": "HIGH"},
        "quality_rating": "GREEN",
        "id": PHONE,
    }
    assert read_through == 0
    # One LIMIT alert per limit subscriber and per change: the tier and the throughput.
    assert (
        sorted(a.payload["field"] for a in limit_alerts)
        == ["messaging_limit_tier"] * 2 + ["throughput"] * 2
    )
    assert not got.alerts  # the monitor's sender is off in this app


async def test_the_catalog_sync_records_a_change_too(
    tmp_path: Path, receiver: tuple[Receiver, RunningServer]
) -> None:
    _, server = receiver
    settings = settings_for(tmp_path, server.base_url, emulator_webhooks=False, monitor=False)
    async with running_app(settings) as running:
        await patch(running, PHONE, {"name_status": "DECLINED", "verified_name": "Renamed"})
        await patch(running, TEMPLATE, {"category": "MARKETING"})
        outcome = await running.components.catalog_sync.sync_all(["102290129340398"])
        phone_history = await stored(running, PHONE)
        template_history = await stored(running, TEMPLATE)
        alerts = await running.components.monitor.outbox.list_alerts()

    assert outcome == {"102290129340398": (2, 1)}
    assert of_field(phone_history, "name_status") == [("APPROVED", "DECLINED", "sync")]
    assert of_field(phone_history, "verified_name") == [("wahealth Demo", "Renamed", "sync")]
    assert of_field(template_history, "category") == [("UTILITY", "MARKETING", "sync")]
    by_event = sorted((a.event, a.payload["field"]) for a in alerts)
    assert by_event == [
        ("ANY", "verified_name"),  # no event of its own: only ANY hears of it
        ("NUMBER_STATUS", "name_status"),
        ("NUMBER_STATUS", "name_status"),
        ("TEMPLATE_STATUS", "category"),
        ("TEMPLATE_STATUS", "category"),
    ]
