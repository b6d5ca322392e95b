"""`wahealth accounts|spaces|keys`: stored rows, one-line errors, exit codes, and revocation
reaching a running server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_cams20200606.client import Client
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from click.testing import Result
from typer.testing import CliRunner

from wahealth.app import create_app
from wahealth.auth.secretbox import SecretBox
from wahealth.auth.tokens import hash_token
from wahealth.cli import app
from wahealth.settings import load_settings
from wahealth.storage import CatalogRepository, create_engine, session_factory
from wahealth.storage.catalog import PhoneNumberRecord
from wahealth.testing_server import RunningServer, serve_in_thread

Invoke = Callable[..., Result]

DEMO_WABA = "102290129340398"
DEMO_PHONE_ID = "106540352242922"
DEMO_PHONE = "8613800000001"
# The server caches credential lookups for 1 s; the rest is margin for a busy CI machine.
REVOCATION_DEADLINE_SECONDS = 2.0
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with its own SQLite file and master key; one configured account, so no demo."""
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY", *_PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "wahealth.key"
    SecretBox.load(None, key_file)  # create it now, not in the middle of a command's output
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{key_file}"\n'
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


def _refused(result: Result, exit_code: int, message: str) -> None:
    assert (result.exit_code, result.stderr) == (exit_code, f"error: {message}\n")


