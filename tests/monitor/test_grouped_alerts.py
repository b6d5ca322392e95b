"""A WABA-level change that affects N of its numbers is one grouped alert, end to end.

A synthetic scenario puts four numbers and a template on one WABA. The WABA becomes
BLOCKED in the emulator; the fleet refresh sees each node change (in two separate
rounds), and the receiver on a real 127.0.0.1 socket gets one alert per subscription
listing every node, in JSON and in Slack form.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from tests.monitor import test_end_to_end as e2e
from tests.monitor._fleet import FakeClock, refresher_for

from wahealth.domain.records import AlertState
from wahealth.testing import DEMO, demo_settings, running_app
from wahealth.testing_server import RunningServer
from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import (
    synthetic_phone_number_id,
    synthetic_template_id,
    synthetic_waba_id,
)

receiver = e2e.receiver

WABA = synthetic_waba_id(0)
NUMBERS = [synthetic_phone_number_id(i) for i in range(4)]
TEMPLATE = synthetic_template_id(0)
WABA_BLOCKED = {
    "can_send_message": "BLOCKED",
    "errors": [{"error_code": 141006, "error_description": "Payment method error."}],
}


async def test_a_blocked_waba_sends_one_alert_listing_its_numbers(
    tmp_path: Path, receiver: tuple[e2e.Receiver, RunningServer]
) -> None:
    got, server = receiver
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(
        yaml.safe_dump(synthetic_scenario(4, 1, wabas=1).model_dump(mode="json")), "utf-8"
    )
    base = server.base_url
    settings = demo_settings(
        tmp_path,
        upstream={"scenario": str(scenario), "emulator_webhooks": False},
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        spaces=[{"id": "fleet-space", "account": DEMO.account, "wabas": [WABA]}],
        monitor={"enabled": True, "interval_seconds": 3600},
        alerts={
            "allow_private_targets": True,
            "flap_window_seconds": 0,
            "group_wait_seconds": 1,
            "subscriptions": [
                {"space": "fleet-space", "url": f"{base}/json", "secret": "s"},
                {"space": "fleet-space", "url": f"{base}/slack", "secret": "s", "format": "slack"},
            ],
        },
    )
    async with running_app(settings) as running:
        for node_id in [WABA, *NUMBERS, TEMPLATE]:
            await e2e.baseline(running, node_id)
        await e2e.set_health(running, WABA, WABA_BLOCKED)
        refresher = refresher_for(running.components, FakeClock())
        # Two rounds, as a big WABA's nodes arrive: the second joins the first's alert.
        await refresher.refresh_all([WABA, *NUMBERS[:2]], cause="poll")
        await refresher.refresh_all([*NUMBERS[2:], TEMPLATE], cause="poll")

        [as_json] = await got.wait_for(lambda a: a.path == "/json")
        [as_slack] = await got.wait_for(lambda a: a.path == "/slack")
        outbox = running.components.monitor.outbox

        async def both_delivered() -> bool:
            states = [a.state for a in await outbox.list_alerts(limit=100)]
            return states == [AlertState.DELIVERED] * 2

        # One delivered alert per subscription: the others were merged into it.
        await e2e.eventually(both_delivered, "the two grouped alerts marked delivered")
        transitions = {
            node_id: (await e2e.history(running, node_id))[0] for node_id in [WABA, *NUMBERS]
        }

    body = as_json.json
    assert (body["event"], body["waba_id"], body["after"]) == ("BLOCKED", WABA, "BLOCKED")
    listed = {node["node_id"]: node for node in body["nodes"]}
    assert set(listed) == {WABA, *NUMBERS, TEMPLATE}
    assert body["grouped"] == 6
    for node_id, transition in transitions.items():
        assert listed[node_id]["transition_id"] == transition["id"]
        assert (listed[node_id]["before"], listed[node_id]["after"]) == ("AVAILABLE", "BLOCKED")
    assert listed[NUMBERS[0]]["error_codes"] == ["141006"]
    assert len([a for a in got.alerts if a.path == "/json"]) == 1
    slack = as_slack.json
    assert f"WABA {WABA}: 6 nodes are BLOCKED" in slack["text"]
    blocks = orjson.dumps(slack["blocks"]).decode()
    for node_id in NUMBERS:
        assert f"`{node_id}` BLOCKED (141006)" in blocks
