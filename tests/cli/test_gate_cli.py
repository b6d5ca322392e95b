"""`wahealth gate`: the verdict as an exit code, from a running server or in-process."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from tests.web.test_gate import (
    PHONES,
    TEMPLATE_BLOCKED,
    TEMPLATE_ID,
    TEMPLATE_PENDING,
    gate_settings,
)
from typer.testing import CliRunner, Result

from wahealth.app import create_app
from wahealth.cli import app
from wahealth.settings import load_settings
from wahealth.storage import HealthRepository, create_engine, session_factory
from wahealth.testing import DEMO
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, load_scenario

PRIVATE = "answered by a private emulator; nothing recorded\n"
TEMPLATE = ["--template", "order_update", "--language", "en"]
_ENV = ("WAHEALTH_CONFIG", "WAHEALTH_URL", "WAHEALTH_TOKEN", "WAHEALTH_MASTER_KEY")
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    """No config, URL or token from outside; the working directory is the test's; no server."""
    for name in (*_ENV, *_PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as closed, structlog.testing.capture_logs():
        closed.bind(("127.0.0.1", 0))
        port: int = closed.getsockname()[1]
        monkeypatch.setenv("WAHEALTH_SERVER__PORT", str(port))
        yield port


def gate(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app, ["gate", "--space", DEMO.space, *args], env={"COLUMNS": "200", **(env or {})}
    )


def answer_of(result: Result) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result.stdout)
    body.pop("fetched_at")
    body.pop("age_seconds")
    return body


# --- in-process, a private emulator (the embedded default) --------------------------------


@pytest.mark.parametrize(
    ("number", "exit_code", "strict_exit_code"),
    [("8613800000001", 0, 0), ("8613800000002", 1, 2), ("8613800000009", 2, 2)],
)
def test_exit_code_is_the_verdict_for_every_demo_number(
    tmp_path: Path, number: str, exit_code: int, strict_exit_code: int
) -> None:
    phone_id, status, reasons = PHONES[number]
    result = gate("--phone-number", number, "--json")
    assert result.exit_code == exit_code, result.output
    assert result.stderr == PRIVATE
    expected = {"status": status, "reasons": reasons, "nodes": [phone_id], "stale": False}
    assert answer_of(result) == {"allow": status != "BLOCKED", **expected}

    strict = gate("--phone-number-id", phone_id, "--strict", "--json")
    assert strict.exit_code == strict_exit_code, strict.output
    assert answer_of(strict) == {"allow": status == "AVAILABLE", **expected}
    # Nothing was written where the embedded default keeps its storage and key.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("number", sorted(PHONES))
def test_the_pending_template_denies_with_every_number(number: str) -> None:
    phone_id, _, reasons = PHONES[number]
    result = gate("--phone-number", number, *TEMPLATE, "--json")
    assert result.exit_code == 2, result.output
    assert answer_of(result) == {
        "allow": False,
        "status": "BLOCKED",
        "reasons": [*reasons, TEMPLATE_BLOCKED, TEMPLATE_PENDING],
        "nodes": [phone_id, TEMPLATE_ID],
        "stale": False,
    }
    by_id = gate("--phone-number", number, "--template-id", TEMPLATE_ID, "--json")
    assert (by_id.exit_code, answer_of(by_id)) == (2, answer_of(result))


