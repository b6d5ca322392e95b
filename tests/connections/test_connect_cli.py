"""`wahealth connect` against a standalone emulator on 127.0.0.1, as against Meta."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from tests.connections._scenario import (
    ACME_CLIENT_WABA,
    ACME_SECOND_WABA,
    ACME_SECRET,
    ACME_TOKEN,
    ACME_WABA,
    OTHER_TOKEN,
    write_scenario,
)
from typer.testing import CliRunner

from wahealth.auth.secretbox import SecretBox
from wahealth.cli import app
from wahealth.storage import create_engine, session_factory
from wahealth.storage.tenancy import TenancyRepository
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, emulator_state
from wahealth.upstream.emulator.scenario import load_scenario

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
Invoke = Callable[..., Result]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[RunningServer, object]]:
    app_ = create_emulator(load_scenario(write_scenario(tmp_path)))
    with serve_in_thread(app_) as server:
        yield server, app_


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: tuple[RunningServer, object]
) -> Invoke:
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY", "WAHEALTH_META_TOKEN", *_PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "wahealth.key"
    SecretBox.load(None, key_file)
    config = tmp_path / "wahealth.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{key_file}"\n'
        "[monitor]\nenabled = false\n"
        f'[upstream]\nkind = "meta"\nbase_url = "{emulator[0].base_url}"\n'
        f'access_token = "{OTHER_TOKEN}"\n'
        '[[accounts]]\nname = "configured"\n',
        encoding="utf-8",
    )
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "200"})

    assert invoke("accounts", "create", "acme").exit_code == 0
    assert invoke("spaces", "create", "acme-space", "--account", "acme").exit_code == 0
    return invoke


def _wabas(tmp_path: Path) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}")
        try:
            return sorted(
                await TenancyRepository(session_factory(engine)).wabas_of_space("acme-space")
            )
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_dry_run_checks_and_discovers_but_stores_nothing(cli: Invoke, tmp_path: Path) -> None:
    result = cli("connect", "--space", "acme-space", "--token", ACME_TOKEN,
                 "--app-secret", ACME_SECRET, "--dry-run")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "token ok: app 801" in result.stdout
    for waba in (ACME_WABA, ACME_SECOND_WABA, ACME_CLIENT_WABA):
        assert waba in result.stdout
    assert "nothing stored" in result.stdout
    assert _wabas(tmp_path) == []
    assert json.loads(cli("connections", "list", "--json").stdout) == []


def test_connect_discovers_stores_encrypted_and_subscribes(
    cli: Invoke, tmp_path: Path, emulator: tuple[RunningServer, object]
) -> None:
    result = cli("connect", "--space", "acme-space", "--token", ACME_TOKEN,
                 "--app-secret", ACME_SECRET, "--subscribe-webhooks",
                 "--calls-per-minute", "50")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "app subscribed to 3 WABA(s)' webhooks" in result.stdout
    assert _wabas(tmp_path) == sorted([ACME_WABA, ACME_SECOND_WABA, ACME_CLIENT_WABA])
    state = emulator_state(emulator[1])  # type: ignore[arg-type]
    assert state.subscribed_apps == {
        w: ["801"] for w in (ACME_WABA, ACME_SECOND_WABA, ACME_CLIENT_WABA)
    }
    [shown] = json.loads(cli("connections", "list", "--json").stdout)
    assert (shown["name"], shown["state"], shown["spaces"], shown["app_secret"]) == (
        "acme-space", "ok", ["acme-space"], True,
    )  # fmt: skip
    assert shown["meta_calls_per_minute"] == 50
    raw = (
        sqlite3.connect(tmp_path / "wahealth.db")
        .execute("select token_encrypted, app_secret_encrypted from meta_connections")
        .fetchall()
    )
    assert ACME_TOKEN not in repr(raw)
    assert ACME_SECRET not in repr(raw)
    assert ACME_TOKEN not in result.output
    table = cli("connections", "list")
    assert "acme-space" in table.stdout
    assert "50/min" in table.stdout
    assert ACME_TOKEN not in table.stdout


def test_a_wrong_app_secret_is_refused_with_metas_reason(cli: Invoke, tmp_path: Path) -> None:
    result = cli("connect", "--space", "acme-space", "--token", ACME_TOKEN,
                 "--app-secret", "not-it")  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        "error: Meta refused the token: (100) Invalid appsecret_proof provided in the API "
        "argument\n"
    )
    assert _wabas(tmp_path) == []


def test_a_check_records_a_revoked_token_and_the_list_shows_it(
    cli: Invoke, emulator: tuple[RunningServer, object]
) -> None:
    connected = cli("connect", "--space", "acme-space", "--token", ACME_TOKEN,
                    "--app-secret", ACME_SECRET, "--name", "acme")  # fmt: skip
    assert connected.exit_code == 0, connected.output
    emulator_state(emulator[1]).token_trouble[ACME_TOKEN] = "revoked"  # type: ignore[arg-type]
    checked = cli("connections", "check", "acme")
    assert checked.exit_code == 1
    assert checked.stderr.startswith("error: connection 'acme' refused by Meta: (190) ")
    table = cli("connections", "list")
    assert "refused (refresh paused)" in table.stdout
    [shown] = json.loads(cli("connections", "list", "--json").stdout)
    assert shown["state"] == "refused"
    emulator_state(emulator[1]).token_trouble.clear()  # type: ignore[arg-type]
    again = cli("connections", "check", "acme")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "connection 'acme' is ok"
