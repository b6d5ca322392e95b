"""Every command reads the configuration `serve` reads: --config, $WAHEALTH_CONFIG, WAHEALTH_*."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from wahealth.cli import app

# Each command with arguments that are valid, so that only the configuration can be wrong.
COMMANDS: dict[str, list[str]] = {
    "serve": ["serve"],
    "check": ["check", "--node", "106540352242922"],
    "gate": ["gate", "--space", "demo-space", "--phone-number", "8613800000001"],
    "sync": ["sync"],
    "refresh": ["refresh"],
    "history": ["history", "106540352242922"],
    "accounts create": ["accounts", "create", "acme"],
    "accounts list": ["accounts", "list"],
    "accounts revoke": ["accounts", "revoke", "acme"],
    "accounts enable": ["accounts", "enable", "acme"],
    "spaces create": ["spaces", "create", "acme-space", "--account", "acme"],
    "spaces list": ["spaces", "list"],
    "spaces set": ["spaces", "set", "acme-space", "--badges"],
    "keys create": ["keys", "create", "--account", "acme", "--kind", "graph"],
    "keys list": ["keys", "list"],
    "keys revoke": ["keys", "revoke", "graph:1"],
    "keys rotate": ["keys", "rotate", "graph:1"],
    "keys delete": ["keys", "delete", "graph:1"],
    "accounts update": ["accounts", "update", "acme", "--qps", "7"],
    "accounts delete": ["accounts", "delete", "acme", "--yes"],
    "spaces add-waba": ["spaces", "add-waba", "acme-space", "123"],
    "spaces remove-waba": ["spaces", "remove-waba", "acme-space", "123"],
    "spaces delete": ["spaces", "delete", "acme-space", "--yes"],
    "admin-tokens create": ["admin-tokens", "create", "portal"],
    "admin-tokens list": ["admin-tokens", "list"],
    "admin-tokens revoke": ["admin-tokens", "revoke", "1"],
    "alerts add": ["alerts", "add", "--space", "s", "--url", "https://a.example", "--secret", "x"],
    "alerts list": ["alerts", "list"],
    "alerts remove": ["alerts", "remove", "1"],
    "alerts outbox": ["alerts", "outbox"],
    "alerts retry": ["alerts", "retry", "a1"],
    "alerts ack": ["alerts", "ack", "106540352242922"],
    "alerts silence": ["alerts", "silence", "--space", "s", "--for", "1h"],
    "alerts silences": ["alerts", "silences"],
    "alerts unsilence": ["alerts", "unsilence", "1"],
    "connect": ["connect", "--space", "acme-space", "--token", "EAAG-token", "--dry-run"],
    "connections list": ["connections", "list"],
    "connections delete": ["connections", "delete", "acme"],
    "connections check": ["connections", "check", "acme"],
}
# The standalone emulator is configured by its own options and scenario file only.
WITHOUT_CONFIGURATION = {"emulator"}


def _command_names(group: object, prefix: str = "") -> set[str]:
    commands = getattr(group, "commands", {})
    names: set[str] = set()
    for name, command in commands.items():
        full = f"{prefix}{name}"
        names |= _command_names(command, f"{full} ") if hasattr(command, "commands") else {full}
    return names


def test_the_list_covers_every_command() -> None:
    every = _command_names(typer.main.get_command(app))
    assert every == set(COMMANDS) | WITHOUT_CONFIGURATION


def _refused(result: Result, name: str, starts: str) -> None:
    # `check` and `gate` answer with a verdict, so their errors exit 3; the others' 2.
    assert result.exit_code == (3 if name in ("check", "gate") else 2), (name, result.output)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {starts}"), (name, line)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_META_TOKEN", "WAHEALTH_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_config_option(runner: CliRunner, tmp_path: Path, name: str) -> None:
    missing = tmp_path / "missing.toml"
    result = runner.invoke(app, [*COMMANDS[name], "--config", str(missing)])
    _refused(result, name, f"config file {missing} does not exist")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_config_environment_variable(runner: CliRunner, tmp_path: Path, name: str) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[storage\n", encoding="utf-8")
    result = runner.invoke(app, COMMANDS[name], env={"WAHEALTH_CONFIG": str(broken)})
    _refused(result, name, f"config file {broken} is not valid TOML")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_nested_environment_variables(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, COMMANDS[name], env={"WAHEALTH_SERVER__PORT": "not-a-port"})
    _refused(result, name, "invalid configuration (environment): server.port:")


def test_the_three_sources_reach_the_same_storage(runner: CliRunner, tmp_path: Path) -> None:
    storage = f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}"
    key_file = str(tmp_path / "wahealth.key")
    config = tmp_path / "wahealth.toml"
    config.write_text(
        f'[storage]\nurl = "{storage}"\n[security]\nmaster_key_file = "{key_file}"\n',
        encoding="utf-8",
    )
    created = runner.invoke(app, ["accounts", "create", "acme", "--config", str(config)])
    assert created.exit_code == 0, created.output

    def names(*args: str, **env: str) -> list[str]:
        listed = runner.invoke(app, ["accounts", "list", "--json", *args], env=env)
        assert listed.exit_code == 0, listed.output
        return [account["name"] for account in json.loads(listed.stdout)]

    assert names("--config", str(config)) == ["acme"]
    assert names(WAHEALTH_CONFIG=str(config)) == ["acme"]
    assert names(WAHEALTH_STORAGE__URL=storage, WAHEALTH_SECURITY__MASTER_KEY_FILE=key_file) == [
        "acme"
    ]
    # --config beats $WAHEALTH_CONFIG, as for `serve`.
    other = tmp_path / "other.toml"
    other.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "other.db"}"\n')
    assert names("--config", str(other), WAHEALTH_CONFIG=str(config)) == []
