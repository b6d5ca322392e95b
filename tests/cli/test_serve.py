"""`wahealth serve` as a real process: a busy address is refused; demo credentials shown once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests._healthz import wait_for_healthz

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The embedded default on its own storage; no polling, so a start does little."""
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"\n'
        f'[security]\nmaster_key_file = "{tmp_path / "wahealth.key"}"\n'
        "[monitor]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def _environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WAHEALTH_") and k not in _PROXY_VARS
    }
    env["PYTHONUNBUFFERED"] = "1"  # the credentials reach the pipe while the server runs
    env["COLUMNS"] = "200"
    return env


def _serve(config: Path, port: int) -> list[str]:
    command = "from wahealth.cli import main; main()"
    return [sys.executable, "-c", command, "serve", "--config", str(config), "--port", str(port)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _refused_at_once(config: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run a serve that must not start; bounded, and its process group killed if it does."""
    process = subprocess.Popen(
        _serve(config, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=START_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"a second server started on busy port {port}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _assert_busy_refusal(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert "Demo credentials" not in result.stdout


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "SO_REUSEPORT"])
def test_a_busy_port_is_refused_in_one_line(config: Path, reuse_port: bool) -> None:
    with socket.socket() as listener:
        if reuse_port:  # as granian's own listener does
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = _refused_at_once(config, port)
    _assert_busy_refusal(result, port)
    # Refused before storage was prepared: no demo credentials were created and lost.
    assert not (config.parent / "wahealth.db").exists()


@contextmanager
def _running(config: Path, port: int) -> Iterator[list[str]]:
    """Serve until the block ends; the list then holds what the server printed on stdout."""
    printed: list[str] = []
    process = subprocess.Popen(
        _serve(config, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_environment(),
        start_new_session=True,
    )
    try:
        wait_for_healthz(process, port, START_TIMEOUT_SECONDS)
        yield printed
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            stdout, _ = process.communicate(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, _ = process.communicate()
        printed.append(stdout)


def test_credentials_once_then_a_hint_and_no_second_server_on_the_port(config: Path) -> None:
    port = _free_port()
    with _running(config, port) as first_output:
        # A second server on the same port is refused while the first keeps serving.
        _assert_busy_refusal(_refused_at_once(config, port), port)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).is_success
    [printed] = first_output
    assert "Demo credentials (shown once" in printed
    assert "AccessKey secret" in printed

    with _running(config, port) as restart_output:
        pass
    [printed] = restart_output
    assert "AccessKey secret" not in printed
    assert (
        "Demo credentials (account demo, space demo-space) were shown at the first start only; "
        "to create new ones:\n"
        f"  wahealth keys create --config {config} --account demo --kind graph  "
        "(or --kind access-key, or --kind d360 --phone-number-id 106540352242922)\n"
    ) in printed
