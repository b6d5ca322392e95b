"""`wahealth check`: verdicts as exit codes, tables and JSON, one-line errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.upstream.seed_examples import BY_NODE
from typer.testing import CliRunner, Result

from wahealth.cli import app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, load_scenario

PRIVATE = "answered by a private emulator; nothing recorded\n"
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """`server.port` names a port that is bound but not listening: no wahealth server there."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port: int = closed.getsockname()[1]
        monkeypatch.setenv("WAHEALTH_SERVER__PORT", str(port))
        yield port


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, no_server: int) -> CliRunner:
    for name in ("WAHEALTH_META_TOKEN", "WAHEALTH_CONFIG", *_PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_emulator(load_scenario(None))) as running:
        yield running


@pytest.mark.parametrize(
    ("node", "exit_code"),
    [
        ("106540352242922", 0),
        ("105154286024403", 1),
        ("2632273056924580", 2),
        ("299399000000001", 2),
        ("106540352242999", 2),
        ("102290129340398", 0),
    ],
)
def test_exit_code_is_the_verdict_and_json_is_meta_shaped(
    runner: CliRunner, node: str, exit_code: int
) -> None:
    result = runner.invoke(app, ["check", "--node", node, "--json"])
    assert result.exit_code == exit_code, result.stderr
    assert json.loads(result.stdout) == BY_NODE[node]
    assert result.stderr == PRIVATE


