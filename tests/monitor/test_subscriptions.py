"""`[[alerts.subscriptions]]` applied at start: added, kept, replaced, or refused clearly."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from wahealth.auth.secretbox import SecretBox
from wahealth.monitor import targets
from wahealth.monitor.subscriptions import SubscriptionConfigError, apply_subscriptions
from wahealth.settings import Settings
from wahealth.storage import (
    OutboxRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.storage.outbox import AlertFormat, Subscription

SPACE = "acme-space"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("subscriptions") / "migrated.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def outbox(tmp_path: Path, migrated: Path) -> AsyncIterator[OutboxRepository]:
    path = tmp_path / "wahealth.db"
    shutil.copyfile(migrated, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    tenancy = TenancyRepository(sessions)
    await tenancy.upsert_account("acme", 5)
    await tenancy.upsert_space(SPACE, "acme")
    yield OutboxRepository(sessions)
    await engine.dispose()


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
    assert "s1" not in hook.secret_encrypted
    assert box.decrypt(hook.secret_encrypted) == "s1"


async def test_applying_again_changes_nothing(outbox: OutboxRepository, box: SecretBox) -> None:
    await apply_subscriptions(settings(HOOK, SLACK), outbox, box)
    before = await stored(outbox)
    await apply_subscriptions(settings(HOOK, SLACK), outbox, box)
    assert await stored(outbox) == before


async def test_a_changed_entry_is_replaced_and_others_are_kept(
    outbox: OutboxRepository, box: SecretBox
) -> None:
    await apply_subscriptions(settings(HOOK), outbox, box)
    cli_added = await outbox.add_subscription(SPACE, "https://cli.example.com/x")
    old = (await stored(outbox))[HOOK["url"]]
    await apply_subscriptions(settings({**HOOK, "secret": "s1-rotated"}), outbox, box)
    subs = await stored(outbox)
    new = subs[HOOK["url"]]
    assert new.id != old.id
    assert new.secret_encrypted is not None
    assert box.decrypt(new.secret_encrypted) == "s1-rotated"
    assert subs[cli_added.url] == cli_added


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