def _rows(config_path: Path, query: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(config_path.parent / "wahealth.db")
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def test_accounts_create_list_revoke_enable(cli: Invoke, config_path: Path) -> None:
    assert _ok(cli("accounts", "create", "acme", "--qps", "7")) == (
        "created account acme (7 requests/s)\n"
    )
    _refused(cli("accounts", "create", "acme"), 3, "account 'acme' already exists")
    _ok(cli("accounts", "create", "beta"))  # ratelimit.default_qps
    listed = _json(cli("accounts", "list", "--json"))
    assert [(a["name"], a["qps"], a["disabled"], a["disabled_at"]) for a in listed] == [
        ("acme", 7, False, None),
        ("beta", 5, False, None),
    ]

    assert _ok(cli("accounts", "revoke", "acme")) == (
        "disabled account acme: its keys no longer authenticate\n"
    )
    assert _ok(cli("accounts", "revoke", "acme")) == "account acme was already disabled\n"
    _refused(cli("accounts", "revoke", "nope"), 1, "no account 'nope'")
    assert _rows(config_path, "SELECT name FROM accounts WHERE disabled_at IS NOT NULL") == [
        ("acme",)
    ]
    assert _json(cli("accounts", "list", "--json"))[0]["disabled"] is True
    table = _ok(cli("accounts", "list"))
    cells = [row.split("│") for row in table.splitlines() if row.startswith("│")]
    assert {cell[1].strip(): cell[3].strip() for cell in cells} == {
        "acme": "disabled",
        "beta": "active",
    }

    _ok(cli("accounts", "enable", "acme"))
    assert _rows(config_path, "SELECT name FROM accounts WHERE disabled_at IS NOT NULL") == []


def test_spaces_create_and_list(cli: Invoke, config_path: Path) -> None:
    _refused(cli("spaces", "create", "s1", "--account", "acme"), 1, "no account 'acme'")
    _ok(cli("accounts", "create", "acme"))
    _ok(cli("accounts", "create", "beta"))
    assert _ok(
        cli("spaces", "create", "s1", "--account", "acme", "--waba", "11", "--waba", "12")
    ) == ("created space s1 for account acme with WABAs 11, 12\n")
    _refused(
        cli("spaces", "create", "s1", "--account", "beta"),
        3,
        "space 's1' already exists (account 'acme')",
    )
    # A WABA of another space is refused before anything is written.
    _refused(
        cli("spaces", "create", "s2", "--account", "beta", "--waba", "13", "--waba", "12"),
        3,
        "WABA '12' is already in space 's1'",
    )
    assert _rows(config_path, "SELECT id FROM spaces") == [("s1",)]
    _ok(cli("spaces", "create", "s2", "--account", "beta"))

    spaces = _json(cli("spaces", "list", "--json"))
    assert [(s["id"], s["account"], s["wabas"]) for s in spaces] == [
        ("s1", "acme", ["11", "12"]),
        ("s2", "beta", []),
    ]
    only_beta = _json(cli("spaces", "list", "--account", "beta", "--json"))
    assert [s["id"] for s in only_beta] == ["s2"]
    _refused(cli("spaces", "list", "--account", "nope"), 1, "no account 'nope'")
    assert "11, 12" in _ok(cli("spaces", "list"))


def test_keys_are_shown_once_and_stored_encrypted_or_hashed(cli: Invoke, config_path: Path) -> None:
    _ok(cli("accounts", "create", "acme"))
    access = _json(cli("keys", "create", "--account", "acme", "--kind", "access-key", "--json"))
    assert access["id"] == f"ak:{access['access_key_id']}"
    assert access["access_key_id"].startswith("LTAI")
    [(encrypted,)] = _rows(config_path, "SELECT secret_encrypted FROM access_keys")
    assert access["secret"] not in encrypted
    box = SecretBox.load(None, config_path.parent / "wahealth.key")
    assert box.decrypt(encrypted) == access["secret"]

    graph = _json(
        cli("keys", "create", "--account", "acme", "--kind", "graph", "--label", "ci", "--json")
    )
    [(graph_id, token_hash)] = _rows(config_path, "SELECT id, token_hash FROM graph_tokens")
    # Keyed by the master key: the unkeyed digest alone is not what is stored.
    assert token_hash == box.token_hasher().hash(graph["secret"])
    assert token_hash != hash_token(graph["secret"])
    assert (graph["id"], graph["label"], graph["hash_prefix"]) == (
        f"graph:{graph_id}",
        "ci",
        token_hash[:8],
    )

    panel = _ok(
        cli(
            "keys",
            "create",
            "--account",
            "acme",
            "--kind",
            "d360",
            "--phone-number-id",
            "42",
            "--allow-unsynced",
        )
    )
    assert "shown once" in panel
    [(d360_id, key_hash)] = _rows(config_path, "SELECT id, key_hash FROM d360_keys")
    assert f"d360:{d360_id}" in panel
    hasher = box.token_hasher()
    assert any(
        hasher.hash(word) == key_hash for word in panel.split() if word.startswith("whd360_")
    )

    listed = _json(cli("keys", "list", "--account", "acme", "--json"))
    assert sorted(k["id"] for k in listed) == sorted([access["id"], graph["id"], f"d360:{d360_id}"])
    for output in (json.dumps(listed), _ok(cli("keys", "list"))):
        for secret in (access["secret"], graph["secret"], token_hash, key_hash):
            assert secret not in output
    d360 = next(k for k in listed if k["kind"] == "d360")
    assert (d360["phone_number_id"], d360["hash_prefix"]) == ("42", key_hash[:8])


def test_keys_revoke_by_listed_id(cli: Invoke, config_path: Path) -> None:
    _ok(cli("accounts", "create", "acme"))
    access = _json(cli("keys", "create", "--account", "acme", "--kind", "access-key", "--json"))
    graph = _json(cli("keys", "create", "--account", "acme", "--kind", "graph", "--json"))

    assert _ok(cli("keys", "revoke", graph["id"])) == f"revoked {graph['id']}\n"
    assert _ok(cli("keys", "revoke", graph["id"])) == f"{graph['id']} was already revoked\n"
    # A bare AccessKey id works too, as SDK configurations show it.
    assert _ok(cli("keys", "revoke", access["access_key_id"])) == f"revoked {access['id']}\n"
    assert _rows(config_path, "SELECT count(*) FROM access_keys WHERE revoked_at IS NULL") == [(0,)]
    revoked = {k["id"]: k["revoked_at"] for k in _json(cli("keys", "list", "--json"))}
    assert all(revoked.values())

    _refused(cli("keys", "revoke", "d360:99"), 1, "no key d360:99")
    _refused(cli("keys", "revoke", "ak:LTAInope"), 1, "no key ak:LTAInope")
    for ambiguous in ("7", "graph:x", "token:7"):
        result = cli("keys", "revoke", ambiguous)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {ambiguous!r} is not a key id")


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--kind", "d360"], 2, "--phone-number-id is required for d360 keys and only for them"),
        (
            ["--kind", "graph", "--phone-number-id", "1"],
            2,
            "--phone-number-id is required for d360 keys and only for them",
        ),
        (
            ["--kind", "access-key", "--label", "x"],
            2,
            "access keys have no label; their id is what SDKs are configured with",
        ),
        (["--kind", "graph", "--allow-unsynced"], 2, "--allow-unsynced is for d360 keys only"),
        (["--kind", "graph", "--account", "nope"], 1, "no account 'nope'"),
        (
            ["--kind", "graph", "--account", "off"],
            3,
            "account 'off' is disabled; `wahealth accounts enable` it first",
        ),
        (
            ["--kind", "d360", "--phone-number-id", "77"],
            1,
            "phone number 77 is not in the synced catalog; start the server once to sync the "
            "account's WABAs, or pass --allow-unsynced",
        ),
    ],
)
def test_keys_create_refusals(
    cli: Invoke, config_path: Path, args: list[str], exit_code: int, message: str
) -> None:
    _ok(cli("accounts", "create", "acme"))
    _ok(cli("accounts", "create", "off"))
    _ok(cli("accounts", "revoke", "off"))
    account = [] if "--account" in args else ["--account", "acme"]
    _refused(cli("keys", "create", *account, *args), exit_code, message)
    assert _rows(config_path, "SELECT count(*) FROM graph_tokens") == [(0,)]
    assert _rows(config_path, "SELECT count(*) FROM d360_keys") == [(0,)]


