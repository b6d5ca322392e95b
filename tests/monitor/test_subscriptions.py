"""`[[alerts.subscriptions]]` applied at start: added, kept, updated, or refused clearly.

Storage is SQLite, and PostgreSQL too when WAHEALTH_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.auth.secretbox import SecretBox
from wahealth.domain.records import AlertFormat, AlertState, OutboxItem, PlannedAlert, Subscription
from wahealth.monitor import targets
from wahealth.monitor.outbox import OutboxSender
from wahealth.monitor.payloads import SignatureError, verify
from wahealth.monitor.subscriptions import SubscriptionConfigError, apply_subscriptions
from wahealth.settings import Settings
from wahealth.storage import (
    HealthRepository,
    OutboxRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.storage._session import Factory
from wahealth.testing_server import serve_in_thread

SPACE = "acme-space"
POSTGRES_ENV = "WAHEALTH_TEST_POSTGRES_URL"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("subscriptions") / "migrated.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path, migrated: Path
) -> AsyncIterator[Factory]:
    """A migrated database with account `acme` owning `acme-space`."""
    if request.param == "sqlite":
        path = tmp_path / "wahealth.db"
        shutil.copyfile(migrated, path)
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        schema = None
    else:
        url = os.environ.get(POSTGRES_ENV)
        if not url:
            pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL subscription tests skipped")
        schema = f"wahealth_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(url)
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        if schema is not None:
            await upgrade(engine)
        factory = session_factory(engine)
        tenancy = TenancyRepository(factory)
        await tenancy.upsert_account("acme", 5)
        await tenancy.upsert_space(SPACE, "acme")
        yield factory
    finally:
        await engine.dispose()
        if schema is not None:
            async with admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


@pytest.fixture
def outbox(sessions: Factory) -> OutboxRepository:
    return OutboxRepository(sessions)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_key(Fernet.generate_key().decode())


def settings(*subscriptions: dict[str, Any], allow_private: bool = True) -> Settings:
    return Settings.model_validate(
        {
            "alerts": {
                "allow_private_targets": allow_private,
                "subscriptions": list(subscriptions),
            }
        }
    )


HOOK = {"space": SPACE, "url": "http://127.0.0.1:9000/hook", "secret": "s1"}
SLACK = {
    "space": SPACE,
    "url": "http://127.0.0.1:9000/slack",
    "secret": "s2",
    "on": ["BLOCKED"],
    "format": "slack",
}


async def stored(outbox: OutboxRepository) -> dict[str, Subscription]:
    return {s.url: s for s in await outbox.list_subscriptions(SPACE, include_disabled=True)}


async def test_configured_subscriptions_are_added_with_encrypted_secrets(
    outbox: OutboxRepository, box: SecretBox
) -> None:
    await apply_subscriptions(settings(HOOK, SLACK), outbox, box)
    subs = await stored(outbox)
    hook, slack = subs[HOOK["url"]], subs[SLACK["url"]]
    assert (hook.on_events, hook.format) == (("BLOCKED", "LIMITED", "RECOVERED"), AlertFormat.JSON)
    assert (slack.on_events, slack.format) == (("BLOCKED",), AlertFormat.SLACK)
    assert hook.secret_encrypted is not None
    assert hook.secret_encrypted != "s1"
    assert hook.secret_encrypted.startswith("gAAAAA")  # a Fernet token, not the secret
    assert box.decrypt(hook.secret_encrypted) == "s1"


async def test_applying_again_changes_nothing(outbox: OutboxRepository, box: SecretBox) -> None:
    await apply_subscriptions(settings(HOOK, SLACK), outbox, box)
    before = await stored(outbox)
    await apply_subscriptions(settings(HOOK, SLACK), outbox, box)
    assert await stored(outbox) == before


async def test_a_changed_entry_is_updated_in_place_and_others_are_kept(
    outbox: OutboxRepository, box: SecretBox
) -> None:
    await apply_subscriptions(settings(HOOK), outbox, box)
    cli_added = await outbox.add_subscription(SPACE, "https://cli.example.com/x")
    old = (await stored(outbox))[HOOK["url"]]
    changed = {**HOOK, "secret": "s1-rotated", "on": ["BLOCKED", "ANY"], "format": "slack"}
    await apply_subscriptions(settings(changed), outbox, box)
    subs = await stored(outbox)
    new = subs[HOOK["url"]]
    assert (new.id, new.created_at, new.disabled_at) == (old.id, old.created_at, None)
    assert (new.on_events, new.format) == (("BLOCKED", "ANY"), AlertFormat.SLACK)
    assert new.secret_encrypted is not None
    assert box.decrypt(new.secret_encrypted) == "s1-rotated"
    assert subs[cli_added.url] == cli_added
    assert len(subs) == 2


async def test_a_paused_subscription_stays_paused_when_its_entry_changes(
    outbox: OutboxRepository, box: SecretBox
) -> None:
    await apply_subscriptions(settings(HOOK), outbox, box)
    paused = await outbox.set_subscription_disabled((await stored(outbox))[HOOK["url"]].id, True)
    await apply_subscriptions(settings({**HOOK, "secret": "s1-rotated"}), outbox, box)
    after = (await stored(outbox))[HOOK["url"]]
    assert (after.id, after.disabled_at) == (paused.id, paused.disabled_at)
    assert after.secret_encrypted is not None
    assert box.decrypt(after.secret_encrypted) == "s1-rotated"


async def test_an_entry_removed_from_the_config_is_left_stored(
    outbox: OutboxRepository, box: SecretBox
) -> None:
    await apply_subscriptions(settings(HOOK, SLACK), outbox, box)
    before = await stored(outbox)
    await apply_subscriptions(settings(HOOK), outbox, box)
    assert await stored(outbox) == before
    await apply_subscriptions(settings(), outbox, box)
    assert await stored(outbox) == before


# --- pending alerts survive a changed entry and go out with the new secret ------------------


class Receiver:
    """Records each POST it gets on 127.0.0.1 and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.requests.append((dict(request.headers), body))
        return Response("ok")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.hook, methods=["POST"])])


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as server:
        yield receiver, f"{server.base_url}/hook"