def test_table_shows_entities_errors_and_overall(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--node", "106540352242999"], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    out = result.stdout
    assert "Health of 106540352242999" in out
    for text in (
        "PHONE_NUMBER",
        "299399000000001",
        "BUSINESS",
        "APP",
        "[141006] There is an error with the payment method.",
        "Fix: There was an error with your payment method.",
    ):
        assert text in out
    assert "Overall: BLOCKED" in out


def test_table_shows_additional_info(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--node", "105154286024403"], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert (
        "Your display name has not been approved yet. Your message limit will increase after "
        "the display name is approved." in result.stdout
    )
    assert "Overall: LIMITED" in result.stdout


@pytest.mark.parametrize("number", ["8613800000002", "+86 138 0000 0002", "+86-138-0000-0002"])
def test_phone_number_is_resolved_through_the_waba(runner: CliRunner, number: str) -> None:
    result = runner.invoke(
        app, ["check", "--phone-number", number, "--waba", "102290129340398", "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == BY_NODE["105154286024403"]


def test_waba_alone_checks_the_waba(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--waba", "299399000000001", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == BY_NODE["299399000000001"]


def test_unknown_phone_number_is_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--phone-number", "123", "--waba", "102290129340398"])
    assert result.exit_code == 3
    assert result.stderr == "error: no phone number 123 on WABA 102290129340398\n"
    assert result.stdout == ""


def test_unknown_node_is_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--node", "999"])
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: Meta has no such node")
    assert "Object with ID '999' does not exist" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--phone-number", "8613800000002"],
        ["--node", "1", "--waba", "2"],
    ],
)
def test_option_mistakes_are_errors(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize("args", [["--node"], ["--nod", "1"], ["--node", "1", "extra"]])
def test_usage_errors_exit_3_not_2_which_means_blocked(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 3
    assert result.stdout == ""


def test_scenario_file_is_used(runner: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "tokens: [t]\nbusinesses: [{id: '1'}]\napps: [{id: '2'}]\n"
        "wabas: [{id: '3', business: '1', app: '2', health: {can_send_message: LIMITED}}]\n"
    )
    result = runner.invoke(app, ["check", "--waba", "3", "--scenario", str(scenario), "--json"])
    assert result.exit_code == 1
    assert (
        json.loads(result.stdout)["health_status"]["entities"][0]["can_send_message"] == "LIMITED"
    )


def test_malformed_scenario_is_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "broken.toml"
    scenario.write_text("tokens = [")
    result = runner.invoke(app, ["check", "--node", "1", "--scenario", str(scenario)])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {scenario}: bad TOML")
    assert len(result.stderr.splitlines()) == 1


def test_token_goes_to_the_base_url(runner: CliRunner, server: RunningServer) -> None:
    result = runner.invoke(
        app,
        [
            "check",
            "--node",
            "2632273056924580",
            "--json",
            "--base-url",
            server.base_url,
            "--token",
            "demo-meta-token",
            "--api-version",
            "v19.0",
        ],
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout) == BY_NODE["2632273056924580"]


def test_token_from_environment(
    runner: CliRunner, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAHEALTH_META_TOKEN", "demo-meta-token")
    result = runner.invoke(
        app, ["check", "--node", "106540352242922", "--base-url", server.base_url]
    )
    assert result.exit_code == 0
    assert "Overall: AVAILABLE" in result.stdout


def test_bad_token_is_one_line_error(runner: CliRunner, server: RunningServer) -> None:
    result = runner.invoke(
        app,
        ["check", "--node", "106540352242922", "--base-url", server.base_url, "--token", "bad"],
    )
    assert result.exit_code == 3
    assert result.stderr == (
        "error: the access token was refused: "
        "Invalid OAuth access token - Cannot parse access token\n"
    )


def test_scenario_with_token_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["check", "--node", "1", "--token", "t", "--scenario", str(tmp_path / "x.toml")]
    )
    assert result.exit_code == 3
    assert "--scenario is for the built-in emulator" in result.stderr


def test_unreachable_upstream_is_error_and_json_stays_clean(runner: CliRunner) -> None:
    with serve_in_thread(create_emulator(load_scenario(None))) as gone:
        base_url = gone.base_url
    result = runner.invoke(
        app,
        ["check", "--node", "1", "--base-url", base_url, "--token", "sekrit-token-123", "--json"],
    )
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith(
        "error: no answer from Meta: cannot reach Graph"
    )
    assert "sekrit-token-123" not in result.stderr


def _meta_config(tmp_path: Path, meta: RunningServer) -> Path:
    path = tmp_path / "meta.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[upstream]\nkind = "meta"\nbase_url = "{meta.base_url}"\n'
        'access_token = "demo-meta-token"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def blocked_meta() -> Iterator[RunningServer]:
    """Meta on a socket, where the demo's AVAILABLE phone number has become BLOCKED."""
    with serve_in_thread(create_emulator(load_scenario(None))) as meta:
        changed = httpx.put(
            f"{meta.base_url}/_emulator/nodes/106540352242922/health",
            json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
            trust_env=False,
        )
        assert changed.status_code == 200
        yield meta


@pytest.mark.parametrize("source", ["--config", "WAHEALTH_CONFIG", "WAHEALTH_UPSTREAM__*"])
def test_reads_the_configuration_serve_reads(
    runner: CliRunner,
    blocked_meta: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    args = ["check", "--node", "106540352242922", "--json"]
    if source == "--config":
        args += ["--config", str(_meta_config(tmp_path, blocked_meta))]
    elif source == "WAHEALTH_CONFIG":
        monkeypatch.setenv("WAHEALTH_CONFIG", str(_meta_config(tmp_path, blocked_meta)))
    else:
        monkeypatch.setenv("WAHEALTH_UPSTREAM__KIND", "meta")
        monkeypatch.setenv("WAHEALTH_UPSTREAM__BASE_URL", blocked_meta.base_url)
        monkeypatch.setenv("WAHEALTH_UPSTREAM__ACCESS_TOKEN", "demo-meta-token")
    result = runner.invoke(app, args)
    # Meta's answer (a private emulator would say AVAILABLE), and no note: nothing emulated.
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["health_status"]["can_send_message"] == "BLOCKED"
    assert result.stderr == ""
    assert not (tmp_path / "wahealth.db").exists()  # a check records nothing


def test_configured_scenario_answers_and_nothing_is_stored(
    runner: CliRunner, tmp_path: Path
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "tokens: [t]\nbusinesses: [{id: '1'}]\napps: [{id: '2'}]\n"
        "wabas: [{id: '3', business: '1', app: '2', health: {can_send_message: LIMITED}}]\n"
    )
    config = tmp_path / "emulated.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[upstream]\nkind = "emulator"\nscenario = "{scenario}"\n'
    )
    result = runner.invoke(app, ["check", "--waba", "3", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "Overall: LIMITED" in result.stdout
    assert result.stderr == PRIVATE
    assert not (tmp_path / "wahealth.db").exists()


def _one_error_line(result: Result, starts: str) -> None:
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {starts}"), line


def test_bad_configuration_exits_3(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = ["check", "--node", "106540352242922"]
    missing = tmp_path / "missing.toml"
    _one_error_line(runner.invoke(app, [*node, "--config", str(missing)]), f"config file {missing}")
    broken = tmp_path / "broken.toml"
    broken.write_text("[storage\n")
    monkeypatch.setenv("WAHEALTH_CONFIG", str(broken))
    _one_error_line(runner.invoke(app, node), f"config file {broken} is not valid TOML")
    monkeypatch.delenv("WAHEALTH_CONFIG")
    monkeypatch.setenv("WAHEALTH_UPSTREAM__KIND", "bogus")
    _one_error_line(runner.invoke(app, node), "invalid configuration (environment)")
    monkeypatch.setenv("WAHEALTH_UPSTREAM__KIND", "meta")
    _one_error_line(runner.invoke(app, node), 'upstream.kind = "meta" needs upstream.access_token')


def test_an_unexpected_error_exits_3_not_1(runner: CliRunner) -> None:
    # httpx refuses this URL before any request, outside the Graph client's error tree;
    # uncaught, Python would exit 1, which a script reads as LIMITED.
    result = runner.invoke(
        app, ["check", "--node", "1", "--token", "t", "--base-url", "http://[::1"]
    )
    _one_error_line(result, "InvalidURL: Invalid port")
