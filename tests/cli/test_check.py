"""`wahealth check`: verdicts as exit codes, tables and JSON, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.upstream.seed_examples import BY_NODE
from typer.testing import CliRunner

from wahealth.cli import app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator, load_scenario


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("WAHEALTH_META_TOKEN", raising=False)
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
