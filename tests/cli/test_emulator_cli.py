"""`wahealth emulator`: a real process serving the scenario on a port it prints."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.upstream.seed_examples import BY_NODE
from typer.testing import CliRunner

from wahealth.cli import app

LAUNCH = "from wahealth.cli import main; main()"


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'tokens = ["tok-a", "tok-b"]\n[[businesses]]\nid = "1"\n[[apps]]\nid = "2"\n'
        '[[wabas]]\nid = "3"\nbusiness = "1"\napp = "2"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "emulator", "--port", "0", "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(3)]
        yield process, banner
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


def test_emulator_serves_on_the_printed_port(
    emulator_process: tuple[subprocess.Popen[str], list[str]],
) -> None:
    process, banner = emulator_process
    match = re.match(r"Meta emulator listening on (http://127\.0\.0\.1:\d+) ", banner[0])
    assert match, banner
    assert banner[1] == "accepted tokens: tok-a, tok-b\n"
    base_url = match.group(1)
    response = httpx.get(f"{base_url}/v21.0/3?fields=health_status&access_token=tok-b", timeout=5)
    assert response.status_code == 200
    assert response.json()["health_status"]["can_send_message"] == "AVAILABLE"
    assert httpx.get(f"{base_url}/v21.0/3", timeout=5).status_code == 401
    assert process.poll() is None


def test_default_scenario_is_the_demo() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split()[4]
        assert process.stdout.readline() == "accepted tokens: demo-meta-token\n"
        response = httpx.get(
            f"{base_url}/v21.0/105154286024403",
            params={"fields": "health_status"},
            headers={"Authorization": "Bearer demo-meta-token"},
            timeout=5,
        )
        assert response.json() == BY_NODE["105154286024403"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def test_malformed_scenario_is_a_configuration_error(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("tokens: [x]\nwabas: [{id: '1', business: nope, app: nope}]\n")
    result = CliRunner().invoke(app, ["emulator", "--scenario", str(scenario), "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {scenario}: waba 1 refers to unknown business 'nope'\n"


def test_port_in_use_exits_3() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["emulator", "--port", str(port)])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")


def test_the_printed_address_already_takes_connections() -> None:
    # The port is printed before uvicorn runs: a client that connects at once is queued
    # by the kernel until the server accepts, not refused.
    from wahealth.cli.emulator import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=2):
            pass
    finally:
        sock.close()
