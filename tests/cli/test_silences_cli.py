"""`wahealth alerts ack / silence / silences / unsilence`, on real SQLite, as users run them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wahealth.app import prepare_storage
from wahealth.cli import app
from wahealth.settings import load_settings
from wahealth.storage import HealthRepository, create_engine, session_factory

WABA = "299399000000001"
CONFIG = """
[storage]
url = "sqlite+aiosqlite:///{db}"

[security]
master_key_file = "{key}"

[monitor]
enabled = false

[[accounts]]
name = "acme"

[[spaces]]
id = "acme-space"
account = "acme"
wabas = ["{waba}"]
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("WAHEALTH_MASTER_KEY", raising=False)
    monkeypatch.delenv("WAHEALTH_CONFIG", raising=False)
    monkeypatch.setenv("USER", "ops-shell")
    path = tmp_path / "wahealth.toml"
    path.write_text(
        CONFIG.format(db=tmp_path / "wahealth.db", key=tmp_path / "wahealth.key", waba=WABA)
    )
    asyncio.run(prepare_storage(load_settings(path)))
    return path


def record_blocked(tmp_path: Path) -> None:
    async def work() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}")
        try:
            await HealthRepository(session_factory(engine)).record(
                WABA,
                "WABA",
                "acme-space",
                "BLOCKED",
                {"can_send_message": "BLOCKED", "entities": []},
                ["141006"],
                datetime.now(UTC),
                "poll",
            )
        finally:
            await engine.dispose()

    asyncio.run(work())


def test_ack_then_silence_a_waba_list_and_lift_it(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(
            app, ["alerts", *args, "--config", str(config)], env={"COLUMNS": "200"}
        )
        return result.exit_code, result.output

    code, output = run("ack", WABA)
    assert (code, "AVAILABLE or not checked yet" in output) == (3, True)
    record_blocked(tmp_path)
    code, output = run("ack", WABA, "--note", "billing is on it", "--by", "alice", "--json")
    assert code == 0, output
    acked = json.loads(output)
    assert (acked["status"], acked["acknowledged_by"], acked["note"]) == (
        "BLOCKED",
        "alice",
        "billing is on it",
    )

    code, output = run("silence", "--waba", WABA, "--for", "2h", "--reason", "migration", "--json")
    assert code == 0, output
    created = json.loads(output)
    assert (created["scope"], created["scope_id"], created["space_id"]) == (
        "waba",
        WABA,
        "acme-space",
    )
    assert (created["reason"], created["created_by"]) == ("migration", "ops-shell")
    code, output = run("silences", "--json")
    assert [s["id"] for s in json.loads(output)] == [created["id"]]
    code, output = run("silences")
    assert code == 0
    assert "migration" in output
    assert WABA in output

    assert run("silence", "--node", "123456789", "--for", "1h")[0] == 1
    assert (
        run("silence", "--space", "acme-space", "--for", "1h", "--until", "2999-01-01T00:00Z")[0]
        == 2
    )
    assert run("silence", "--space", "acme-space", "--for", "later")[0] == 2
    assert run("silence", "--for", "1h")[0] == 2

    code, output = run("unsilence", str(created["id"]))
    assert (code, f"silence {created['id']} lifted" in output) == (0, True)
    assert json.loads(run("silences", "--json")[1]) == []
    assert run("unsilence", "999")[0] == 1
