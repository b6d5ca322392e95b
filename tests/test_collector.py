"""A server worker settles the garbage collector once it has built its app.

Checked in a child process: freezing the test process's objects would keep the cycles
of every app the suite builds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wahealth import collector

_CHILD = """
import gc, json, os
from wahealth.app import app_from_environment
before = gc.get_threshold(), gc.get_freeze_count()
app_from_environment()
print(json.dumps({"before": before, "after": [gc.get_threshold(), gc.get_freeze_count()]}))
"""


def test_a_worker_freezes_what_it_built_and_widens_the_young_generation(tmp_path: Path) -> None:
    config = tmp_path / "wahealth.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "w.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "w.key"}"\n',
        encoding="utf-8",
    )
    env = {"WAHEALTH_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    (threshold, frozen_before), (after, frozen) = seen["before"], seen["after"]
    assert threshold == [700, 10, 10]
    assert frozen_before == 0
    assert after == [collector.YOUNG_THRESHOLD, collector.MIDDLE_THRESHOLD, collector.OLD_THRESHOLD]
    assert frozen > 10_000  # the imported modules and the app, never walked again
