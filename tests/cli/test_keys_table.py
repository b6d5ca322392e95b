"""`wahealth keys list` reads at 80 columns: every id whole on one line, nothing wider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from wahealth.auth.secretbox import SecretBox
from wahealth.cli import app

ACCOUNT = "acme-corporation-europe"  # long on purpose: it has to fold, not push the width


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WAHEALTH_CONFIG", "WAHEALTH_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "wahealth.key"
    SecretBox.load(None, key_file)
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{key_file}"\n',
        encoding="utf-8",
    )
    return path


def _cli(config: Path, columns: int, *args: str) -> Result:
    result = CliRunner().invoke(
        app, [*args, "--config", str(config)], env={"COLUMNS": str(columns)}
    )
    assert result.exit_code == 0, result.output
    return result


def test_keys_list_fits_80_columns_with_every_id_whole(config: Path) -> None:
    _cli(config, 200, "accounts", "create", ACCOUNT)
    key = ["keys", "create", "--account", ACCOUNT]
    for _ in range(2):
        _cli(config, 200, *key, "--kind", "access-key")
    _cli(config, 200, *key, "--kind", "graph", "--label", "billing service, production")
    _cli(
        config,
        200,
        *key,
        *("--kind", "d360", "--phone-number-id", "106540352242922", "--allow-unsynced"),
        *("--label", "support line for the spring campaign"),
    )
    _cli(config, 200, "keys", "revoke", "graph:1")
    ids = [k["id"] for k in json.loads(_cli(config, 200, "keys", "list", "--json").stdout)]
    assert len(ids) == 4

    table = _cli(config, 80, "keys", "list").stdout
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80, table
    first_cells = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    assert sorted(cell for cell in first_cells if cell) == sorted(ids), table
    # Readable, not just narrow: headers whole, the phone number id whole, the long account
    # name folded over two lines at most (it used to take five, four letters per line).
    [header] = [line for line in lines if line.startswith("┃")]
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "id",
        "account",
        "phone / label",
        "created",
    ]
    assert "106540352242922" in table
    first_row = lines[lines.index(header) + 2 :][:2]
    account_cells = [line.split("│")[2].strip() for line in first_row]
    assert "".join(account_cells) == ACCOUNT, table
    assert table.count("revoked") == 1
