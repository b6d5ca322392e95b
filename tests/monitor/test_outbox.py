"""The alert sender against a real HTTP receiver on 127.0.0.1, over a real SQLite outbox."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.auth.secretbox import SecretBox
from wahealth.domain.records import AlertState, PlannedAlert
from wahealth.monitor import targets
from wahealth.monitor.outbox import OutboxSender, backoff_delay
from wahealth.monitor.payloads import verify
from wahealth.storage import (
    HealthRepository,
    OutboxRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.testing_server import RunningServer, serve_in_thread

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SECRET = "receiver-secret"
SPACE = "acme-space"


# --- a receiver that records what it gets and fails on demand ------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.body)
        return data


@dataclass
class Receiver:
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0
    fail_status: int = 500
    fail_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
        self.arrived.clear()
        self.fail_first, self.fail_status, self.fail_headers, self.delay = 0, 500, {}, 0.0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.requests.append(Received(request.url.path, dict(request.headers), body))
            count = len(self.requests)
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if count <= self.fail_first:
            return Response("receiver says no", self.fail_status, headers=self.fail_headers)
        return Response("ok")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.hook, methods=["POST"])])


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, RunningServer]]:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as server:
        yield receiver, server


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, RunningServer]) -> Receiver:
    receiver_server[0].reset()
    return receiver_server[0]


@pytest.fixture
def hook_url(receiver_server: tuple[Receiver, RunningServer]) -> str:
    return f"{receiver_server[1].base_url}/hook"


# --- storage ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outbox") / "migrated.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@dataclass
class Store:
    outbox: OutboxRepository
    health: HealthRepository
    secretbox: SecretBox
    url: str
    transitions: int = 0

    async def subscribe(self, url: str, format: str = "json", secret: str | None = SECRET) -> int:
        encrypted = None if secret is None else self.secretbox.encrypt(secret)
        sub = await self.outbox.add_subscription(
            SPACE, url, format=format, secret_encrypted=encrypted
        )
        return sub.id

    async def enqueue(self, subscription_id: int) -> str:
        """Record a transition of a node with one alert for the subscription; its alert id."""
        self.transitions += 1
        n = self.transitions
        status = "BLOCKED" if n % 2 else "AVAILABLE"
        node_id = "106540352242999"
        payload = {"health_status": {"can_send_message": status, "entities": []}, "id": node_id}
        document = {
            "event": status if status == "BLOCKED" else "RECOVERED",
            "node_id": node_id,
            "node_kind": "PHONE_NUMBER",
            "space_id": SPACE,
            "before": None if n == 1 else ("AVAILABLE" if status == "BLOCKED" else "BLOCKED"),
            "after": status,
            "error_codes": ["141006"] if status == "BLOCKED" else [],
            "errors": [],
            "additional_info": [],
            "cause": "poll",
            "occurred_at": (T0 + timedelta(seconds=n)).isoformat(),
            "transition_id": n,
            "grouped": 1,
        }
        alert_id = f"alert-{n}"
        await self.health.record(
            node_id,
            "PHONE_NUMBER",
            SPACE,
            status,
            payload,
            [],
            T0 - timedelta(hours=1) + timedelta(seconds=n),
            "poll",
            alerts=[PlannedAlert(subscription_id, document["event"], document, alert_id)],
        )
        return alert_id


@pytest.fixture
async def store(tmp_path: Path, migrated: Path) -> AsyncIterator[Store]:
    path = tmp_path / "wahealth.db"
    shutil.copyfile(migrated, path)
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    sessions = session_factory(engine)
    tenancy = TenancyRepository(sessions)
    await tenancy.upsert_account("acme", 5)
    await tenancy.upsert_space(SPACE, "acme")
    secretbox = SecretBox.from_key(Fernet.generate_key().decode())
    yield Store(OutboxRepository(sessions), HealthRepository(sessions), secretbox, url)
    await engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_sender(store: Store, clock: Clock, **kwargs: Any) -> OutboxSender:
    options: dict[str, Any] = {
        "allow_private_targets": True,
        "max_attempts": 5,
        "clock": clock,
        "timeout_seconds": 5.0,
        "jitter": lambda: 1.0,
    }
    options.update(kwargs)
    return OutboxSender(store.outbox, store.secretbox, **options)


async def deliver_once(store: Store, clock: Clock, **kwargs: Any) -> int:
    """One `deliver_due` pass by a fresh sender, closed afterwards."""
    sender = make_sender(store, clock, **kwargs)
    try:
        return await sender.deliver_due()
    finally:
        await sender.aclose()


def assert_signed(request: Received, clock: Clock) -> None:
    assert verify(
        request.headers.get("x-wahealth-signature"),
        request.body,
        SECRET,
        now=clock().timestamp(),
    ) == int(clock().timestamp())


# --- delivery --------------------------------------------------------------------------------


async def test_delivers_a_signed_json_alert_once(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    sender = make_sender(store, clock)
    try:
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-wahealth-alert-id"] == alert_id
    assert request.headers["x-wahealth-event"] == "BLOCKED"
    assert_signed(request, clock)
    body = request.json
    assert body["alert_id"] == alert_id
    assert (body["node_id"], body["after"], body["error_codes"]) == (
        "106540352242999",
        "BLOCKED",
        ["141006"],
    )
    stored = await store.outbox.get(alert_id)
    assert stored is not None
    assert (stored.state, stored.attempts, stored.delivered_at) == (AlertState.DELIVERED, 1, T0)


async def test_slack_format(store: Store, receiver: Receiver, hook_url: str, clock: Clock) -> None:
    alert_id = await store.enqueue(await store.subscribe(hook_url, format="slack"))
    await deliver_once(store, clock)
    [request] = receiver.requests
    assert_signed(request, clock)
    assert set(request.json) == {"text", "blocks"}
    assert "106540352242999" in request.json["text"]
    assert alert_id in orjson.dumps(request.json["blocks"]).decode()


async def test_unsigned_when_the_subscription_has_no_secret(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    await store.enqueue(await store.subscribe(hook_url, secret=None))
    await deliver_once(store, clock)
    assert "x-wahealth-signature" not in receiver.requests[0].headers


async def test_failures_are_retried_with_backoff_and_the_same_alert_id(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    receiver.fail_first = 2
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    sender = make_sender(store, clock, backoff_base_seconds=10.0)
    try:
        assert await sender.deliver_due() == 1
        failed = await store.outbox.get(alert_id)
        assert failed is not None
        assert failed.state is AlertState.PENDING
        assert failed.last_error == "HTTP 500: receiver says no"
        assert failed.next_attempt_at == T0 + timedelta(seconds=10)  # first step, full jitter
        assert await sender.deliver_due() == 0  # not due yet
        clock.advance(10)
        await sender.deliver_due()
        second = await store.outbox.get(alert_id)
        assert second is not None
        assert second.next_attempt_at == clock.now + timedelta(seconds=20)  # doubled
        clock.advance(20)
        await sender.deliver_due()
        clock.advance(3600)
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    assert [r.headers["x-wahealth-alert-id"] for r in receiver.requests] == [alert_id] * 3
    assert {r.json["alert_id"] for r in receiver.requests} == {alert_id}
    delivered = await store.outbox.get(alert_id)
    assert delivered is not None
    assert (delivered.state, delivered.attempts) == (AlertState.DELIVERED, 3)


async def test_receiver_down_for_a_while_then_back_gets_it_once(store: Store, clock: Clock) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    alert_id = await store.enqueue(await store.subscribe(f"http://127.0.0.1:{port}/hook"))
    sender = make_sender(store, clock)
    try:
        await sender.deliver_due()
        down = await store.outbox.get(alert_id)
        assert down is not None
        assert down.state is AlertState.PENDING
        assert down.last_error is not None
        assert "Connect" in down.last_error
        clock.advance(2)
        await sender.deliver_due()
        back = Receiver()
        with serve_in_thread(back.app(), port=port):
            clock.advance(4)
            assert await sender.deliver_due() == 1
            clock.advance(3600)
            assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    assert [r.headers["x-wahealth-alert-id"] for r in back.requests] == [alert_id]
    delivered = await store.outbox.get(alert_id)
    assert delivered is not None
    assert (delivered.state, delivered.attempts) == (AlertState.DELIVERED, 3)


async def test_dead_after_max_attempts_then_retried(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    receiver.fail_first = 3
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    sender = make_sender(store, clock, max_attempts=3)
    try:
        for _ in range(5):
            await sender.deliver_due()
            clock.advance(3600)
        dead = await store.outbox.get(alert_id)
        assert dead is not None
        assert dead.state is AlertState.DEAD
        assert dead.attempts == 3
        assert dead.last_error == "HTTP 500: receiver says no (gave up after 3 attempts)"
        assert len(receiver.requests) == 3
        assert [a.id for a in await store.outbox.list_alerts(AlertState.DEAD)] == [alert_id]

        await store.outbox.retry_dead(alert_id, clock.now)
        assert await sender.deliver_due() == 1
    finally:
        await sender.aclose()
    assert [r.headers["x-wahealth-alert-id"] for r in receiver.requests] == [alert_id] * 4
    delivered = await store.outbox.get(alert_id)
    assert delivered is not None
    assert (delivered.state, delivered.attempts) == (AlertState.DELIVERED, 1)


async def test_gone_parks_the_alert_at_once(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    receiver.fail_first, receiver.fail_status = 1, 410
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    await deliver_once(store, clock)
    dead = await store.outbox.get(alert_id)
    assert dead is not None
    assert (dead.state, dead.attempts, dead.last_error) == (
        AlertState.DEAD,
        1,
        "HTTP 410: receiver says no",
    )


async def test_redirects_are_not_followed(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    receiver.fail_first, receiver.fail_status = 1, 307
    receiver.fail_headers = {"Location": "/elsewhere"}
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    await deliver_once(store, clock)
    assert [r.path for r in receiver.requests] == ["/hook"]
    item = await store.outbox.get(alert_id)
    assert item is not None
    assert item.state is AlertState.PENDING
    assert item.last_error == "HTTP 307 redirect to /elsewhere (redirects are not followed)"


async def test_retry_after_is_honoured(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    receiver.fail_first, receiver.fail_status = 1, 429
    receiver.fail_headers = {"Retry-After": "120"}
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    await deliver_once(store, clock)
    item = await store.outbox.get(alert_id)
    assert item is not None
    assert item.next_attempt_at == T0 + timedelta(seconds=120)


async def test_a_slow_receiver_times_out_and_is_retried(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    receiver.delay = 1.0
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    sender = make_sender(store, clock, timeout_seconds=0.2)
    try:
        await sender.deliver_due()
    finally:
        await sender.aclose()
    item = await store.outbox.get(alert_id)
    assert item is not None
    assert (item.state, item.last_error) == (AlertState.PENDING, "timed out after 0.2s")


def test_backoff_schedule_doubles_with_jitter_and_is_capped() -> None:
    assert [backoff_delay(n, 2.0, 3600.0, lambda: 1.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert [backoff_delay(n, 2.0, 3600.0, lambda: 0.0) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff_delay(30, 2.0, 3600.0, lambda: 1.0) == 3600
    assert backoff_delay(10_000, 2.0, 3600.0, lambda: 0.5) == 2700
    delays = {backoff_delay(3, 2.0, 3600.0) for _ in range(50)}
    assert all(4 <= d <= 8 for d in delays)
    assert len(delays) > 1


# --- targets at delivery time ----------------------------------------------------------------


async def test_name_now_resolving_to_a_private_address_is_not_called(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    addresses = ["10.0.0.5"]

    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    monkeypatch.setattr(targets, "resolve", resolve)
    alert_id = await store.enqueue(await store.subscribe("https://hooks.example.com/x"))
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sender = make_sender(store, clock, allow_private_targets=False, client=client)
    try:
        await sender.deliver_due()
        item = await store.outbox.get(alert_id)
        assert item is not None
        assert item.state is AlertState.PENDING
        assert item.last_error is not None
        assert item.last_error.startswith("target refused")
        assert sent == []

        addresses[:] = ["93.184.216.34"]
        clock.advance(3600)
        await sender.deliver_due()
    finally:
        await client.aclose()
        await sender.aclose()
    [request] = sent
    # connects to the address that was checked, and still names the host
    assert request.url.host == "93.184.216.34"
    assert request.url.scheme == "https"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    delivered = await store.outbox.get(alert_id)
    assert delivered is not None
    assert delivered.state is AlertState.DELIVERED


async def test_invalid_stored_url_is_dead_at_once(store: Store, clock: Clock) -> None:
    alert_id = await store.enqueue(await store.subscribe("ftp://hooks.example.com/x"))
    await deliver_once(store, clock)
    item = await store.outbox.get(alert_id)
    assert item is not None
    assert item.state is AlertState.DEAD
    assert item.last_error is not None
    assert item.last_error.startswith("invalid target")


async def test_an_unexpected_error_is_a_failed_attempt_not_a_stuck_alert(
    store: Store, clock: Clock
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    alert_id = await store.enqueue(await store.subscribe("http://127.0.0.1:9/hook"))
    client = httpx.AsyncClient(transport=httpx.MockTransport(broken))
    sender = make_sender(store, clock, client=client)
    try:
        assert await sender.deliver_due() == 1
    finally:
        await client.aclose()
        await sender.aclose()
    item = await store.outbox.get(alert_id)
    assert item is not None
    assert (item.state, item.last_error) == (AlertState.PENDING, "unexpected error: RuntimeError")
    assert item.next_attempt_at == T0 + timedelta(seconds=2)


# --- leases: crashes and concurrent senders --------------------------------------------------


async def test_an_alert_claimed_by_a_crashed_sender_is_delivered_once_after_the_lease(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    # A sender claims it, then dies before sending.
    assert [d.item.id for d in await store.outbox.claim(clock.now, 10, timedelta(seconds=40))]
    sender = make_sender(store, clock)
    try:
        assert await sender.deliver_due() == 0
        clock.advance(41)
        assert await sender.deliver_due() == 1
        clock.advance(3600)
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    assert [r.headers["x-wahealth-alert-id"] for r in receiver.requests] == [alert_id]


async def test_an_alert_that_keeps_crashing_senders_runs_out_of_attempts(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    alert_id = await store.enqueue(await store.subscribe(hook_url))
    for _ in range(3):
        await store.outbox.claim(clock.now, 10, timedelta(seconds=1))
        clock.advance(2)
    sender = make_sender(store, clock, max_attempts=3)
    try:
        await sender.deliver_due()
    finally:
        await sender.aclose()
    assert receiver.requests == []
    item = await store.outbox.get(alert_id)
    assert item is not None
    assert item.state is AlertState.DEAD
    assert item.last_error == "gave up after 3 interrupted attempts"


async def test_two_senders_on_one_database_deliver_each_alert_once(
    store: Store, receiver: Receiver, hook_url: str, clock: Clock
) -> None:
    subscription = await store.subscribe(hook_url)
    alert_ids = [await store.enqueue(subscription) for _ in range(12)]
    engine = create_engine(store.url)
    other_outbox = OutboxRepository(session_factory(engine))
    first = make_sender(store, clock, concurrency=3)
    second = OutboxSender(
        other_outbox,
        store.secretbox,
        allow_private_targets=True,
        max_attempts=5,
        clock=clock,
        concurrency=3,
    )
    try:
        handled = await asyncio.gather(first.deliver_due(), second.deliver_due())
    finally:
        await first.aclose()
        await second.aclose()
        await engine.dispose()
    assert sum(handled) == 12
    assert sorted(r.headers["x-wahealth-alert-id"] for r in receiver.requests) == sorted(alert_ids)


# --- the loop --------------------------------------------------------------------------------


async def test_run_delivers_when_woken_and_stops(
    store: Store, receiver: Receiver, hook_url: str
) -> None:
    subscription = await store.subscribe(hook_url)
    sender = OutboxSender(
        store.outbox,
        store.secretbox,
        allow_private_targets=True,
        max_attempts=3,
        poll_interval_seconds=3600,
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(sender.run(stop))
    try:
        await asyncio.sleep(0)
        alert_id = await store.enqueue(subscription)
        sender.wake()
        assert await asyncio.to_thread(receiver.arrived.wait, 10)
        stop.set()
        async with asyncio.timeout(10):
            await loop
    finally:
        stop.set()
        await sender.aclose()
    assert [r.headers["x-wahealth-alert-id"] for r in receiver.requests] == [alert_id]
