"""`wahealth admin-tokens`, `keys rotate|delete`, `accounts update|delete`, `spaces add-waba|
remove-waba|delete`: what they print, what they store, the audit log, exit codes; and an admin
token made by the CLI authenticating on a server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from wahealth.app import create_app
from wahealth.auth.secretbox import SecretBox
from wahealth.cli import app
from wahealth.settings import load_settings
from wahealth.testing_server import serve_in_thread

Invoke = Callable[..., Result]


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    SecretBox.load(None, tmp_path / "wahealth.key")  # now, not in a command's output
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "wahealth.key"}"\n'
        "[monitor]\nenabled = false\n"
        '[[accounts]]\nname = "configured"\n',
        encoding="utf-8",
    )
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


def _json(result: Result) -> Any:
    return json.loads(_ok(result))


def _rows(config_path: Path, query: str) -> list[tuple[Any, ...]]:
    database = config_path.parent / "wahealth.db"
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def test_rotate_keeps_the_old_key_until_the_overlap_and_lists_both(
    cli: Invoke, config_path: Path
) -> None:
    _ok(cli("accounts", "create", "acme"))
    created = _json(cli("keys", "create", "--account", "acme", "--kind", "graph", "--json"))
    rotated = _json(cli("keys", "rotate", created["id"], "--overlap", "2h", "--json"))
    assert rotated["old"]["id"] == created["id"]
    assert rotated["old"]["state"] == "expiring"
    assert rotated["new"]["secret"].startswith("whgr_")
    assert rotated["new"]["id"] != created["id"]
    expires = datetime.fromisoformat(rotated["old"]["expires_at"])
    created_at = datetime.fromisoformat(rotated["new"]["created_at"])
    assert expires - created_at == timedelta(hours=2)

    listed = {k["id"]: k for k in _json(cli("keys", "list", "--json"))}
    assert datetime.fromisoformat(listed[created["id"]]["expires_at"]) == expires
    assert (listed[created["id"]]["state"], listed[rotated["new"]["id"]]["state"]) == (
        "expiring",
        "live",
    )
    table = _ok(cli("keys", "list"))
    assert "expires" in table
    assert rotated["old"]["expires_at"][:10] in table
    actions = _rows(config_path, "SELECT actor, action, target FROM audit_log ORDER BY id")
    assert [(a.split(":")[0], b, c) for a, b, c in actions] == [
        ("cli", "key.rotate", created["id"])
    ]

    # A rotation with no overlap ends the old key now; a revoked key cannot be rotated.
    again = _json(cli("keys", "rotate", rotated["new"]["id"], "--overlap", "0", "--json"))
    assert again["old"]["state"] == "expired"
    _ok(cli("keys", "revoke", again["new"]["id"]))
    refused = cli("keys", "rotate", again["new"]["id"])
    assert refused.exit_code == 3
    assert "is revoked" in refused.stderr


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("keys", "rotate", "graph:99"), 1, "no key graph:99"),
        (("keys", "rotate", "graph:1", "--overlap", "soon"), 2, "is not a duration"),
        (("keys", "rotate", "graph:1", "--overlap", "31d"), 2, "at most 30 days"),
        (("keys", "delete", "ak:NOPE"), 1, "no key ak:NOPE"),
        (("accounts", "update", "nobody", "--qps", "3"), 1, "no account 'nobody'"),
        (("accounts", "delete", "configured"), 2, "pass --yes"),
        (("spaces", "delete", "nowhere", "--yes"), 1, "no space 'nowhere'"),
        (("spaces", "remove-waba", "nowhere", "1"), 1, "no space 'nowhere'"),
        (("admin-tokens", "revoke", "7"), 1, "no admin token 7"),
    ],
)
def test_refusals_are_one_line_with_an_exit_code(
    cli: Invoke, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_accounts_update_and_spaces_wabas_and_deletes(cli: Invoke, config_path: Path) -> None:
    _ok(cli("accounts", "create", "acme"))
    assert "7 requests/s" in _ok(cli("accounts", "update", "acme", "--qps", "7"))
    _ok(cli("spaces", "create", "s1", "--account", "acme"))
    _ok(cli("spaces", "add-waba", "s1", "123456"))
    assert _json(cli("spaces", "list", "--json"))[0]["wabas"] == ["123456"]
    _ok(cli("spaces", "remove-waba", "s1", "123456"))
    assert _json(cli("spaces", "list", "--json"))[0]["wabas"] == []
    _ok(cli("keys", "create", "--account", "acme", "--kind", "access-key"))
    out = _ok(cli("accounts", "delete", "acme", "--yes"))
    assert out.strip() == "deleted account acme: 1 keys revoked, spaces s1 deleted"
    assert _json(cli("accounts", "list", "--json")) == []
    assert _json(cli("spaces", "list", "--json")) == []
    assert [k["state"] for k in _json(cli("keys", "list", "--json"))] == ["revoked"]
    stored = _rows(config_path, "SELECT name, qps, deleted_at IS NOT NULL FROM accounts")
    assert stored == [("acme", 7, 1)]
    actions = [a for (a,) in _rows(config_path, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == [
        "account.update_qps",
        "space.add_waba",
        "space.remove_waba",
        "account.delete",
    ]


def test_an_admin_token_from_the_cli_works_on_the_server_until_revoked(
    cli: Invoke, config_path: Path
) -> None:
    _ok(cli("accounts", "create", "acme"))
    created = _json(cli("admin-tokens", "create", "portal", "--account", "acme", "--json"))
    assert created["token"].startswith(f"whadm_{created['id']}_")
    listed = _json(cli("admin-tokens", "list", "--json"))
    assert [(t["name"], t["account"], t["revoked_at"]) for t in listed] == [
        ("portal", "acme", None)
    ]
    database = (config_path.parent / "wahealth.db").read_bytes()
    assert created["token"].encode() not in database
    headers = {"Authorization": f"Bearer {created['token']}"}
    with (
        serve_in_thread(create_app(load_settings(config_path))) as server,
        httpx.Client(base_url=server.base_url, trust_env=False, headers=headers) as http,
    ):
        answer = http.get("/api/v1/admin/accounts")
        assert [a["name"] for a in answer.json()] == ["acme"]
        _ok(cli("admin-tokens", "revoke", str(created["id"])))
        assert http.get("/api/v1/admin/accounts").status_code == 401
    actions = _rows(config_path, "SELECT action, account FROM audit_log ORDER BY id")
    assert actions == [("admin_token.create", "acme"), ("admin_token.revoke", None)]
