"""Transitions and their alerts: which events, the alert document, flap grouping, end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.domain.records import AlertSnapshot, AlertState, OutboxItem, TransitionCause
from wahealth.monitor.events import AlertEvent, classify, event_for, plan_fold
from wahealth.storage.health import HealthRepository
from wahealth.storage.outbox import OutboxRepository
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.testing_server import RunningServer, serve_in_thread

PHONE = "106540352242922"
LIMITED_PHONE = "105154286024403"
TEMPLATE = "2632273056924580"
HOOK_URL = "http://127.0.0.1:9/hooks/wahealth"
APP_SECRET = "meta-app-secret"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = 300.0
POSTGRES_ENV = "WAHEALTH_TEST_POSTGRES_URL"

BLOCKED_141006 = {
    "can_send_message": "BLOCKED",
    "errors": [
        {
            "error_code": 141006,
            "error_description": "There is an error with the payment method.",
            "possible_solution": "Add a new payment method to the account.",
        }
    ],
}
AVAILABLE = {"can_send_message": "AVAILABLE"}


# --- events (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (None, "BLOCKED", AlertEvent.BLOCKED),
        ("AVAILABLE", "BLOCKED", AlertEvent.BLOCKED),
        ("LIMITED", "BLOCKED", AlertEvent.BLOCKED),
        ("BLOCKED", "BLOCKED", None),  # e.g. another error code: only ANY
        (None, "LIMITED", AlertEvent.LIMITED),
        ("AVAILABLE", "LIMITED", AlertEvent.LIMITED),
        ("BLOCKED", "LIMITED", AlertEvent.LIMITED),
        ("LIMITED", "LIMITED", None),
        (None, "AVAILABLE", None),  # a baseline, not news
        ("LIMITED", "AVAILABLE", AlertEvent.RECOVERED),
        ("BLOCKED", "AVAILABLE", AlertEvent.RECOVERED),
        ("AVAILABLE", "AVAILABLE", None),
    ],
)
def test_events_of_a_change(before: str | None, after: str, event: AlertEvent | None) -> None:
    assert classify(before, after) is event


def test_one_event_per_subscription_specific_first_then_any() -> None:
    assert event_for(["BLOCKED", "ANY"], "AVAILABLE", "BLOCKED") is AlertEvent.BLOCKED
    assert event_for(["ANY"], "AVAILABLE", "BLOCKED") is AlertEvent.BLOCKED
    assert event_for(["ANY"], "BLOCKED", "BLOCKED") is AlertEvent.ANY
    assert event_for(["ANY"], None, "AVAILABLE") is AlertEvent.ANY
    assert event_for(["BLOCKED", "LIMITED", "RECOVERED"], "BLOCKED", "BLOCKED") is None
    assert event_for(["RECOVERED"], "AVAILABLE", "BLOCKED") is None


# --- flap grouping (pure) ----------------------------------------------------------------------


def _alert(
    alert_id: str,
    transition_id: int,
    *,
    at: datetime = T0,
    state: AlertState = AlertState.PENDING,
    attempts: int = 0,
    due: datetime | None = None,
    delivered_at: datetime | None = None,
    grouped: int = 1,
) -> AlertSnapshot:
    return AlertSnapshot(
        alert_id, transition_id, state, attempts, at, due or at, delivered_at, grouped
    )


def test_no_window_means_no_grouping() -> None:
    assert plan_fold(_alert("b", 2), [_alert("a", 1)], T0, 0) is None


def test_a_first_alert_goes_out_at_once() -> None:
    plan = plan_fold(_alert("a", 1), [], T0, WINDOW)
    assert plan is not None
    assert (plan.keep_id, plan.drop_ids, plan.grouped, plan.due_at) == ("a", (), 1, T0)


def test_after_an_alert_went_out_the_next_waits_for_the_window() -> None:
    sent = _alert("a", 1, state=AlertState.DELIVERED, delivered_at=T0, attempts=1)
    now = T0 + timedelta(seconds=10)
    plan = plan_fold(_alert("b", 2, at=now), [sent], now, WINDOW)
    assert plan is not None
    assert (plan.keep_id, plan.drop_ids, plan.due_at) == ("b", (), T0 + timedelta(seconds=WINDOW))
    later = T0 + timedelta(seconds=WINDOW + 1)
    plan = plan_fold(_alert("c", 3, at=later), [sent], later, WINDOW)
    assert plan is not None
    assert plan.due_at == later


def test_an_alert_on_the_wire_counts_as_sent_and_is_never_folded() -> None:
    in_flight = _alert("a", 1, attempts=1)
    now = T0 + timedelta(seconds=5)
    plan = plan_fold(_alert("b", 2, at=now), [in_flight], now, WINDOW)
    assert plan is not None
    assert plan.drop_ids == ()
    assert plan.due_at == now + timedelta(seconds=WINDOW)


def test_the_newest_untried_alert_absorbs_the_older_ones_and_keeps_their_due_time() -> None:
    sent = _alert("a", 1, state=AlertState.DELIVERED, delivered_at=T0, attempts=1)
    waiting = _alert("b", 2, due=T0 + timedelta(seconds=WINDOW), grouped=2)
    now = T0 + timedelta(seconds=WINDOW - 1)
    plan = plan_fold(_alert("c", 4, at=now), [sent, waiting], now, WINDOW)
    assert plan is not None
    assert (plan.keep_id, plan.drop_ids, plan.grouped) == ("c", ("b",), 3)
    assert plan.due_at == T0 + timedelta(seconds=WINDOW)  # never pushed further out


def test_an_older_transition_folded_late_goes_into_the_newer_alert() -> None:
    newer = _alert("c", 5, due=T0 + timedelta(seconds=60))
    plan = plan_fold(_alert("b", 4), [newer], T0, WINDOW)
    assert plan is not None
    assert (plan.keep_id, plan.drop_ids, plan.grouped) == ("c", ("b",), 2)


@dataclass
class _Row:
    alert: AlertSnapshot
    transition: int


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=2 * WINDOW, allow_nan=False),  # gap before
            st.booleans(),  # does the sender run just before this transition?
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_flapping_node_never_storms_and_its_last_state_is_delivered(
    steps: list[tuple[float, bool]],
) -> None:
    outbox: dict[str, AlertSnapshot] = {}
    delivered: list[AlertSnapshot] = []
    now = T0

    def send(at: datetime) -> None:
        due = sorted(
            (a for a in outbox.values() if a.untried and a.next_attempt_at <= at),
            key=lambda a: (a.next_attempt_at, a.transition_id),
        )
        for alert in due:
            done = replace(alert, state=AlertState.DELIVERED, attempts=1, delivered_at=at)
            outbox[alert.id] = done
            delivered.append(done)

    for number, (gap, sender_runs) in enumerate(steps, start=1):
        now += timedelta(seconds=gap)
        if sender_runs:
            send(now)
        new = _alert(f"a{number}", number, at=now)
        outbox[new.id] = new
        plan = plan_fold(new, [a for a in outbox.values() if a.id != new.id], now, WINDOW)
        assert plan is not None
        for dropped in plan.drop_ids:
            del outbox[dropped]
        outbox[plan.keep_id] = replace(
            outbox[plan.keep_id], grouped=plan.grouped, next_attempt_at=plan.due_at
        )
    # Then the node settles; the sender keeps running.
    for _ in range(3):
        now += timedelta(seconds=WINDOW)
        send(now)

    assert all(not a.untried for a in outbox.values()), "nothing is left behind"
    assert delivered[-1].transition_id == len(steps), "the receiver ends on the last state"
    assert sum(a.grouped for a in delivered) == len(steps), "every change is accounted for"
    moments = [a.delivered_at for a in delivered]
    for earlier, later in itertools.pairwise(moments):
        assert earlier is not None
        assert later is not None
        assert later - earlier >= timedelta(seconds=WINDOW), "at most one alert per window"


# --- end to end ------------------------------------------------------------------------------


def _settings(tmp_path: Path, **sections: Any) -> Any:
    return demo_settings(
        tmp_path,
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},  # every query asks Meta
        # Changes made through the emulator are seen by queries here, not by its webhooks.
        upstream={"emulator_webhooks": False},
        **sections,
    )


def _alerts_to(url: str, on: list[str], **options: Any) -> dict[str, Any]:
    return {
        "allow_private_targets": True,
        "subscriptions": [{"space": DEMO.space, "url": url, "secret": "s3cret", "on": on}],
        **options,
    }


async def _query(running: RunningApp, node_id: str) -> str:
    answer = await running.client.get(
        f"/v21.0/{node_id}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )
    assert answer.status_code == 200, answer.text
    await running.components.health.drain()  # recording happens after the answer
    status: str = answer.json()["health_status"]["can_send_message"]
    return status


async def _refresh(running: RunningApp, node_id: str) -> None:
    """What a query does on a cache miss (without spending the demo account's 5 QPS)."""
    await running.components.health.refresh(node_id, cause="query")


async def _set(running: RunningApp, node_id: str, health: dict[str, Any]) -> None:
    answer = await running.client.put(f"/_emulator/nodes/{node_id}/health", json=health)
    assert answer.status_code == 200, answer.text


async def _pending(running: RunningApp) -> list[OutboxItem]:
    return await OutboxRepository(running.components.sessions).list_alerts(AlertState.PENDING)


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """SQLite, and PostgreSQL (a database of its own) when WAHEALTH_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}"
        return
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL monitor tests skipped")
    name = f"wahealth_monitor_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def app(tmp_path: Path, storage_url: str) -> AsyncIterator[RunningApp]:
    settings = _settings(
        tmp_path,
        storage={"url": storage_url},
        alerts=_alerts_to(HOOK_URL, ["BLOCKED", "LIMITED", "RECOVERED"]),
    )
    async with running_app(settings) as running:
        yield running


async def test_a_query_that_sees_a_change_stores_one_transition_and_its_alert(
    app: RunningApp,
) -> None:
    history = HealthRepository(app.components.sessions)
    assert await _query(app, PHONE) == "AVAILABLE"
    [first] = await history.history(PHONE)
    assert (first.before, first.after, first.cause) == (None, "AVAILABLE", TransitionCause.QUERY)
    assert await _query(app, PHONE) == "AVAILABLE"
    assert await history.history(PHONE) == [first], "an unchanged report stores nothing"
    assert await _pending(app) == [], "first seen AVAILABLE is not news"

    await _set(app, PHONE, BLOCKED_141006)
    assert await _query(app, PHONE) == "BLOCKED"
    change, _ = await history.history(PHONE)
    assert (change.before, change.after, change.error_codes, change.cause) == (
        "AVAILABLE",
        "BLOCKED",
        ("141006",),
        TransitionCause.QUERY,
    )
    [alert] = await _pending(app)
    assert (alert.event, alert.transition_id, alert.attempts) == ("BLOCKED", change.id, 0)
    assert alert.payload == {
        "event": "BLOCKED",
        "node_id": PHONE,
        "node_kind": "PHONE_NUMBER",
        "space_id": DEMO.space,
        "before": "AVAILABLE",
        "after": "BLOCKED",
        "error_codes": ["141006"],
        "errors": [
            {
                "entity_type": "PHONE_NUMBER",
                "entity_id": PHONE,
                "error_code": 141006,
                "error_description": "There is an error with the payment method.",
                "possible_solution": "Add a new payment method to the account.",
            }
        ],
        "additional_info": [],
        "cause": "query",
        "occurred_at": change.occurred_at.isoformat().replace("+00:00", "Z"),
        "transition_id": change.id,
        "grouped": 1,
    }
    assert alert.next_attempt_at <= datetime.now(UTC), "due at once"


async def test_a_node_first_seen_limited_is_news(app: RunningApp) -> None:
    assert await _query(app, LIMITED_PHONE) == "LIMITED"
    [alert] = await _pending(app)
    assert (alert.event, alert.payload["before"], alert.payload["after"]) == (
        "LIMITED",
        None,
        "LIMITED",
    )
    assert alert.payload["additional_info"] == [
        "Your display name has not been approved yet. Your message limit will increase after "
        "the display name is approved."
    ]


async def test_a_flapping_node_makes_one_alert_that_ends_on_its_last_state(
    app: RunningApp,
) -> None:
    outbox = OutboxRepository(app.components.sessions)
    history = HealthRepository(app.components.sessions)
    await _refresh(app, PHONE)
    for health in (BLOCKED_141006, AVAILABLE, BLOCKED_141006):
        await _set(app, PHONE, health)
        await _refresh(app, PHONE)
    last = (await history.history(PHONE))[0]
    [alert] = await _pending(app)
    assert (alert.event, alert.transition_id, alert.payload["grouped"]) == ("BLOCKED", last.id, 3)
    assert (alert.payload["before"], alert.payload["after"]) == ("AVAILABLE", "BLOCKED")

    # It goes out; the node keeps flapping: the next alert waits for the window.
    [claimed] = await outbox.claim(datetime.now(UTC), 10)
    sent_at = datetime.now(UTC)
    await outbox.mark_delivered(claimed.item.id, sent_at)
    await _set(app, PHONE, AVAILABLE)
    await _refresh(app, PHONE)
    [held] = await _pending(app)
    assert (held.event, held.payload["grouped"]) == ("RECOVERED", 1)
    assert held.next_attempt_at == sent_at + timedelta(seconds=WINDOW)
    await _set(app, PHONE, BLOCKED_141006)
    await _refresh(app, PHONE)
    [held_again] = await _pending(app)
    last = (await history.history(PHONE))[0]
    assert (held_again.event, held_again.transition_id) == ("BLOCKED", last.id)
    assert held_again.payload["grouped"] == 2
    assert held_again.next_attempt_at == held.next_attempt_at
    assert await outbox.due(datetime.now(UTC)) == []


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


async def test_a_meta_webhook_refresh_is_recorded_with_its_cause(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, meta_webhooks={"verify_token": "verify-me", "app_secret": APP_SECRET}
    )
    async with running_app(settings) as running:
        assert await _query(running, TEMPLATE) == "BLOCKED"
        await _set(running, TEMPLATE, AVAILABLE)
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "102290129340398",
                        "time": 1767225600,
                        "changes": [
                            {
                                "field": "message_template_status_update",
                                "value": {"event": "APPROVED", "message_template_id": TEMPLATE},
                            }
                        ],
                    }
                ],
            }
        ).encode()
        answer = await running.client.post("/webhooks/meta", content=body, headers=_signed(body))
        assert answer.status_code == 200
        await running.components.monitor.webhooks.drain()
        transitions = await HealthRepository(running.components.sessions).history(TEMPLATE)
        # The status the notification states is kept too (see test_kept_fields_webhooks.py).
        latest, first = [t for t in transitions if t.field is None]
        assert (first.cause, first.after) == (TransitionCause.QUERY, "BLOCKED")
        assert (latest.before, latest.after, latest.cause) == (
            "BLOCKED",
            "AVAILABLE",
            TransitionCause.WEBHOOK,
        )
        assert latest.error_codes == ()


@dataclass
class Receiver:
    server: RunningServer
    received: list[tuple[dict[str, str], bytes]]

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as server:
        yield Receiver(server, received)


async def test_an_alert_is_delivered_as_soon_as_it_is_recorded(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = _settings(
        tmp_path,
        monitor={"enabled": True, "interval_seconds": 3600},
        alerts=_alerts_to(receiver.url, ["RECOVERED"]),
    )
    async with running_app(settings) as running:
        history = HealthRepository(running.components.sessions)
        for _ in range(200):  # the first round of the fleet refresh
            if len(await history.recent(limit=10)) == 6:
                break
            await asyncio.sleep(0.05)
        await _set(running, LIMITED_PHONE, AVAILABLE)
        assert await _query(running, LIMITED_PHONE) == "AVAILABLE"
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        [(headers, body)] = receiver.received
        document = json.loads(body)
        [transition] = [t for t in await history.history(LIMITED_PHONE) if t.before is not None]
        assert headers["x-wahealth-event"] == "RECOVERED"
        assert headers["x-wahealth-alert-id"] == document["alert_id"]
        assert "x-wahealth-signature" in headers
        assert {k: document[k] for k in ("event", "node_id", "before", "after", "cause")} == {
            "event": "RECOVERED",
            "node_id": LIMITED_PHONE,
            "before": "LIMITED",
            "after": "AVAILABLE",
            "cause": "query",
        }
        assert (document["transition_id"], document["grouped"]) == (transition.id, 1)
