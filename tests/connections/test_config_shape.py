"""The configuration shape of Meta connections works as documented, from a TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.connections._scenario import (
    ACME_GRAPH,
    ACME_PHONE,
    ACME_SECRET,
    ACME_TOKEN,
    ACME_WABA,
    OTHER_TOKEN,
    write_scenario,
)

from wahealth.settings import ConfigError, load_settings
from wahealth.testing import running_app


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "wahealth.key"}"\n'
        "[monitor]\nenabled = false\n"
        f'[upstream]\nscenario = "{write_scenario(tmp_path)}"\naccess_token = "{OTHER_TOKEN}"\n'
        f'[[accounts]]\nname = "acme"\n[[accounts.graph_tokens]]\ntoken = "{ACME_GRAPH}"\n' + body,
        encoding="utf-8",
    )
    return path


async def test_the_documented_shape(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        f"""
[[meta_connections]]
name = "acme"
access_token = "{ACME_TOKEN}"
app_secret = "{ACME_SECRET}"            # optional: sends appsecret_proof
[[spaces]]
id = "acme-space"
account = "acme"
connection = "acme"
wabas = ["{ACME_WABA}"]               # optional when discovered
""",
    )
    settings = load_settings(path)
    assert ACME_TOKEN not in repr(settings)
    assert ACME_SECRET not in repr(settings)
    async with running_app(settings) as running:
        answer = await running.client.get(
            f"/v21.0/{ACME_PHONE}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {ACME_GRAPH}"},
        )
        stored = await running.components.connections.get("acme")
    assert answer.status_code == 200, answer.text
    assert stored is not None
    assert stored.spaces == ("acme-space",)
    assert stored.app_secret_encrypted is not None
    assert ACME_SECRET not in stored.app_secret_encrypted


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            '[[meta_connections]]\nname = "a"\naccess_token = ""\n',
            "meta_connections.0.access_token",
        ),
        ('[[meta_connections]]\nname = "a b"\naccess_token = "t"\n', "meta_connections.0.name"),
        (
            '[[meta_connections]]\nname = "a"\naccess_token = "t"\n'
            '[[meta_connections]]\nname = "a"\naccess_token = "u"\n',
            "meta_connections names must be unique",
        ),
    ],
)
def test_bad_connections_are_refused_at_load(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        load_settings(_config(tmp_path, body))


async def test_a_space_naming_an_unknown_connection_does_not_start(tmp_path: Path) -> None:
    path = _config(tmp_path, '[[spaces]]\nid = "s"\naccount = "acme"\nconnection = "nope"\n')
    with pytest.raises(Exception, match="no Meta connection 'nope'"):
        async with running_app(load_settings(path)):
            pass
