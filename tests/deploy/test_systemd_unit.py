"""deploy/wahealth@.service: valid for systemd-analyze, hardened, stopping the way the drain needs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "wahealth@.service"
ANALYZE = shutil.which("systemd-analyze")
INSTALLED_AT = "/opt/wahealth/bin/wahealth"

needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed: the unit is not verified"
)


def _instance(tmp_path: Path) -> Path:
    """The unit as `wahealth@8081.service`, run from this environment's `wahealth`."""
    wahealth = Path(sys.executable).parent / "wahealth"
    assert wahealth.exists()
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED_AT) == 1
    instance = tmp_path / "wahealth@8081.service"
    instance.write_text(text.replace(INSTALLED_AT, str(wahealth)), encoding="utf-8")
    return instance


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


@needs_analyze
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "verify", str(_instance(tmp_path))], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@needs_analyze
def test_exposure_is_low(tmp_path: Path) -> None:
    assert ANALYZE is not None
    # Exposure on systemd's scale of 0 (locked down) to 10 (unprotected), in tenths: 2.0.
    command = [ANALYZE, "security", "--offline=yes", "--threshold=20", str(_instance(tmp_path))]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:]


def test_hardening_and_stop_options() -> None:
    service = _service()
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ReadWritePaths": "/var/lib/wahealth",
        "StateDirectory": "wahealth",
        "CapabilityBoundingSet": "",
        "User": "wahealth",
        # SIGTERM to the main process only: it drains, then stops its workers.
        "KillMode": "mixed",
        "KillSignal": "SIGTERM",
    }
    assert {name: service.get(name) for name in expected} == expected