async def _enqueue(sessions: Factory, subscription_id: int, alert_id: str) -> None:
    """Record a BLOCKED transition with one alert for the subscription (not delivered)."""
    node_id = "106540352242999"
    document = {
        "event": "BLOCKED",
        "node_id": node_id,
        "node_kind": "PHONE_NUMBER",
        "space_id": SPACE,
        "before": "AVAILABLE",
        "after": "BLOCKED",
        "error_codes": ["141006"],
        "errors": [],
        "additional_info": [],
        "cause": "poll",
        "occurred_at": T0.isoformat(),
        "transition_id": 1,
        "grouped": 1,
    }
    payload = {"health_status": {"can_send_message": "BLOCKED", "entities": []}, "id": node_id}
    await HealthRepository(sessions).record(
        node_id,
        "PHONE_NUMBER",
        SPACE,
        "BLOCKED",
        payload,
        ["141006"],
        T0 - timedelta(minutes=1),
        "poll",
        alerts=[PlannedAlert(subscription_id, "BLOCKED", document, alert_id)],
    )


async def _pending(outbox: OutboxRepository) -> list[OutboxItem]:
    return await outbox.list_alerts(AlertState.PENDING, space_id=SPACE)


async def test_pending_alerts_survive_a_changed_entry_and_use_the_new_secret(
    sessions: Factory,
    outbox: OutboxRepository,
    box: SecretBox,
    receiver_url: tuple[Receiver, str],
) -> None:
    receiver, url = receiver_url
    receiver.requests.clear()
    entry = {"space": SPACE, "url": url, "secret": "old-secret", "on": ["BLOCKED"]}
    await apply_subscriptions(settings(entry), outbox, box)
    [subscription] = (await stored(outbox)).values()
    await _enqueue(sessions, subscription.id, "alert-kept")
    [waiting] = await _pending(outbox)

    # The restart with a rotated secret, more events and another format.
    rotated = {**entry, "secret": "new-secret", "on": ["BLOCKED", "RECOVERED"], "format": "slack"}
    await apply_subscriptions(settings(rotated), outbox, box)

    [updated] = (await stored(outbox)).values()
    assert updated.id == subscription.id
    assert updated.format is AlertFormat.SLACK
    assert await _pending(outbox) == [waiting]  # same row: id, payload, attempts, due time
    assert waiting.subscription_id == subscription.id

    sender = OutboxSender(outbox, box, allow_private_targets=True, max_attempts=3, clock=lambda: T0)
    try:
        assert await sender.deliver_due() == 1
    finally:
        await sender.aclose()
    [(headers, body)] = receiver.requests
    assert headers["x-wahealth-alert-id"] == "alert-kept"
    signature = headers["x-wahealth-signature"]
    assert verify(signature, body, "new-secret", now=T0.timestamp()) == int(T0.timestamp())
    with pytest.raises(SignatureError):
        verify(signature, body, "old-secret", now=T0.timestamp())
    assert set(orjson.loads(body)) == {"text", "blocks"}  # rendered as Slack now
    delivered = await outbox.get("alert-kept")
    assert delivered is not None
    assert delivered.state is AlertState.DELIVERED


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://[::1]/hook", "http://169.254.169.254/"]
)
async def test_private_targets_are_refused_unless_allowed(
    outbox: OutboxRepository, box: SecretBox, url: str
) -> None:
    entry = {**HOOK, "url": url}
    with pytest.raises(SubscriptionConfigError) as refused:
        await apply_subscriptions(settings(entry, allow_private=False), outbox, box)
    message = str(refused.value)
    assert message.startswith("alerts.subscriptions[0]")
    assert url in message
    assert "not a public address" in message
    assert "allow_private_targets" in message
    assert await stored(outbox) == {}


