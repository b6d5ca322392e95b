"""`wahealth check` asks Meta with the node's connection: `--connection`, or that of the
configured space listing `--waba`; the default token cannot see another business's nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.connections._scenario import (
    ACME_PHONE,
    ACME_SECRET,
    ACME_TOKEN,
    ACME_WABA,
    OTHER_TOKEN,
    write_scenario,
)
from typer.testing import CliRunner

from wahealth.cli import app
from wahealth.testing_server import RunningServer, serve_in_thread
from wahealth.upstream.emulator import create_emulator
from wahealth.upstream.emulator.scenario import load_scenario


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[RunningServer]:
    with serve_in_thread(create_emulator(load_scenario(write_scenario(tmp_path)))) as server:
        yield server


def _config(tmp_path: Path, base_url: str, *, space: bool, secret: str = ACME_SECRET) -> Path:
    config = tmp_path / "wahealth.toml"
    space_text = (
        f'[[spaces]]\nid = "acme-space"\naccount = "acme"\nconnection = "acme"\n'
        f'wabas = ["{ACME_WABA}"]\n[[accounts]]\nname = "acme"\n'
        if space
        else ""
    )
    config.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "wahealth.key"}"\n'
        "[monitor]\nenabled = false\n"
        f'[upstream]\nkind = "meta"\nbase_url = "{base_url}"\naccess_token = "{OTHER_TOKEN}"\n'
        f'[[meta_connections]]\nname = "acme"\naccess_token = "{ACME_TOKEN}"\n'
        f'app_secret = "{secret}"\n' + space_text,
        encoding="utf-8",
    )
    return config


def _check(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["check", *args, "--config", str(config)], env={"WAHEALTH_META_TOKEN": ""}
    )
    return result.exit_code, result.output


def test_check_uses_the_spaces_connection_or_the_one_named(
    tmp_path: Path, emulator: RunningServer
) -> None:
    listed = _config(tmp_path, emulator.base_url, space=True)
    # The space listing the WABA names the connection: its token and appsecret_proof are used.
    code, out = _check(listed, "--waba", ACME_WABA)
    assert code == 0, out
    # A node id alone names no WABA: the default token, which cannot see acme's nodes.
    code, out = _check(listed, "--node", ACME_PHONE)
    assert code == 3, out
    code, out = _check(listed, "--node", ACME_PHONE, "--connection", "acme")
    assert code == 0, out
    code, out = _check(listed, "--node", ACME_PHONE, "--connection", "nope")
    assert code == 3
    assert "no Meta connection 'nope'" in out


def test_a_wrong_app_secret_on_the_connection_is_metas_refusal(
    tmp_path: Path, emulator: RunningServer
) -> None:
    config = _config(tmp_path, emulator.base_url, space=False, secret="not-the-secret")
    code, out = _check(config, "--node", ACME_PHONE, "--connection", "acme")
    assert code == 3
    assert "appsecret_proof" in out
