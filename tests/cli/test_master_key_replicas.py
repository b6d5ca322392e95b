"""Replicas share one master key: a replica with another key, or none, refuses to start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tests._databases import database
from tests._processes import START_TIMEOUT_SECONDS, environment, free_port, running, wahealth

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def _config(tmp_path: Path, storage_url: str) -> Path:
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f"""
[storage]
url = "{storage_url}"
[security]
master_key_file = "{tmp_path / "replica.key"}"
[monitor]
enabled = false
[catalog]
sync_on_start = false
[[spaces]]
id = "s"
account = "a"
[[accounts]]
name = "a"
[[accounts.access_keys]]
id = "LTAI5tReplicaKey"
secret = "replica-access-key-secret"
""",
        encoding="utf-8",
    )
    return path


def _serves(config: Path, tmp_path: Path, **env: str) -> None:
    """`wahealth serve` starts and answers /readyz; then it is stopped."""
    port = free_port()
    command = wahealth("serve", "--config", str(config), "--port", str(port))
    with running(
        command, environment(**env), tmp_path / "serve.log", f"http://127.0.0.1:{port}/readyz"
    ):
        pass


def _refused(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = wahealth("serve", "--config", str(config), "--port", str(free_port()))
    return subprocess.run(
        command,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_replica_with_another_key_or_none_refuses_to_start(kind: str, tmp_path: Path) -> None:
    with database(kind, tmp_path) as url:
        config = _config(tmp_path, url)
        _serves(config, tmp_path, WAHEALTH_MASTER_KEY=KEY_A)

        other = _refused(config, WAHEALTH_MASTER_KEY=KEY_B)
        assert other.returncode == 2
        assert other.stderr.splitlines() == [
            "error: refusing to start: the master key in WAHEALTH_MASTER_KEY (master_key) is "
            "not the key the stored secrets are encrypted with. Every replica needs the same "
            "key: set WAHEALTH_MASTER_KEY to it, or copy the key file from a replica that runs."
        ]
        assert "Traceback" not in other.stdout + other.stderr

        # No key at all: refused, and no key file written beside the database's key.
        none = _refused(config)
        assert none.returncode == 2
        [line] = none.stderr.splitlines()
        assert line.startswith(
            "error: refusing to start: no master key: WAHEALTH_MASTER_KEY is unset"
        )
        assert "no new key was created" in line
        assert not (tmp_path / "replica.key").exists()

        # The same key in a key file works as well as in the environment.
        (tmp_path / "replica.key").write_text(KEY_A + "\n", encoding="ascii")
        (tmp_path / "replica.key").chmod(0o600)
        _serves(config, tmp_path)


@pytest.mark.parametrize("kind", ["sqlite"])
def test_rotation_moves_the_check_to_the_new_key(kind: str, tmp_path: Path) -> None:
    with database(kind, tmp_path) as url:
        config = _config(tmp_path, url)
        _serves(config, tmp_path, WAHEALTH_MASTER_KEY=KEY_A)
        # New key first, old key after: starts, and from now on the new key is the key.
        _serves(config, tmp_path, WAHEALTH_MASTER_KEY=f"{KEY_B},{KEY_A}")
        old_only = _refused(config, WAHEALTH_MASTER_KEY=KEY_A)
        assert old_only.returncode == 2
        assert "is not the key the stored secrets are encrypted with" in old_only.stderr
        _serves(config, tmp_path, WAHEALTH_MASTER_KEY=f"{KEY_B},{KEY_A}")