async def test_a_name_resolving_to_a_private_address_is_refused(
    outbox: OutboxRepository, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["192.168.0.10"]

    monkeypatch.setattr(targets, "resolve", resolve)
    entry = {**HOOK, "url": "https://hooks.example.com/x"}
    with pytest.raises(SubscriptionConfigError, match=r"resolves to 192\.168\.0\.10"):
        await apply_subscriptions(settings(entry, allow_private=False), outbox, box)
    assert await stored(outbox) == {}


async def test_one_bad_entry_changes_nothing(
    outbox: OutboxRepository, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    monkeypatch.setattr(targets, "resolve", resolve)
    good = {**HOOK, "url": "https://hooks.example.com/x"}
    with pytest.raises(SubscriptionConfigError, match=r"alerts\.subscriptions\[1\]"):
        await apply_subscriptions(settings(good, HOOK, allow_private=False), outbox, box)
    assert await stored(outbox) == {}


async def test_a_public_name_is_accepted(
    outbox: OutboxRepository, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    monkeypatch.setattr(targets, "resolve", resolve)
    entry = {**HOOK, "url": "https://hooks.example.com/x"}
    await apply_subscriptions(settings(entry, allow_private=False), outbox, box)
    assert list(await stored(outbox)) == ["https://hooks.example.com/x"]


async def test_bad_scheme_and_unknown_space_are_refused(
    outbox: OutboxRepository, box: SecretBox
) -> None:
    with pytest.raises(SubscriptionConfigError, match="only http and https"):
        await apply_subscriptions(settings({**HOOK, "url": "ftp://x.example/"}), outbox, box)
    with pytest.raises(SubscriptionConfigError, match="there is no space 'nowhere'"):
        await apply_subscriptions(settings({**HOOK, "space": "nowhere"}), outbox, box)
