"""`wahealth sync`, `refresh` and `history` against the built-in emulator and a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from wahealth.cli import app

GRAPH_TOKEN = "graph-cli-token"
BLOCKED_PHONE = "106540352242999"  # AVAILABLE itself, BLOCKED through its WABA (141006)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("WAHEALTH_CONFIG", raising=False)
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"

[security]
master_key_file = "{tmp_path / "wahealth.key"}"

[[spaces]]
id = "demo-space"
account = "demo"
wabas = ["102290129340398", "299399000000001"]

[[spaces]]
id = "empty-space"
account = "demo"

[[accounts]]
name = "demo"

[[accounts.graph_tokens]]
token = "{GRAPH_TOKEN}"
""",
        "utf-8",
    )
    return path


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "200"})


def test_refresh_before_any_sync_knows_only_the_configured_wabas(config: Path) -> None:
    result = _cli(config, "refresh")
    assert result.exit_code == 0, result.output
    assert "2 of 2 node(s) refreshed with 2 Graph call(s)" in result.stdout


def test_sync_then_refresh_then_history(config: Path) -> None:
    synced = _cli(config, "sync")
    assert synced.exit_code == 0, synced.output
    assert "│ 102290129340398 │             2 │         1 │ synced │" in synced.stdout
    assert "│ 299399000000001 │             1 │         0 │ synced │" in synced.stdout
    assert "2 WABA(s) synced, 0 failed" in synced.stdout
    assert "syncing WABAs" in synced.stderr  # the progress bar

    refreshed = _cli(config, "refresh")
    assert refreshed.exit_code == 0, refreshed.output
    assert "6 of 6 node(s) refreshed with 6 Graph call(s) (budget 600/min); 0 failed" in (
        refreshed.stdout
    )
    assert "refreshing nodes" in refreshed.stderr

    as_json = _cli(config, "history", BLOCKED_PHONE, "--json")
    assert as_json.exit_code == 0, as_json.output
    [transition] = json.loads(as_json.stdout)
    assert {k: transition[k] for k in ("node_id", "before", "after", "error_codes", "cause")} == {
        "node_id": BLOCKED_PHONE,
        "before": None,
        "after": "BLOCKED",
        "error_codes": ["141006"],
        "cause": "manual",
    }

    # Unchanged: a second refresh stores nothing new.
    assert _cli(config, "refresh").exit_code == 0
    assert len(json.loads(_cli(config, "history", BLOCKED_PHONE, "--json").stdout)) == 1

    table = _cli(config, "history", BLOCKED_PHONE)
    assert table.exit_code == 0
    assert f"History of {BLOCKED_PHONE}" in table.stdout
    for text in ("manual", "(first seen)", "BLOCKED", "141006"):
        assert text in table.stdout


def test_space_option_limits_the_work(config: Path) -> None:
    assert _cli(config, "sync", "--space", "demo-space").exit_code == 0
    empty = _cli(config, "refresh", "--space", "empty-space")
    assert empty.exit_code == 0
    assert "no nodes in the catalog" in empty.stderr
    unknown = _cli(config, "refresh", "--space", "nope")
    assert unknown.exit_code == 1
    assert "there is no space 'nope'" in unknown.stderr
    assert _cli(config, "sync", "--space", "nope").exit_code == 1


def test_history_of_a_node_never_seen_is_empty(config: Path) -> None:
    assert _cli(config, "sync").exit_code == 0
    result = _cli(config, "history", "123456", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
    table = _cli(config, "history", "123456")
    assert "no transitions recorded for node 123456" in table.stderr


def test_history_without_storage_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "bare.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "none.db"}"\n')
    result = _cli(config, "history", "123456")
    assert result.exit_code == 2
    assert "cannot read the history" in result.stderr
    assert "Traceback" not in result.output