def test_d360_key_needs_a_number_of_the_account(cli: Invoke, config_path: Path) -> None:
    _ok(cli("accounts", "create", "acme"))
    _ok(cli("accounts", "create", "beta"))
    _ok(cli("spaces", "create", "s-acme", "--account", "acme", "--waba", "100"))
    _ok(cli("spaces", "create", "s-beta", "--account", "beta", "--waba", "200"))
    settings = load_settings(config_path)

    async def sync_catalog() -> None:
        engine = create_engine(settings.storage.url)
        try:
            catalog = CatalogRepository(session_factory(engine))
            await catalog.replace_phone_numbers("100", [PhoneNumberRecord("101", "+1 555 0101")])
            await catalog.replace_phone_numbers("200", [PhoneNumberRecord("201", "+1 555 0201")])
        finally:
            await engine.dispose()

    asyncio.run(sync_catalog())

    def create(number: str) -> Result:
        return cli(
            "keys",
            "create",
            "--account",
            "acme",
            "--kind",
            "d360",
            "--phone-number-id",
            number,
            "--json",
        )

    _refused(create("201"), 3, "phone number 201 belongs to account 'beta'")
    _refused(create("100"), 2, "100 is a WABA, not a phone number")
    assert _json(create("101"))["phone_number_id"] == "101"
    assert _rows(config_path, "SELECT phone_number_id FROM d360_keys") == [("101",)]


def test_config_and_storage_errors_exit_2(tmp_path: Path, cli: Invoke) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["accounts", "list", "--config", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: config file")
    unreachable = CliRunner().invoke(
        app,
        ["keys", "list"],
        env={"WAHEALTH_STORAGE__URL": "postgresql+asyncpg://admin:hunter2@127.0.0.1:1/x"},
    )
    assert unreachable.exit_code == 2
    assert unreachable.stderr.startswith("error: storage postgresql+asyncpg://admin:***@")
    assert "hunter2" not in unreachable.stderr
    assert cli("accounts", "create", "x", "--qps", "0").exit_code == 2


# --- against a running server -----------------------------------------------------------------


def _graph(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/v21.0/{DEMO_PHONE_ID}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
        trust_env=False,
    )


def _d360(server: RunningServer, key: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/health_status",
        headers={"D360-API-KEY": key},
        timeout=5,
        trust_env=False,
    )


def _cams(server: RunningServer, key_id: str, secret: str) -> str:
    """The CAMS code the official SDK gets back ("OK" or the error code it raised)."""
    client = Client(
        Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=f"{server.host}:{server.port}",
            protocol="http",
        )
    )
    request = GetWhatsappHealthStatusRequest(
        cust_space_id="acme-space", node_type="phone", phone_number=DEMO_PHONE
    )
    try:
        response = client.get_whatsapp_health_status(request)
    except ClientException as exc:
        return str(exc.code)
    return str(response.body.code)


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + REVOCATION_DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"{what} within {REVOCATION_DEADLINE_SECONDS}s"
        time.sleep(0.05)


