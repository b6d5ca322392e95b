"""A flapping field is grouped like a flapping health, but apart from it: a quality alert
never absorbs a BLOCKED one, and the last alert of each carries its final value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from wahealth.domain.records import AlertState, PropertyObservation
from wahealth.testing import DEMO, demo_settings, running_app

PHONE = "106540352242922"
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}


async def test_health_and_each_field_are_grouped_apart(tmp_path: Path) -> None:
    settings = demo_settings(
        tmp_path,
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        alerts={
            "allow_private_targets": True,
            "flap_window_seconds": 300,
            "subscriptions": [
                {"space": DEMO.space, "url": "http://127.0.0.1:9/any", "secret": "s", "on": ["ANY"]}
            ],
        },
    )
    async with running_app(settings) as running:  # the sender is off: every alert stays untried
        services = running.components
        await running.client.put(
            f"/_emulator/nodes/{PHONE}/health",
            json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
        )
        await running.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        await services.health.drain()
        now = datetime.now(UTC)
        for step, rating in enumerate(("YELLOW", "RED", "YELLOW")):
            seen = PropertyObservation(
                PHONE, {"quality_rating": rating}, now + timedelta(seconds=step)
            )
            assert len(await services.monitor.tracker.observe([seen], "poll")) == 1
        await services.monitor.tracker.observe(
            [PropertyObservation(PHONE, {"status": "FLAGGED"}, now + timedelta(seconds=5))], "poll"
        )
        pending = [
            a
            for a in await services.monitor.outbox.list_alerts(AlertState.PENDING)
            if a.payload["node_id"] == PHONE
        ]

    by_kind = sorted(
        (a.payload.get("field") or "health", a.payload["after"], a.payload["grouped"])
        for a in pending
    )
    assert by_kind == [
        ("health", "BLOCKED", 1),
        ("quality_rating", "YELLOW", 3),  # three changes, one alert, the last value
        ("status", "FLAGGED", 1),
    ]
