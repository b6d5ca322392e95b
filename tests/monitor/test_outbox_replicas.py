"""Alert senders on several replicas over one PostgreSQL outbox: each alert claimed once.

Each replica is a sender with its own engine (its own connections) and replica id on
one database schema; the receiver on 127.0.0.1 counts what it gets by alert id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests._processes import environment, start, stop

from wahealth.auth.secretbox import SecretBox
from wahealth.domain.records import AlertState, PlannedAlert
from wahealth.monitor.outbox import USER_AGENT, OutboxSender
from wahealth.monitor.service import build_sender
from wahealth.settings import AlertSettings, MonitorSettings, Settings
from wahealth.storage import (
    HealthRepository,
    OutboxRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.testing_server import RunningServer, serve_in_thread

POSTGRES_ENV = "WAHEALTH_TEST_POSTGRES_URL"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SPACE = "acme-space"
NODE = "106540352242999"
SENDER_HEADER = "x-test-sender"  # which replica's client sent it (the sender never sets it)

# A replica's sender in a process of its own: one delivery pass, real clock.
CHILD_SENDER = """
import asyncio, sys
import httpx
from cryptography.fernet import Fernet
from wahealth.auth.secretbox import SecretBox
from wahealth.monitor.outbox import USER_AGENT, OutboxSender
from wahealth.storage import OutboxRepository, create_engine, session_factory

async def main(url, schema, replica, lease):
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    headers = {"User-Agent": USER_AGENT, "x-test-sender": replica}
    async with httpx.AsyncClient(trust_env=False, timeout=300, headers=headers) as client:
        sender = OutboxSender(
            OutboxRepository(session_factory(engine)),
            SecretBox.from_key(Fernet.generate_key().decode()),
            allow_private_targets=True,
            max_attempts=5,
            client=client,
            timeout_seconds=300,
            lease_seconds=float(lease),
            replica_id=replica,
        )
        await sender.deliver_due()

