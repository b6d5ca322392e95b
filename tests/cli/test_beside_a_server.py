"""The CLI beside a running embedded-default server: nothing made up is recorded or alerted."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from click.testing import Result
from typer.testing import CliRunner

from wahealth.app import create_app
from wahealth.cli import app
from wahealth.settings import load_settings
from wahealth.storage import HealthRepository, OutboxRepository, create_engine, session_factory
from wahealth.testing_server import RunningServer, serve_in_thread

PHONE = "106540352242922"  # AVAILABLE in the demo scenario
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def quiet_server() -> Iterator[None]:
    """The server thread logs to whatever sys.stdout is: keep it out of the CLI's output."""
    with structlog.testing.capture_logs():
        yield


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded default (no accounts, no spaces) on its own SQLite file, with one alert hook."""
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY", "WAHEALTH_META_TOKEN", *_PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "wahealth.key"}"\n'
        "[monitor]\nenabled = false\n"  # no polling: only the webhook and the CLI can record
        "[alerts]\nallow_private_targets = true\n"
        '[[alerts.subscriptions]]\nspace = "demo-space"\n'
        'url = "http://127.0.0.1:9/hook"\nsecret = "whsec-test"\non = ["ANY"]\n',
        encoding="utf-8",
    )
    return path


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "200"})


def _stored(config: Path) -> tuple[list[tuple[str | None, str, str]], list[str]]:
    """The phone's stored transitions (before, after, cause) and the outbox's alert ids."""

    async def read() -> tuple[list[tuple[str | None, str, str]], list[str]]:
        engine = create_engine(load_settings(config).storage.url)
        try:
            sessions = session_factory(engine)
            history = await HealthRepository(sessions).history(PHONE, limit=100)
            alerts = await OutboxRepository(sessions).list_alerts(limit=100)
        finally:
            await engine.dispose()
        return [(t.before, t.after, t.cause.value) for t in history], [a.id for a in alerts]

    return asyncio.run(read())


def _block_through_the_server(server: RunningServer, config: Path) -> None:
    changed = httpx.put(
        f"{server.base_url}/_emulator/nodes/{PHONE}/health",
        json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
    )
    assert changed.status_code == 200, changed.text
    deadline = time.monotonic() + 10
    # The start's sync recorded the number's first health (AVAILABLE); wait for the change.
    while not any(cause == "webhook" for _, _, cause in _stored(config)[0]):
        assert time.monotonic() < deadline, "the server recorded no transition"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("command", "advice"),
    [
        ("refresh", "change a node through the running server's /_emulator/ admin API"),
        ("sync", "a running server syncs its emulator's catalog by itself"),
    ],
)
def test_writing_commands_refuse_a_private_emulator_beside_a_server(
    config: Path, command: str, advice: str
) -> None:
    # Without the refusal `refresh` asked an in-process emulator of its own, got the
    # scenario's AVAILABLE and stored a "manual" recovery to AVAILABLE with its alert.
    with serve_in_thread(create_app(load_settings(config))) as server:
        _block_through_the_server(server, config)
        before = _stored(config)
        assert before[0] == [("AVAILABLE", "BLOCKED", "webhook"), (None, "AVAILABLE", "sync")]

        result = _cli(config, command)

        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(f"error: {command} refuses to run on a private emulator")
        assert advice in line
        assert 'upstream.kind = "meta"' in line
        # Nothing false was recorded: no "recovery" to AVAILABLE, no alert about it.
        assert _stored(config) == before


def test_check_answers_from_the_running_servers_emulator_and_records_nothing(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_in_thread(create_app(load_settings(config))) as server:
        _block_through_the_server(server, config)
        before = _stored(config)
        monkeypatch.setenv("WAHEALTH_SERVER__PORT", str(server.port))

        result = _cli(config, "check", "--node", PHONE, "--json")

        # The server's emulator says BLOCKED now; a private one would still say AVAILABLE.
        assert result.exit_code == 2, result.output
        assert json.loads(result.stdout)["health_status"]["can_send_message"] == "BLOCKED"
        assert result.stderr == (
            f"answered from the emulator state of the server at {server.base_url}; "
            "nothing recorded\n"
        )
        assert _stored(config) == before


def test_check_without_a_server_says_a_private_emulator_answered(config: Path) -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        result = CliRunner().invoke(
            app,
            ["check", "--node", PHONE, "--config", str(config)],
            env={"COLUMNS": "200", "WAHEALTH_SERVER__PORT": str(port)},
        )
    assert result.exit_code == 0, result.output
    assert "Overall: AVAILABLE" in result.stdout
    assert result.stderr == "answered by a private emulator; nothing recorded\n"
    assert not (config.parent / "wahealth.db").exists()
