"""The BSP upstream settings: the documented TOML shape, its checks, secrets kept secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wahealth.auth.secretbox import SecretBox
from wahealth.bootstrap import apply_config
from wahealth.bsp_wiring import bsp_space
from wahealth.settings import ConfigError, load_settings
from wahealth.storage import create_engine, session_factory, upgrade
from wahealth.storage.credentials import CredentialRepository
from wahealth.storage.space_upstreams import SpaceUpstreamRepository
from wahealth.storage.tenancy import TenancyRepository
from wahealth.upstream.bsp.config import CamsTemplate

# As the documentation (and issue) writes it, placeholders included.
DOCUMENTED = """
[[accounts]]
name = "demo"

[[spaces]]
id = "d360-space"
account = "demo"
upstream = "d360"                      # default "meta"
[[spaces.d360_channels]]
api_key = "…"
base_url = "https://waba-v2.360dialog.io"   # the default
[[spaces]]
id = "cams-space"
account = "demo"
upstream = "cams"
[spaces.cams]
endpoint = "cams.ap-southeast-1.aliyuncs.com"   # the default
protocol = "https"
access_key_id = "…"
access_key_secret = "…"
cust_space_id = "…"
phone_numbers = ["8613800000001"]
templates = [{ code = "order_update", language = "en" }]
"""


def test_the_documented_shape_loads(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, DOCUMENTED))
    d360, cams = settings.spaces
    assert (d360.upstream, d360.d360_channels[0].base_url) == (
        "d360",
        "https://waba-v2.360dialog.io",
    )
    assert cams.upstream == "cams"
    assert cams.cams is not None
    assert (cams.cams.endpoint, cams.cams.protocol, cams.cams.qps) == (
        "cams.ap-southeast-1.aliyuncs.com",
        "https",
        5,
    )
    assert cams.cams.templates[0].code == "order_update"


def test_defaults_and_meta_stays_the_default(tmp_path: Path) -> None:
    text = """
[[spaces]]
id = "plain"
account = "demo"
[[spaces]]
id = "d"
account = "demo"
upstream = "d360"
[[spaces.d360_channels]]
api_key = "k"
[[spaces]]
id = "c"
account = "demo"
upstream = "cams"
[spaces.cams]
access_key_id = "id"
access_key_secret = "s"
cust_space_id = "x"
"""
    plain, d, c = load_settings(_write(tmp_path, text)).spaces
    assert plain.upstream == "meta"
    assert not plain.d360_channels
    assert plain.cams is None
    assert d.d360_channels[0].base_url == "https://waba-v2.360dialog.io"
    assert c.cams is not None
    assert (c.cams.endpoint, c.cams.protocol) == ("cams.ap-southeast-1.aliyuncs.com", "https")


@pytest.mark.parametrize(
    ("space", "says"),
    [
        ('upstream = "d360"', "needs at least one [[spaces.d360_channels]]"),
        ('upstream = "cams"', "needs a [spaces.cams] table"),
        ('upstream = "graph"', "upstream"),
        ('[[spaces.d360_channels]]\napi_key = "k"', 'only read with upstream = "d360"'),
        (
            'upstream = "d360"\n[[spaces.d360_channels]]\napi_key = "k"\nbase_url = "ftp://x"',
            "http:// or https://",
        ),
        (
            'upstream = "cams"\n[spaces.cams]\naccess_key_id = "i"\naccess_key_secret = "s"\n'
            'cust_space_id = "c"\nqps = 6',
            "qps",
        ),
    ],
)
def test_a_space_without_its_upstreams_settings_is_refused(
    tmp_path: Path, space: str, says: str
) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as info:
        load_settings(_write(tmp_path, f'[[spaces]]\nid = "s"\naccount = "a"\n{space}\n'))
    assert says in str(info.value)


def test_secrets_never_show_in_settings_or_their_errors(tmp_path: Path) -> None:
    text = DOCUMENTED.replace('api_key = "…"', 'api_key = "d360-secret-key"').replace(
        'access_key_secret = "…"', 'access_key_secret = "cams-secret-value"'
    )
    settings = load_settings(_write(tmp_path, text))
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "d360-secret-key" not in shown
    assert "cams-secret-value" not in shown
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text.replace('protocol = "https"', 'protocol = "ftp"')))
    assert "cams-secret-value" not in str(info.value)


async def test_secrets_are_stored_encrypted_and_read_back(tmp_path: Path) -> None:
    text = DOCUMENTED.replace('api_key = "…"', 'api_key = "d360-secret-key"').replace(
        'access_key_secret = "…"', 'access_key_secret = "cams-secret-value"'
    )
    settings = load_settings(_write(tmp_path, text))
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    await upgrade(url)
    engine = create_engine(url)
    box = SecretBox.load(None, tmp_path / "w.key")
    try:
        sessions = session_factory(engine)
        upstreams = SpaceUpstreamRepository(sessions)
        await apply_config(
            settings, TenancyRepository(sessions), CredentialRepository(sessions), box, upstreams
        )
        stored = {row.space_id: row for row in await upstreams.all()}
    finally:
        await engine.dispose()
    raw = _stored_bytes(tmp_path)
    assert b"d360-secret-key" not in raw
    assert b"cams-secret-value" not in raw
    assert set(stored) == {"d360-space", "cams-space"}
    assert json.dumps(dict(stored["cams-space"].settings)).count("secret") == 0
    d360 = bsp_space(stored["d360-space"], box)
    cams = bsp_space(stored["cams-space"], box)
    assert d360 is not None
    assert cams is not None
    assert cams.cams is not None
    assert d360.channels[0].api_key == "d360-secret-key"
    assert cams.cams.access_key_secret == "cams-secret-value"
    assert cams.cams.templates == (CamsTemplate("order_update", "en"),)
    # Nor do the router's own settings show a secret.
    assert "secret" not in repr(cams)
    assert "d360-secret-key" not in repr(d360)
    # A wrong master key opens nothing: the space is left out, not guessed.
    assert bsp_space(stored["cams-space"], SecretBox.load(None, tmp_path / "other.key")) is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wahealth.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _stored_bytes(tmp_path: Path) -> bytes:
    """The database as stored on disk, its journal files included."""
    return b"".join(path.read_bytes() for path in sorted(tmp_path.glob("w.db*")))