asyncio.run(main(*sys.argv[1:]))
"""


# --- a receiver that counts alerts by id and can hold one replica's requests ---------------


@dataclass
class Receiver:
    seen: list[tuple[str, str]] = field(default_factory=list)  # (alert id, sender)
    hold: set[str] = field(default_factory=set)  # requests of these senders wait for release
    answer_held: int = 200
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    arrival: threading.Condition = field(default_factory=threading.Condition)

    def reset(self) -> None:
        with self.arrival:
            self.seen.clear()
        self.hold, self.answer_held = set(), 200
        self.release.clear()
        self.held.clear()

    async def received(self, count: int) -> None:
        """Wait until `count` requests have arrived in all."""

        def wait() -> bool:
            with self.arrival:
                return self.arrival.wait_for(lambda: len(self.seen) >= count, timeout=60)

        assert await asyncio.to_thread(wait), f"fewer than {count} requests arrived"

    def by_id(self) -> Counter[str]:
        with self.arrival:
            return Counter(alert_id for alert_id, _ in self.seen)

    def senders_of(self, alert_id: str) -> list[str]:
        with self.arrival:
            return [sender for seen_id, sender in self.seen if seen_id == alert_id]

    async def hook(self, request: Request) -> Response:
        await request.body()
        sender = request.headers.get(SENDER_HEADER, "?")
        with self.arrival:
            self.seen.append((request.headers["x-wahealth-alert-id"], sender))
            self.arrival.notify_all()
        if sender in self.hold:
            self.held.set()
            await asyncio.to_thread(self.release.wait, 60)
            return Response("held answer", self.answer_held)
        await asyncio.sleep(0.005)  # long enough for the other replica to claim meanwhile
        return Response("ok")


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, RunningServer]]:
    receiver = Receiver()
    with serve_in_thread(Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])) as s:
        yield receiver, s
        receiver.release.set()


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, RunningServer]) -> Iterator[Receiver]:
    receiver_server[0].reset()
    yield receiver_server[0]
    receiver_server[0].release.set()  # never leave a request hanging into the next test


@pytest.fixture
def hook_url(receiver_server: tuple[Receiver, RunningServer]) -> str:
    return f"{receiver_server[1].base_url}/hook"


# --- one PostgreSQL schema, one engine per replica -----------------------------------------


@dataclass
class Database:
    url: str
    schema: str
    engines: list[AsyncEngine] = field(default_factory=list)

    def engine(self) -> AsyncEngine:
        """A new engine (a replica's own connection pool) on the test's schema."""
        engine = create_engine(
            self.url, connect_args={"server_settings": {"search_path": self.schema}}
        )
        self.engines.append(engine)
        return engine


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: senders on several replicas need PostgreSQL")
    db = Database(url, f"wahealth_test_{uuid.uuid4().hex[:12]}")
    admin = create_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{db.schema}"'))
    try:
        await upgrade(db.engine())
        yield db
    finally:
        for engine in db.engines:
            await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{db.schema}" CASCADE'))
        await admin.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Fleet:
    """Alerts written once; senders, one per replica, each on its own engine."""

    db: Database
    secretbox: SecretBox
    outbox: OutboxRepository
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    senders: list[OutboxSender] = field(default_factory=list)

    async def alerts(self, url: str, count: int) -> list[str]:
        sessions = session_factory(self.db.engine())
        tenancy = TenancyRepository(sessions)
        await tenancy.upsert_account("acme", 5)
        await tenancy.upsert_space(SPACE, "acme")
        sub = await self.outbox.add_subscription(SPACE, url)
        health = HealthRepository(sessions)
        ids = []
        for n in range(count):
            status = "BLOCKED" if n % 2 == 0 else "AVAILABLE"
            alert_id = f"alert-{n}"
            await health.record(
                NODE,
                "PHONE_NUMBER",
                SPACE,
                status,
                {"health_status": {"can_send_message": status, "entities": []}, "id": NODE},
                [],
                T0 - timedelta(hours=1) + timedelta(seconds=n),
                "poll",
                alerts=[PlannedAlert(sub.id, status, {"event": status, "n": n}, alert_id)],
            )
            ids.append(alert_id)
        return ids

    def sender(self, replica: str, clock: Any = None, **options: Any) -> OutboxSender:
        client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=30.0,
            headers={"User-Agent": USER_AGENT, SENDER_HEADER: replica},
        )
        self.clients.append(client)
        if clock is not None:
            options["clock"] = clock
        sender = OutboxSender(
            OutboxRepository(session_factory(self.db.engine())),
            self.secretbox,
            allow_private_targets=True,
            max_attempts=5,
            client=client,
            timeout_seconds=30.0,
            jitter=lambda: 1.0,
            replica_id=replica,
            **options,
        )
        self.senders.append(sender)
        return sender


@pytest.fixture
async def fleet(database: Database) -> AsyncIterator[Fleet]:
    secretbox = SecretBox.from_key(Fernet.generate_key().decode())
    fleet = Fleet(database, secretbox, OutboxRepository(session_factory(database.engine())))
    yield fleet
    for sender in fleet.senders:
        await sender.aclose()
    for client in fleet.clients:
        await client.aclose()


async def _states(fleet: Fleet, ids: list[str]) -> Counter[AlertState]:
    states: Counter[AlertState] = Counter()
    for alert_id in ids:
        item = await fleet.outbox.get(alert_id)
        assert item is not None
        states[item.state] += 1
    return states


# --- tests -----------------------------------------------------------------------------------


async def test_two_replicas_deliver_each_alert_exactly_once(
    fleet: Fleet, receiver: Receiver, hook_url: str
) -> None:
    ids = await fleet.alerts(hook_url, 60)
    clock = Clock()
    clock.advance(5)
    a = fleet.sender("replica-a", clock, concurrency=4)
    b = fleet.sender("replica-b", clock, concurrency=4)

    async with asyncio.timeout(120):
        handled = await asyncio.gather(a.deliver_due(limit=1000), b.deliver_due(limit=1000))
        # Nothing is left for a second pass by either.
        again = list(await asyncio.gather(a.deliver_due(), b.deliver_due()))

    assert receiver.by_id() == Counter({alert_id: 1 for alert_id in ids})
    assert sum(handled) == len(ids)
    assert again == [0, 0]
    assert await _states(fleet, ids) == Counter({AlertState.DELIVERED: len(ids)})


async def test_two_running_replicas_share_the_outbox_without_duplicates(
    fleet: Fleet, receiver: Receiver, hook_url: str
) -> None:
    ids = await fleet.alerts(hook_url, 40)
    senders = [
        fleet.sender(name, concurrency=3, poll_interval_seconds=0.05)
        for name in ("replica-a", "replica-b")
    ]
    stop = asyncio.Event()
    loops = [asyncio.create_task(sender.run(stop)) for sender in senders]
    try:
        async with asyncio.timeout(120):
            await receiver.received(len(ids))
            # A few more polls by both: nothing is sent twice.
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*loops)
    assert receiver.by_id() == Counter({alert_id: 1 for alert_id in ids})
    assert await _states(fleet, ids) == Counter({AlertState.DELIVERED: len(ids)})


async def test_a_replica_killed_mid_delivery_leaves_its_alerts_to_the_other(
    fleet: Fleet, receiver: Receiver, hook_url: str
) -> None:
    ids = await fleet.alerts(hook_url, 3)
    clock = Clock()
    clock.advance(5)
    receiver.hold = {"replica-a"}
    a = fleet.sender("replica-a", clock, concurrency=8, lease_seconds=60)
    b = fleet.sender("replica-b", clock, concurrency=8, lease_seconds=60)

    doomed = asyncio.create_task(a.deliver_due())
    async with asyncio.timeout(30):
        # Its requests are in flight at the receiver; while its lease runs, b takes nothing.
        await receiver.received(len(ids))
        assert await b.deliver_due() == 0
    doomed.cancel()  # the replica dies: no outcome is ever recorded
    with pytest.raises(asyncio.CancelledError):
        await doomed
    pending = [await fleet.outbox.get(alert_id) for alert_id in ids]
    assert {(i.state, i.claimed_by) for i in pending if i is not None} == {
        (AlertState.PENDING, "replica-a")
    }

    clock.advance(59)
    assert await b.deliver_due() == 0  # still a's
    clock.advance(1)  # a's lease has run out
    async with asyncio.timeout(30):
        assert await b.deliver_due() == len(ids)

    # Each alert reached the receiver from both, under the same alert id: one after dedupe.
    assert receiver.by_id() == Counter({alert_id: 2 for alert_id in ids})
    assert {alert_id: receiver.senders_of(alert_id) for alert_id in ids} == {
        alert_id: ["replica-a", "replica-b"] for alert_id in ids
    }
    after = [await fleet.outbox.get(alert_id) for alert_id in ids]
    assert {(i.state, i.attempts, i.claim) for i in after if i is not None} == {
        (AlertState.DELIVERED, 2, None)
    }


async def test_a_stalled_replicas_late_answer_does_not_undo_the_others_delivery(
    fleet: Fleet, receiver: Receiver, hook_url: str
) -> None:
    [alert_id] = await fleet.alerts(hook_url, 1)
    clock = Clock()
    clock.advance(5)
    receiver.hold, receiver.answer_held = {"replica-a"}, 500
    a = fleet.sender("replica-a", clock, lease_seconds=60)
    b = fleet.sender("replica-b", clock, lease_seconds=60)

    stalled = asyncio.create_task(a.deliver_due())
    async with asyncio.timeout(30):
        await asyncio.to_thread(receiver.held.wait, 30)
        clock.advance(61)  # a's request outlives its lease
        assert await b.deliver_due() == 1
        receiver.release.set()  # a finally hears back: 500, which would mean "retry"
        assert await stalled == 1

    item = await fleet.outbox.get(alert_id)
    assert item is not None
    assert (item.state, item.last_error, item.claim) == (AlertState.DELIVERED, None, None)
    clock.advance(3600)
    assert list(await asyncio.gather(a.deliver_due(), b.deliver_due())) == [0, 0]
    assert receiver.senders_of(alert_id) == ["replica-a", "replica-b"]


async def test_a_replica_process_killed_mid_delivery_hands_its_alerts_on_after_the_lease(
    fleet: Fleet, receiver: Receiver, hook_url: str, tmp_path: Path
) -> None:
    ids = await fleet.alerts(hook_url, 3)
    receiver.hold = {"replica-a"}
    lease = 2.0
    log = tmp_path / "replica-a.log"
    child = start(
        [
            sys.executable,
            "-c",
            CHILD_SENDER,
            fleet.db.url,
            fleet.db.schema,
            "replica-a",
            str(lease),
        ],
        environment(),
        log,
    )
    try:
        async with asyncio.timeout(60):
            await receiver.received(len(ids))  # all three in flight from replica-a
    finally:
        stop(child, signal.SIGKILL)
    claimed = [await fleet.outbox.get(alert_id) for alert_id in ids]
    assert {(i.state, i.claimed_by) for i in claimed if i is not None} == {
        (AlertState.PENDING, "replica-a")
    }, log.read_text()[-3000:]
    lease_ends = max(i.claimed_until for i in claimed if i is not None and i.claimed_until)

    b = fleet.sender("replica-b", lease_seconds=lease, poll_interval_seconds=0.1)
    stop_b = asyncio.Event()
    loop = asyncio.create_task(b.run(stop_b))
    try:
        async with asyncio.timeout(60):
            await receiver.received(2 * len(ids))
    finally:
        stop_b.set()
        await loop  # the round under way ends first: its outcomes are recorded
    assert {alert_id: receiver.senders_of(alert_id) for alert_id in ids} == {
        alert_id: ["replica-a", "replica-b"] for alert_id in ids
    }
    delivered = [await fleet.outbox.get(alert_id) for alert_id in ids]
    for item in delivered:
        assert item is not None
        assert (item.state, item.attempts, item.claim) == (AlertState.DELIVERED, 2, None)
        assert item.delivered_at is not None
        assert item.delivered_at >= lease_ends  # not taken from replica-a before its lease ended


async def test_the_monitors_sender_claims_under_its_process_id_for_the_configured_lease(
    fleet: Fleet, receiver: Receiver, hook_url: str
) -> None:
    [alert_id] = await fleet.alerts(hook_url, 1)
    settings = Settings(
        monitor=MonitorSettings(outbox_lease_seconds=7),
        alerts=AlertSettings(allow_private_targets=True),
    )
    sender = build_sender(settings, session_factory(fleet.db.engine()), fleet.secretbox)
    fleet.senders.append(sender)
    receiver.hold = {"?"}  # its own client: no test header
    before = datetime.now(UTC)
    delivering = asyncio.create_task(sender.deliver_due())
    try:
        async with asyncio.timeout(30):
            await asyncio.to_thread(receiver.held.wait, 30)
        after = datetime.now(UTC)
        item = await fleet.outbox.get(alert_id)
        assert item is not None
        assert item.claimed_by is not None
        assert item.claimed_by.startswith(f"{socket.gethostname()}:{os.getpid()}:")
        assert item.claimed_until is not None
        assert before + timedelta(seconds=7) <= item.claimed_until <= after + timedelta(seconds=7)
    finally:
        receiver.release.set()
        async with asyncio.timeout(30):
            assert await delivering == 1
    done = await fleet.outbox.get(alert_id)
    assert done is not None
    assert (done.state, done.claim) == (AlertState.DELIVERED, None)