def test_the_table_says_the_verdict_why_and_what_fixes_it() -> None:
    result = gate("--phone-number", "8613800000009", *TEMPLATE)
    assert result.exit_code == 2
    out = result.stdout
    assert out.startswith("DENY   health BLOCKED, nodes 106540352242999, 2632273056924580")
    for text in (
        "[141006] There is an error with the payment method.",
        "Fix: There was an error with your payment method.",
        "[141002] Message templates can only be sent out if they are approved.",
        "[TEMPLATE_NOT_APPROVED] The message template's status is PENDING",
        "Fix: Wait for Meta's review of the template to finish",
    ):
        assert text in out
    limited = gate("--phone-number", "8613800000002")
    assert limited.exit_code == 1
    assert limited.stdout.startswith("ALLOW WITH LIMITS   health LIMITED, nodes 105154286024403")
    assert "Your display name has not been approved yet." in limited.stdout
    clear = gate("--phone-number", "8613800000001")
    assert clear.exit_code == 0
    assert clear.stdout.startswith("ALLOW   health AVAILABLE, nodes 106540352242922")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phone-number", "8613899999999"], "phone number 8613899999999 is not in space demo-space"),
        (["--phone-number", "8613800000001", "--template", "x", "--language", "en"],
         "template x (en) is not in space demo-space"),
        (["--phone-number", "8613800000001", "--template", "order_update"],
         "template and language go together"),
        (["--phone-number", "1", "--phone-number-id", "1"],
         "give one of phone_number and phone_number_id"),
        ([], "give one of phone_number and phone_number_id"),
        (["--phone-number-id", "abc"], "phone_number_id must be a Meta id (digits only)"),
    ],
)  # fmt: skip
def test_errors_exit_3_with_one_line(args: list[str], message: str) -> None:
    result = gate(*args)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"error: {message}"


def test_an_unknown_space_exits_3() -> None:
    result = CliRunner().invoke(app, ["gate", "--space", "nope", "--phone-number", "1"])
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == "error: there is no space 'nope'"


@pytest.mark.parametrize(
    "args",
    [
        ["gate", "--phone-number", "8613800000001"],  # no --space
        ["gate", "--space", "demo-space", "--phone-numbr", "8613800000001"],
        ["gate", "--space", "demo-space", "--strict=maybe"],
    ],
)
def test_usage_errors_exit_3_not_clicks_2(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""


# --- a configuration of its own ----------------------------------------------------------


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "server.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "server.key"}"\n'
        "[monitor]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def _stored_transitions(config: Path, node_id: str) -> list[tuple[str | None, str, str]]:
    async def read() -> list[tuple[str | None, str, str]]:
        engine = create_engine(load_settings(config).storage.url)
        try:
            rows = await HealthRepository(session_factory(engine)).history(node_id, limit=100)
        finally:
            await engine.dispose()
        return [(t.before, t.after, t.cause.value) for t in rows]

    return asyncio.run(read())


def test_a_private_emulator_writes_nothing_to_the_configured_storage(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = gate("--phone-number", "8613800000009", "--config", str(config))
    assert result.exit_code == 2, result.output
    assert result.stderr == PRIVATE
    assert not (tmp_path / "server.db").exists()
    assert not (tmp_path / "server.key").exists()


def test_in_process_it_asks_the_running_servers_emulator_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    phone = "106540352242922"
    with serve_in_thread(create_app(load_settings(config))) as server:
        changed = httpx.put(
            f"{server.base_url}/_emulator/nodes/{phone}/health",
            json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
        )
        assert changed.status_code == 200
        deadline = time.monotonic() + 10
        # The server's own record: the start's sync saw AVAILABLE, the webhook the change.
        while len(before := _stored_transitions(config, phone)) < 2:
            assert time.monotonic() < deadline, "the server recorded no transition"
            time.sleep(0.05)
        assert before == [("AVAILABLE", "BLOCKED", "webhook"), (None, "AVAILABLE", "sync")]
        monkeypatch.setenv("WAHEALTH_SERVER__PORT", str(server.port))

        result = gate("--phone-number-id", phone, "--config", str(config), "--json")

        # The server's emulator says BLOCKED now; the scenario file still says AVAILABLE.
        assert result.exit_code == 2, result.output
        assert answer_of(result)["reasons"] == [
            {
                "entity_type": "PHONE_NUMBER",
                "entity_id": phone,
                "error_code": "141006",
                "description": "There is an error with the payment method.",
                "solution": "There was an error with your payment method. "
                "Please add a new payment method to the account.",
            }
        ]
        assert result.stderr == (
            f"answered from the emulator state of the server at {server.base_url}; "
            "nothing recorded\n"
        )
        assert _stored_transitions(config, phone) == before


# --- asking a running server -------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = gate_settings(tmp_path_factory.mktemp("gate-server"))
    with structlog.testing.capture_logs(), serve_in_thread(create_app(settings)) as running:
        yield running


@pytest.mark.parametrize(("number", "exit_code"), [("8613800000001", 0), ("8613800000002", 1)])
def test_a_running_server_answers_with_url_and_token(
    server: RunningServer, number: str, exit_code: int
) -> None:
    api = httpx.get(
        f"{server.base_url}/api/v1/gate",
        params={"space": DEMO.space, "phone_number": number},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )
    result = gate(
        "--phone-number", number, "--json", "--url", server.base_url, "--token", DEMO.graph_token
    )
    assert result.exit_code == exit_code, result.output
    assert result.stderr == ""
    assert answer_of(result) == {
        k: v for k, v in api.json().items() if k not in ("fetched_at", "age_seconds")
    }
    strict = gate("--phone-number", number, "--strict", "--url", server.base_url,
                  "--token", DEMO.graph_token)  # fmt: skip
    assert strict.exit_code == (0 if exit_code == 0 else 2)


def test_url_and_token_come_from_the_environment(server: RunningServer) -> None:
    env = {"WAHEALTH_URL": server.base_url, "WAHEALTH_TOKEN": DEMO.graph_token}
    result = gate("--phone-number", "8613800000001", *TEMPLATE, env=env)
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith("DENY   health BLOCKED")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "forged"], "error: the server answered 401: invalid access token"),
        (["--token", DEMO.other_graph_token],
         "error: the server answered 404: space 'demo-space' is not known to this account"),
        ([], "error: --url needs --token (or WAHEALTH_TOKEN): a Graph token"),
        (["--token", "t", "--config", "x.toml"],
         "error: give --url (ask a server) or --config (answer here), not both"),
    ],
)  # fmt: skip
def test_server_errors_exit_3(server: RunningServer, args: list[str], message: str) -> None:
    result = gate("--phone-number", "8613800000001", "--url", server.base_url, *args)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr == message + "\n"


