"""`wahealth alerts`: subscriptions and the outbox, from the command line, on real SQLite."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wahealth.app import prepare_storage
from wahealth.auth.secretbox import SecretBox
from wahealth.cli import app
from wahealth.domain.records import PlannedAlert
from wahealth.settings import load_settings
from wahealth.storage import HealthRepository, OutboxRepository, create_engine, session_factory

CONFIG = """
[storage]
url = "sqlite+aiosqlite:///{db}"

[security]
master_key_file = "{key}"

[monitor]
enabled = false

[alerts]
allow_private_targets = {allow}

[[accounts]]
name = "acme"

[[spaces]]
id = "acme-space"
account = "acme"
"""

HOOK = "http://127.0.0.1:9/hook"


def write_config(tmp_path: Path, *, allow_private: bool) -> Path:
    path = tmp_path / f"wahealth-{allow_private}.toml"
    path.write_text(
        CONFIG.format(
            db=tmp_path / "wahealth.db",
            key=tmp_path / "wahealth.key",
            allow="true" if allow_private else "false",
        )
    )
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("WAHEALTH_MASTER_KEY", raising=False)
    monkeypatch.delenv("WAHEALTH_CONFIG", raising=False)
    monkeypatch.delenv("WAHEALTH_ALERT_SECRET", raising=False)
    path = write_config(tmp_path, allow_private=True)
    asyncio.run(prepare_storage(load_settings(path)))
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def add(runner: CliRunner, config: Path, *extra: str, url: str = HOOK) -> dict[str, object]:
    result = runner.invoke(
        app,
        [
            "alerts",
            "add",
            "--space",
            "acme-space",
            "--url",
            url,
            "--secret",
            "s3cret",
            "--json",
            *list(extra),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.stderr
    created: dict[str, object] = json.loads(result.stdout)
    return created


def test_add_and_list_never_show_the_secret(
    runner: CliRunner, config: Path, tmp_path: Path
) -> None:
    created = add(runner, config, "--on", "blocked,RECOVERED", "--format", "slack")
    assert created["url"] == HOOK
    assert created["on"] == ["BLOCKED", "RECOVERED"]
    assert (created["format"], created["signed"]) == ("slack", True)
    listed = runner.invoke(app, ["alerts", "list", "--json", "--config", str(config)])
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == [created]
    table = runner.invoke(app, ["alerts", "list", "--config", str(config)], env={"COLUMNS": "200"})
    assert HOOK in table.stdout
    assert "BLOCKED,RECOVERED" in table.stdout
    assert "s3cret" not in listed.stdout + table.stdout

    async def stored_secret() -> str:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}")
        try:
            [sub] = await OutboxRepository(session_factory(engine)).list_subscriptions()
        finally:
            await engine.dispose()
        assert sub.secret_encrypted is not None
        return SecretBox.load(None, tmp_path / "wahealth.key").decrypt(sub.secret_encrypted)

    assert asyncio.run(stored_secret()) == "s3cret"


def test_secret_from_the_environment(runner: CliRunner, config: Path) -> None:
    result = runner.invoke(
        app,
        ["alerts", "add", "--space", "acme-space", "--url", HOOK, "--config", str(config)],
        env={"WAHEALTH_ALERT_SECRET": "from-env"},
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("added subscription 1: space acme-space -> " + HOOK)


def test_add_refusals(runner: CliRunner, config: Path, tmp_path: Path) -> None:
    add(runner, config)
    base = ["alerts", "add", "--secret", "x", "--config", str(config)]
    again = runner.invoke(app, [*base, "--space", "acme-space", "--url", HOOK])
    assert again.exit_code == 3
    assert "already subscribed" in again.stderr
    nowhere = runner.invoke(app, [*base, "--space", "nowhere", "--url", HOOK + "2"])
    assert nowhere.exit_code == 1
    assert "no space 'nowhere'" in nowhere.stderr
    bad_event = runner.invoke(app, [*base, "--space", "acme-space", "--url", HOOK, "--on", "X"])
    assert bad_event.exit_code == 2
    ftp = runner.invoke(app, [*base, "--space", "acme-space", "--url", "ftp://h.example/"])
    assert ftp.exit_code == 2
    assert "only http and https" in ftp.stderr

    strict = write_config(tmp_path, allow_private=False)
    private = runner.invoke(
        app,
        [
            "alerts",
            "add",
            "--secret",
            "x",
            "--config",
            str(strict),
            "--space",
            "acme-space",
            "--url",
            "http://10.0.0.8/hook",
        ],
    )
    assert private.exit_code == 2
    assert "target refused: 10.0.0.8 is not a public address" in private.stderr
    assert "allow_private_targets" in private.stderr


def test_remove(runner: CliRunner, config: Path) -> None:
    created = add(runner, config)
    removed = runner.invoke(app, ["alerts", "remove", str(created["id"]), "--config", str(config)])
    assert removed.exit_code == 0
    assert f"removed subscription {created['id']}" in removed.stdout
    again = runner.invoke(app, ["alerts", "remove", str(created["id"]), "--config", str(config)])
    assert again.exit_code == 1
    listed = runner.invoke(app, ["alerts", "list", "--json", "--config", str(config)])
    assert json.loads(listed.stdout) == []


async def _dead_alert(db: Path, subscription_id: int) -> str:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        sessions = session_factory(engine)
        payload = {"health_status": {"can_send_message": "BLOCKED", "entities": []}, "id": "42"}
        await HealthRepository(sessions).record(
            "42",
            "PHONE_NUMBER",
            "acme-space",
            "BLOCKED",
            payload,
            ["141006"],
            datetime(2026, 6, 1, tzinfo=UTC),
            "poll",
            alerts=[PlannedAlert(subscription_id, "BLOCKED", {"node_id": "42"}, "alert-dead-1")],
        )
        await OutboxRepository(sessions).mark_dead("alert-dead-1", "HTTP 500 (gave up)")
    finally:
        await engine.dispose()
    return "alert-dead-1"


def test_outbox_shows_dead_alerts_and_retry_revives_them(
    runner: CliRunner, config: Path, tmp_path: Path
) -> None:
    created = add(runner, config)
    alert_id = asyncio.run(_dead_alert(tmp_path / "wahealth.db", int(str(created["id"]))))
    opts = ["--config", str(config)]

    dead = runner.invoke(app, ["alerts", "outbox", "--state", "dead", "--json", *opts])
    assert dead.exit_code == 0
    [row] = json.loads(dead.stdout)
    assert (row["alert_id"], row["state"], row["node_id"], row["last_error"]) == (
        alert_id,
        "dead",
        "42",
        "HTTP 500 (gave up)",
    )
    table = runner.invoke(app, ["alerts", "outbox", *opts], env={"COLUMNS": "200"})
    assert alert_id in table.stdout
    assert "HTTP 500 (gave up)" in table.stdout
    pending = runner.invoke(app, ["alerts", "outbox", "--state", "pending", "--json", *opts])
    assert json.loads(pending.stdout) == []

    retried = runner.invoke(app, ["alerts", "retry", alert_id, *opts])
    assert retried.exit_code == 0
    assert f"alert {alert_id} is pending again" in retried.stdout
    pending = runner.invoke(app, ["alerts", "outbox", "--state", "pending", "--json", *opts])
    [row] = json.loads(pending.stdout)
    assert (row["alert_id"], row["attempts"]) == (alert_id, 0)

    again = runner.invoke(app, ["alerts", "retry", alert_id, *opts])
    assert again.exit_code == 3
    assert "not dead" in again.stderr
    unknown = runner.invoke(app, ["alerts", "retry", "no-such-alert", *opts])
    assert unknown.exit_code == 1
