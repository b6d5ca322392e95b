"""Alert subscriptions through the admin API: a tenant manages its own spaces' webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wahealth.storage.models import AlertSubscriptionRow
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

ADMIN = "/api/v1/admin"
HOOK = "https://8.8.8.8/wahealth-hook"  # a public address given literally: no DNS lookup


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with running_app(demo_settings(tmp_path)) as app:
        yield app


async def test_a_tenant_adds_changes_pauses_and_removes_its_space_webhook(
    running: RunningApp,
) -> None:
    _, token = await running.components.admin_tokens.issue("portal", DEMO.account)
    headers = {"Authorization": f"Bearer {token}"}
    client = running.client
    base = f"{ADMIN}/spaces/{DEMO.space}/subscriptions"
    body = {"url": HOOK, "secret": "s3cret", "on": ["BLOCKED", "QUALITY"]}
    created = await client.post(base, json=body, headers=headers)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert (shown["space"], shown["url"], shown["on"], shown["signed"]) == (
        DEMO.space,
        HOOK,
        ["BLOCKED", "QUALITY"],
        True,
    )
    assert "secret" not in shown
    async with running.components.sessions() as session:
        row = await session.get(AlertSubscriptionRow, shown["id"])
    assert row is not None
    assert row.secret_encrypted
    assert "s3cret" not in row.secret_encrypted

    again = await client.post(base, json=body, headers=headers)
    assert again.status_code == 409
    one = f"{ADMIN}/subscriptions/{shown['id']}"
    paused = await client.patch(one, json={"paused": True, "format": "slack"}, headers=headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["format"] == "slack"
    assert paused.json()["paused_at"] is not None
    listed = (await client.get(base, headers=headers)).json()
    assert [sub["id"] for sub in listed] == [shown["id"]]

    # Another account's space and its subscriptions are not there for this token.
    other = f"{ADMIN}/spaces/{DEMO.other_space}/subscriptions"
    assert (await client.post(other, json=body, headers=headers)).status_code == 404
    assert (await client.get(other, headers=headers)).status_code == 404

    removed = await client.delete(one, headers=headers)
    assert removed.json() == {"id": shown["id"], "dropped_alerts": True}
    assert (await client.delete(one, headers=headers)).status_code == 404
    audit = (await client.get(f"{ADMIN}/audit", headers=headers)).json()["entries"]
    assert [e["action"] for e in reversed(audit)] == [
        "subscription.add",
        "subscription.update",
        "subscription.remove",
    ]
    # The audit log keeps the webhook's host only, never its path or its secret.
    assert audit[-1]["details"]["host"] == "8.8.8.8"
    assert "wahealth-hook" not in str(audit)
    assert "s3cret" not in str(audit)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "http://127.0.0.1:9/x"}, "target refused: "),
        ({"url": "ftp://example.com/x"}, "url: String should match pattern"),
        ({"url": HOOK, "on": []}, "on: List should have at least 1 item"),
        ({"url": HOOK, "on": ["SOMETIMES"]}, "on.0: Input should be"),
        ({"url": HOOK, "format": "email"}, "format: Input should be 'json' or 'slack'"),
    ],
)
async def test_bad_subscriptions_are_refused_with_the_reason(
    running: RunningApp, body: dict[str, object], message: str
) -> None:
    _, token = await running.components.admin_tokens.issue("ops")
    answer = await running.client.post(
        f"{ADMIN}/spaces/{DEMO.space}/subscriptions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]
