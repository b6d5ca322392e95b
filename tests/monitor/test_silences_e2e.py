"""Silences and acknowledgements end to end: the JSON API, the recorder, the outbox, the receiver.

The gateway runs with its lifespan (monitor on) on real SQLite; alerts go to a receiver
on a real 127.0.0.1 socket. A change reaches the gateway through a Graph query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.monitor import test_end_to_end as e2e

from wahealth.domain.records import AlertState, OutboxItem
from wahealth.settings import Settings
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.testing_server import RunningServer

PHONE = "106540352242922"  # AVAILABLE in the demo
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}
OTHER = {"Authorization": f"Bearer {DEMO.other_graph_token}"}

receiver = e2e.receiver


def settings_for(
    tmp_path: Path, base_url: str, on: tuple[str, ...] = ("BLOCKED",), *, webhooks: bool = False
) -> Settings:
    base = e2e.settings_for(tmp_path, base_url)
    return demo_settings(
        tmp_path,
        upstream={"emulator_webhooks": webhooks},
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        monitor={"enabled": True, "interval_seconds": 3600},
        alerts={
            **base.alerts.model_dump(mode="json"),
            "group_wait_seconds": 0,
            "silence_poll_seconds": 0.1,
            "subscriptions": [
                {"space": DEMO.space, "url": f"{base_url}/json", "secret": "s", "on": list(on)}
            ],
        },
        accounts=[
            {
                **account.model_dump(mode="json"),
                "qps": 1000,
                "graph_tokens": [{"token": t.token, "label": label}],
            }
            for account in base.accounts
            for t in account.graph_tokens
            for label in ["oncall-alice" if account.name == DEMO.account else "other"]
        ],
    )


async def query(running: RunningApp, node_id: str) -> str:
    answer = await running.client.get(f"/v21.0/{node_id}?fields=health_status", headers=GRAPH)
    assert answer.status_code == 200
    status: str = answer.json()["health_status"]["can_send_message"]
    return status


async def transitions_to(running: RunningApp, node_id: str, after: str) -> list[dict[str, Any]]:
    """The node's health transitions to `after`, once the recorder stored one (it runs after
    the answer)."""
    found: list[dict[str, Any]] = []

    async def stored() -> bool:
        found[:] = [
            t
            for t in await e2e.history(running, node_id)
            if t["after"] == after and t["field"] is None
        ]
        return bool(found)

    await e2e.eventually(stored, f"a transition of {node_id} to {after}")
    return found


async def alerts_of(running: RunningApp, node_id: str) -> list[OutboxItem]:
    items = await running.components.monitor.outbox.list_alerts(limit=1000)
    return sorted(
        (i for i in items if i.payload.get("node_id") == node_id), key=lambda i: i.created_at
    )


async def _has_alert_with(running: RunningApp, node_id: str, codes: list[str]) -> bool:
    return any(a.payload["error_codes"] == codes for a in await alerts_of(running, node_id))


def blocked(code: int) -> dict[str, Any]:
    return {
        "can_send_message": "BLOCKED",
        "errors": [
            {"error_code": code, "error_description": "Restricted.", "possible_solution": "Wait."}
        ],
    }


async def test_a_change_inside_a_silence_is_stored_suppressed_and_its_end_alerts_once(
    tmp_path: Path, receiver: tuple[e2e.Receiver, RunningServer]
) -> None:
    got, server = receiver
    async with running_app(settings_for(tmp_path, server.base_url)) as running:
        await e2e.baseline(running, PHONE)
        created = await running.client.post(
            "/api/v1/silences",
            json={"node": PHONE, "for": "2h", "reason": "carrier maintenance"},
            headers=GRAPH,
        )
        assert created.status_code == 201, created.text
        silence = created.json()
        assert (silence["scope"], silence["scope_id"], silence["space_id"]) == (
            "node",
            PHONE,
            DEMO.space,
        )
        assert (silence["reason"], silence["created_by"]) == ("carrier maintenance", "oncall-alice")
        listed = await running.client.get("/api/v1/silences", headers=GRAPH)
        assert [s["id"] for s in listed.json()["data"]] == [silence["id"]]
        # Another account neither sees it nor can lift it.
        assert (await running.client.get("/api/v1/silences", headers=OTHER)).json() == {"data": []}
        other = await running.client.delete(f"/api/v1/silences/{silence['id']}", headers=OTHER)
        assert other.status_code == 404

        await e2e.set_health(running, PHONE, blocked(141010))
        assert await query(running, PHONE) == "BLOCKED"
        [transition] = await transitions_to(running, PHONE, "BLOCKED")
        [alert] = await alerts_of(running, PHONE)
        assert alert.state is AlertState.SUPPRESSED
        assert alert.transition_id == transition["id"]
        assert alert.payload["suppressed"]["silence"]["id"] == silence["id"]
        assert await running.components.monitor.sender.deliver_due() == 0
        assert (
            await running.components.monitor.outbox.get(alert.id)
        ).state is AlertState.SUPPRESSED  # type: ignore[union-attr]

        lifted = await running.client.delete(f"/api/v1/silences/{silence['id']}", headers=GRAPH)
        assert lifted.status_code == 200
        assert lifted.json()["lifted_at"] is not None
        [ended] = await got.wait_for(lambda a: a.json["event"] == "SILENCE_ENDED")
        assert await running.components.monitor.silence_watch.step() == []
        assert (await running.client.get("/api/v1/silences", headers=GRAPH)).json() == {"data": []}

    body = ended.json
    assert body["silence"]["id"] == silence["id"]
    assert body["silence"]["reason"] == "carrier maintenance"
    assert [(n["node_id"], n["status"], n["error_codes"]) for n in body["nodes"]] == [
        (PHONE, "BLOCKED", ["141010"])
    ]
    assert (body["node_id"], body["after"], body["transition_id"]) == (
        PHONE,
        "BLOCKED",
        transition["id"],
    )
    assert [a.json["event"] for a in got.alerts if e2e.about(PHONE)(a)] == ["SILENCE_ENDED"]


async def test_an_acknowledged_node_sends_no_repeat_until_its_status_changes(
    tmp_path: Path, receiver: tuple[e2e.Receiver, RunningServer]
) -> None:
    got, server = receiver
    # ANY: also a change of error codes alone, which is what repeats while a node stays BLOCKED.
    async with running_app(settings_for(tmp_path, server.base_url, ("ANY",))) as running:
        await e2e.baseline(running, PHONE)
        nothing = await running.client.post(f"/api/v1/nodes/{PHONE}/ack", headers=GRAPH)
        assert nothing.status_code == 409
        await e2e.set_health(running, PHONE, blocked(141010))
        await query(running, PHONE)
        await got.wait_for(e2e.about(PHONE, "BLOCKED"))
        foreign = await running.client.post(f"/api/v1/nodes/{PHONE}/ack", headers=OTHER)
        assert foreign.status_code == 404

        acked = await running.client.post(
            f"/api/v1/nodes/{PHONE}/ack", json={"note": "ticket 42"}, headers=GRAPH
        )
        assert acked.status_code == 200, acked.text
        assert (acked.json()["acknowledged_by"], acked.json()["note"], acked.json()["status"]) == (
            "oncall-alice",
            "ticket 42",
            "BLOCKED",
        )
        shown = await running.client.get(f"/api/v1/nodes/{PHONE}/history", headers=GRAPH)
        assert shown.json()["acknowledgement"]["note"] == "ticket 42"

        # Still BLOCKED, with another error: stored, not sent.
        await e2e.set_health(running, PHONE, blocked(141011))
        await query(running, PHONE)
        await e2e.eventually(
            lambda: _has_alert_with(running, PHONE, ["141011"]), "the alert of the repeated BLOCKED"
        )
        [repeat] = [
            a for a in await alerts_of(running, PHONE) if a.payload["error_codes"] == ["141011"]
        ]
        assert repeat.state is AlertState.SUPPRESSED
        assert repeat.payload["suppressed"]["acknowledgement"]["acknowledged_by"] == "oncall-alice"

        # A change of status is news again, and ends the acknowledgement.
        await e2e.set_health(running, PHONE, {"can_send_message": "AVAILABLE"})
        await query(running, PHONE)
        await got.wait_for(e2e.about(PHONE, "RECOVERED"))
        shown = await running.client.get(f"/api/v1/nodes/{PHONE}/history", headers=GRAPH)
        assert shown.json()["acknowledgement"] is None
        await e2e.set_health(running, PHONE, blocked(141011))
        await query(running, PHONE)
        await got.wait_for(e2e.about(PHONE, "BLOCKED"), count=2)

    events = [
        (a.json["event"], a.json["error_codes"], a.json.get("field"))
        for a in got.alerts
        if e2e.about(PHONE)(a) and a.json["before"] is not None  # not the first sighting
    ]
    assert events == [
        ("BLOCKED", ["141010"], None),
        ("RECOVERED", [], None),
        ("BLOCKED", ["141011"], None),
    ]


async def test_silence_api_refuses_bad_input_with_clear_errors(
    tmp_path: Path, receiver: tuple[e2e.Receiver, RunningServer]
) -> None:
    _, server = receiver
    async with running_app(settings_for(tmp_path, server.base_url)) as running:
        cases = [
            ({"node": PHONE}, 400, "give exactly one of for or until"),
            ({"node": PHONE, "waba": "299399000000001", "for": "1h"}, 400, "exactly one of node"),
            ({"node": PHONE, "for": "soon"}, 400, "not a duration"),
            ({"node": PHONE, "until": "2020-01-01T00:00:00Z"}, 400, "in the future"),
            ({"node": PHONE, "until": "2999-01-01T00:00:00"}, 400, "no time zone"),
            ({"space": DEMO.other_space, "for": "1h"}, 404, "not known"),
            ({"waba": PHONE, "for": "1h"}, 404, "not known"),
        ]
        for body, status, message in cases:
            answer = await running.client.post("/api/v1/silences", json=body, headers=GRAPH)
            assert (answer.status_code, message in answer.json()["error"]) == (status, True), body
        bare = await running.client.post("/api/v1/silences", json={"space": DEMO.space})
        assert bare.status_code == 401
        garbage = await running.client.post("/api/v1/silences", content=b"[", headers=GRAPH)
        assert garbage.status_code == 400
        missing = await running.client.delete("/api/v1/silences/999", headers=GRAPH)
        assert missing.status_code == 404


async def test_a_quality_drop_of_a_number_on_a_silenced_waba_is_stored_suppressed(
    tmp_path: Path, receiver: tuple[e2e.Receiver, RunningServer]
) -> None:
    _, server = receiver
    settings = settings_for(tmp_path, server.base_url, ("QUALITY",), webhooks=True)
    async with running_app(settings) as running:
        await e2e.baseline(running, PHONE)
        created = await running.client.post(
            "/api/v1/silences",
            json={"waba": "102290129340398", "for": "1d"},
            headers=GRAPH,
        )
        assert created.status_code == 201, created.text
        answer = await running.client.patch(
            f"/_emulator/nodes/{PHONE}", json={"quality_rating": "YELLOW"}
        )
        assert answer.status_code == 200

        async def quality_alert() -> bool:
            return any(
                a.payload.get("field") == "quality_rating" for a in await alerts_of(running, PHONE)
            )

        await e2e.eventually(quality_alert, "the quality alert")
        [alert] = [a for a in await alerts_of(running, PHONE) if a.payload.get("field")]
        assert alert.state is AlertState.SUPPRESSED
        assert alert.payload["suppressed"]["silence"]["id"] == created.json()["id"]
        assert (alert.payload["before"], alert.payload["after"]) == ("GREEN", "YELLOW")


async def test_a_waba_silence_that_runs_out_alerts_its_nodes_still_blocked(
    tmp_path: Path, receiver: tuple[e2e.Receiver, RunningServer]
) -> None:
    got, server = receiver
    blocked_waba, its_number = "299399000000001", "106540352242999"  # BLOCKED in the demo
    async with running_app(settings_for(tmp_path, server.base_url)) as running:
        for node_id in (blocked_waba, its_number):
            await e2e.baseline(running, node_id)
        created = await running.client.post(
            "/api/v1/silences", json={"waba": blocked_waba, "for": "1s"}, headers=GRAPH
        )
        assert created.status_code == 201, created.text
        [ended] = await got.wait_for(lambda a: a.json["event"] == "SILENCE_ENDED")

    body = ended.json
    assert body["silence"]["id"] == created.json()["id"]
    assert body["silence"]["lifted_at"] is None
    assert sorted((n["node_id"], n["status"]) for n in body["nodes"]) == [
        (its_number, "BLOCKED"),
        (blocked_waba, "BLOCKED"),
    ]
    assert body["grouped"] == 2
