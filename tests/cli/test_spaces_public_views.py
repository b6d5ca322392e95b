"""`wahealth spaces create|set|list` with the public views, the config's opt-ins, and a server
that follows them without a restart."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from wahealth.app import prepare_storage
from wahealth.auth.secretbox import SecretBox
from wahealth.cli import app
from wahealth.settings import load_settings
from wahealth.testing import running_app

Invoke = Callable[..., Result]
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
CONFIG = """[storage]
url = "sqlite+aiosqlite:///{db}"
[security]
master_key_file = "{key}"
[monitor]
enabled = false
[[accounts]]
name = "configured"
[[spaces]]
id = "configured-space"
account = "configured"
wabas = ["102290129340398"]
{options}
"""


def _write(path: Path, options: str = "") -> None:
    tmp = path.parent
    path.write_text(
        CONFIG.format(db=tmp / "wahealth.db", key=tmp / "wahealth.key", options=options),
        encoding="utf-8",
    )


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY", *_PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    SecretBox.load(None, tmp_path / "wahealth.key")
    path = tmp_path / "wahealth.toml"
    _write(path)
    return path


@pytest.fixture
def cli(config_path: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [*args, "--config", str(config_path)], env={"COLUMNS": "200"})

    return invoke


def _ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def _views(config_path: Path) -> dict[str, tuple[int, int]]:
    connection = sqlite3.connect(config_path.parent / "wahealth.db")
    try:
        rows = connection.execute("SELECT id, badges, public_status FROM spaces").fetchall()
    finally:
        connection.close()
    return {space: (badges, public) for space, badges, public in rows}


def _listed(cli: Invoke) -> dict[str, tuple[bool, bool]]:
    spaces: list[dict[str, Any]] = json.loads(_ok(cli("spaces", "list", "--json")))
    return {s["id"]: (s["badges"], s["public_status"]) for s in spaces}


def test_create_set_and_list(cli: Invoke, config_path: Path) -> None:
    asyncio.run(prepare_storage(load_settings(config_path)))  # as a server's start would
    assert _ok(cli("spaces", "create", "acme-space", "--account", "configured", "--badges")) == (
        "created space acme-space for account configured\n"
    )
    _ok(cli("spaces", "create", "quiet-space", "--account", "configured"))
    assert _views(config_path) == {
        "configured-space": (0, 0),
        "acme-space": (1, 0),
        "quiet-space": (0, 0),
    }
    assert _ok(cli("spaces", "set", "acme-space", "--public-status", "--no-badges")) == (
        "space acme-space: public views status page\n"
    )
    assert _ok(cli("spaces", "set", "quiet-space", "--badges", "--public-status")) == (
        "space quiet-space: public views badges, status page\n"
    )
    assert _listed(cli) == {
        "acme-space": (False, True),
        "configured-space": (False, False),
        "quiet-space": (True, True),
    }
    table = _ok(cli("spaces", "list"))
    cells = [row.split("│") for row in table.splitlines() if row.startswith("│")]
    assert {cell[1].strip(): cell[4].strip() for cell in cells} == {
        "acme-space": "status page",
        "configured-space": "none",
        "quiet-space": "badges, status page",
    }

    unknown = cli("spaces", "set", "nowhere", "--badges")
    assert (unknown.exit_code, unknown.stderr) == (1, "error: no space 'nowhere'\n")
    nothing = cli("spaces", "set", "acme-space")
    assert nothing.exit_code == 2
    assert nothing.stderr.startswith("error: nothing to set")
    assert _views(config_path)["acme-space"] == (0, 1)


def test_the_config_sets_an_opt_in_only_when_it_names_it(cli: Invoke, config_path: Path) -> None:
    settings = load_settings(config_path)
    asyncio.run(prepare_storage(settings))
    _ok(cli("spaces", "set", "configured-space", "--badges"))
    asyncio.run(prepare_storage(load_settings(config_path)))  # a restart
    assert _views(config_path)["configured-space"] == (1, 0)  # unset in the file: kept

    _write(config_path, "badges = false\npublic_status = true")
    asyncio.run(prepare_storage(load_settings(config_path)))
    assert _views(config_path)["configured-space"] == (0, 1)


async def test_a_running_server_follows_the_cli(cli: Invoke, config_path: Path) -> None:
    async with running_app(load_settings(config_path)) as running:
        before = await running.client.get("/status/configured-space.json")
        # The CLI, beside the server, in a thread of its own (it runs its own event loop).
        assert _ok(
            await asyncio.to_thread(cli, "spaces", "set", "configured-space", "--public-status")
        )
        after = await running.client.get("/status/configured-space.json")
    assert before.status_code == 404
    assert after.status_code == 200
    assert after.json()["space"] == "configured-space"
