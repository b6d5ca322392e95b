"""`wahealth sync`, `refresh` and `history` against a Meta emulator on a socket and SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from wahealth.cli import app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, load_scenario

GRAPH_TOKEN = "graph-cli-token"
BLOCKED_PHONE = "106540352242999"  # AVAILABLE itself, BLOCKED through its WABA (141006)
TEMPLATE = "2632273056924580"  # the sync brings numbers' health, not templates'


@pytest.fixture
def meta() -> Iterator[RunningServer]:
    """Meta, as far as these commands can tell: the demo scenario served on a real socket."""
    with serve_in_thread(create_emulator(load_scenario(None))) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meta: RunningServer) -> Path:
    for name in ("WAHEALTH_CONFIG", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
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

    # The number was first seen by the sync (its page brought its health); the template by
    # the refresh.
    as_json = _cli(config, "history", BLOCKED_PHONE, "--json")
    assert as_json.exit_code == 0, as_json.output
    [transition] = json.loads(as_json.stdout)
    assert {k: transition[k] for k in ("node_id", "before", "after", "error_codes", "cause")} == {
        "node_id": BLOCKED_PHONE,
        "before": None,
        "after": "BLOCKED",
        "error_codes": ["141006"],
        "cause": "sync",
    }
    [template] = json.loads(_cli(config, "history", TEMPLATE, "--json").stdout)
    assert (template["before"], template["cause"]) == (None, "manual")

    # Unchanged: a second refresh stores nothing new.
    assert _cli(config, "refresh").exit_code == 0
    assert len(json.loads(_cli(config, "history", BLOCKED_PHONE, "--json").stdout)) == 1

    table = _cli(config, "history", BLOCKED_PHONE)
    assert table.exit_code == 0
    assert f"History of {BLOCKED_PHONE}" in table.stdout
    for text in ("sync", "(first seen)", "BLOCKED", "141006"):
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


def test_history_of_a_known_node_not_yet_refreshed_is_empty(config: Path) -> None:
    assert _cli(config, "sync").exit_code == 0
    result = _cli(config, "history", TEMPLATE, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    table = _cli(config, "history", TEMPLATE)
    assert table.exit_code == 0
    assert f"no transitions recorded for node {TEMPLATE}" in table.stderr


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_history_of_an_unknown_node_is_not_found(config: Path, as_json: list[str]) -> None:
    assert _cli(config, "sync").exit_code == 0
    result = _cli(config, "history", "123456", *as_json)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: no node 123456: nothing recorded for it and it is not in the catalog "
        "(a phone number, template or WABA id of a configured space)\n"
    )


def test_history_without_storage_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "bare.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "none.db"}"\n')
    result = _cli(config, "history", "123456")
    assert result.exit_code == 2
    assert "cannot read the history" in result.stderr
    assert "Traceback" not in result.output