def test_revocation_reaches_a_running_server(cli: Invoke, config_path: Path) -> None:
    _ok(cli("accounts", "create", "acme", "--qps", "1000"))
    _ok(cli("spaces", "create", "acme-space", "--account", "acme", "--waba", DEMO_WABA))
    graph = _json(cli("keys", "create", "--account", "acme", "--kind", "graph", "--json"))
    spare = _json(cli("keys", "create", "--account", "acme", "--kind", "graph", "--json"))
    access = _json(cli("keys", "create", "--account", "acme", "--kind", "access-key", "--json"))

    with serve_in_thread(create_app(load_settings(config_path))) as server:
        # The server synced the space's catalog at start, so the number is known now.
        d360 = _json(
            cli(
                "keys",
                "create",
                "--account",
                "acme",
                "--kind",
                "d360",
                "--phone-number-id",
                DEMO_PHONE_ID,
                "--json",
            )
        )
        for _ in range(3):  # warm the server's credential cache
            answer = _graph(server, graph["secret"])
            assert answer.status_code == 200
            assert answer.json()["health_status"]["can_send_message"] == "AVAILABLE"
            assert _d360(server, d360["secret"]).json()["id"] == DEMO_PHONE_ID
            assert _cams(server, access["access_key_id"], access["secret"]) == "OK"

        _ok(cli("keys", "revoke", graph["id"]))
        _eventually(lambda: _graph(server, graph["secret"]).status_code == 401, "graph refused")
        assert _graph(server, graph["secret"]).json()["error"]["code"] == 190
        assert _graph(server, spare["secret"]).status_code == 200

        _ok(cli("keys", "revoke", access["id"]))
        _eventually(
            lambda: (
                _cams(server, access["access_key_id"], access["secret"])
                == "InvalidAccessKeyId.Inactive"
            ),
            "AccessKey refused",
        )

        _ok(cli("accounts", "revoke", "acme"))
        _eventually(lambda: _d360(server, d360["secret"]).status_code == 401, "d360 refused")
        _eventually(lambda: _graph(server, spare["secret"]).status_code == 401, "graph refused")


def test_spaces_and_accounts_delete_with_purge(cli: Invoke, config_path: Path) -> None:
    _ok(cli("accounts", "create", "acme"))
    _ok(cli("spaces", "create", "s1", "--account", "acme", "--waba", "11"))
    _ok(cli("spaces", "create", "s2", "--account", "acme"))
    _ok(cli("keys", "create", "--account", "acme", "--kind", "graph"))
    assert _ok(cli("spaces", "delete", "s1", "--yes")) == (
        "deleted space s1: WABAs 11 removed, 0 keys revoked\n"
    )
    # Deleted before, purged now: the row goes, so the id is free again.
    assert _ok(cli("spaces", "delete", "s1", "--yes", "--purge")) == (
        "purged space s1: 0 transitions, 0 nodes' health and 0 alerts removed\n"
    )
    assert _rows(config_path, "SELECT id FROM spaces ORDER BY id") == [("s2",)]
    _refused(cli("spaces", "delete", "s1", "--yes", "--purge"), 1, "no space 's1'")
    out = _ok(cli("accounts", "delete", "acme", "--yes", "--purge"))
    assert out == (
        "deleted account acme: 1 keys revoked, spaces s2 deleted\n"
        "purged account acme: 1 keys, 0 transitions, 0 nodes' health and 0 alerts removed\n"
    )
    assert _rows(config_path, "SELECT count(*) FROM graph_tokens") == [(0,)]
    assert _rows(config_path, "SELECT name FROM accounts") == []
