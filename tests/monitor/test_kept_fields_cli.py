"""`wahealth history` and `wahealth alerts` show and choose the changes of kept fields.

Meta is the demo scenario on a real socket; the commands run as users run them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from wahealth.cli import app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, load_scenario

PHONE = "106540352242922"


@pytest.fixture
def meta() -> Iterator[RunningServer]:
    with serve_in_thread(create_emulator(load_scenario(None))) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meta: RunningServer) -> Path:
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f"""
[upstream]
kind = "meta"
base_url = "{meta.base_url}"
access_token = "demo-meta-token"

[storage]
url = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"

[security]
master_key_file = "{tmp_path / "wahealth.key"}"

[alerts]
allow_private_targets = true

[[spaces]]
id = "demo-space"
account = "demo"
wabas = ["102290129340398"]

[[accounts]]
name = "demo"
""",
        "utf-8",
    )
    return path


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "200"})


def test_history_shows_a_quality_drop_the_refresh_saw(config: Path, meta: RunningServer) -> None:
    assert _cli(config, "sync").exit_code == 0
    assert _cli(config, "refresh").exit_code == 0
    changed = httpx.patch(
        f"{meta.base_url}/_emulator/nodes/{PHONE}",
        json={"quality_rating": "RED", "status": "FLAGGED"},
    )
    assert changed.status_code == 200
    refreshed = _cli(config, "refresh")
    assert refreshed.exit_code == 0, refreshed.output
    assert "4 of 4 node(s) refreshed with 4 Graph call(s)" in refreshed.stdout

    as_json = _cli(config, "history", PHONE, "--json")
    assert as_json.exit_code == 0, as_json.output
    newest_first = json.loads(as_json.stdout)
    steps = [(t["field"], t["before"], t["after"], t["cause"]) for t in newest_first]
    assert sorted(steps[:2]) == [
        ("quality_rating", "GREEN", "RED", "manual"),
        ("status", "CONNECTED", "FLAGGED", "manual"),
    ]
    assert steps[2] == (None, None, "AVAILABLE", "sync")  # its health, first seen by the sync

    table = _cli(config, "history", PHONE)
    assert table.exit_code == 0
    rows = [line for line in table.stdout.splitlines() if "quality_rating" in line]
    assert len(rows) == 1
    for text in ("manual", "GREEN", "RED"):
        assert text in rows[0]


def test_alerts_can_choose_the_new_events(config: Path) -> None:
    assert _cli(config, "sync").exit_code == 0
    added = _cli(
        config,
        "alerts",
        "add",
        "--space",
        "demo-space",
        "--url",
        "http://127.0.0.1:9/quality",
        "--secret",
        "s",
        "--on",
        "quality,limit,NUMBER_STATUS,TEMPLATE_STATUS",
        "--json",
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["on"] == [
        "QUALITY",
        "LIMIT",
        "NUMBER_STATUS",
        "TEMPLATE_STATUS",
    ]
    refused = _cli(
        config,
        "alerts",
        "add",
        "--space",
        "demo-space",
        "--url",
        "http://127.0.0.1:9/other",
        "--secret",
        "s",
        "--on",
        "QUALITY,PURPLE",
    )
    assert refused.exit_code == 2
    assert "TEMPLATE_STATUS" in refused.stderr