def test_an_unreachable_server_exits_3(clean_environment: int) -> None:
    url = f"http://127.0.0.1:{clean_environment}"
    result = gate("--phone-number", "8613800000001", "--url", url, "--token", "t")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: cannot reach {url}/api/v1/gate")


def test_something_else_at_the_url_exits_3(server: RunningServer) -> None:
    result = gate("--phone-number", "1", "--url", f"{server.base_url}/healthz", "--token", "t")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: the server answered 404")


def test_with_meta_it_answers_from_the_configured_storage_and_upstream(tmp_path: Path) -> None:
    with serve_in_thread(create_emulator(load_scenario(None))) as meta:
        config = tmp_path / "meta.toml"
        config.write_text(
            _config(tmp_path).read_text(encoding="utf-8")
            + f'[upstream]\nkind = "meta"\nbase_url = "{meta.base_url}"\n'
            'access_token = "demo-meta-token"\n'
            '[[accounts]]\nname = "demo"\n'
            '[[spaces]]\nid = "demo-space"\naccount = "demo"\n'
            'wabas = ["102290129340398", "299399000000001"]\n',
            encoding="utf-8",
        )
        result = gate("--phone-number", "8613800000002", "--config", str(config), "--json")
        assert result.exit_code == 1, result.output
        assert result.stderr == ""  # Meta answered: no note
        assert answer_of(result)["nodes"] == ["105154286024403"]
        # What Meta said is recorded, as the server records what it fetches: the sync that
        # found the number brought its health.
        assert _stored_transitions(config, "105154286024403") == [(None, "LIMITED", "sync")]


def test_lang_chooses_the_reasons_language() -> None:
    result = gate("--phone-number", "8613800000009", "--lang", "id", "--json")
    assert result.exit_code == 2, result.output
    (reason,) = answer_of(result)["reasons"]
    assert reason["description"] == "Terjadi kesalahan pada metode pembayaran."
