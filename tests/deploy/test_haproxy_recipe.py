"""deploy/haproxy.cfg in front of two `wahealth serve` replicas on one PostgreSQL and Redis.

The replicas share a standalone Meta emulator as their upstream. A client polling through
HAProxy sees only 200s while one replica is stopped with SIGTERM and started again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from tests._databases import postgres_database
from tests._processes import (
    START_TIMEOUT_SECONDS,
    environment,
    free_port,
    start,
    stop,
    wahealth,
    wait_for,
)

RECIPE = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
DEBIAN_HAPROXY = "/usr/sbin/haproxy"  # not on a user's PATH
HAPROXY = shutil.which("haproxy") or (
    DEBIAN_HAPROXY if os.access(DEBIAN_HAPROXY, os.X_OK) else None
)
TOKEN = "haproxy-recipe-token"
WABA = "102290129340398"
DRAIN_SECONDS = 3


def _config(tmp_path: Path, storage_url: str, redis_url: str, emulator_port: int) -> Path:
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f"""
[server]
drain_seconds = {DRAIN_SECONDS}
[storage]
url = "{storage_url}"
[cache]
url = "{redis_url}"
[ratelimit]
url = "{redis_url}"
[upstream]
kind = "meta"
base_url = "http://127.0.0.1:{emulator_port}"
access_token = "demo-meta-token"
[monitor]
enabled = false
[[spaces]]
id = "s"
account = "a"
wabas = ["{WABA}"]
[[accounts]]
name = "a"
qps = 100000
[[accounts.graph_tokens]]
token = "{TOKEN}"
""",
        encoding="utf-8",
    )
    return path


class Client(threading.Thread):
    """Asks through HAProxy in a loop, counting statuses and which replica answered."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.statuses: Counter[int | str] = Counter()
        self.replicas: Counter[str] = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(trust_env=False, timeout=10) as http:
            while not self.done.is_set():
                try:
                    answer = http.get(self.url, headers=headers)
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                else:
                    self.statuses[answer.status_code] += 1
                    self.replicas[answer.headers.get("x-wahealth-replica", "?")] += 1
                time.sleep(0.01)

    def seen_since(self, replica: str, count: int, timeout: float) -> None:
        """Wait until `replica` answered `count` more requests."""
        target = self.replicas[replica] + count
        deadline = time.monotonic() + timeout
        while self.replicas[replica] < target:
            assert time.monotonic() < deadline, f"{replica} not in rotation: {self.replicas}"
            time.sleep(0.05)


def _start_all(
    stack: ExitStack,
    commands: dict[str, tuple[list[str], dict[str, str]]],
    tmp_path: Path,
    urls: dict[str, str],
) -> dict[str, subprocess.Popen[bytes]]:
    """Start every command at once, stopped when the stack closes; wait until each answers."""
    processes = {}
    for name, (command, env) in commands.items():
        processes[name] = start(command, env, tmp_path / f"{name}.log")
        stack.callback(stop, processes[name])
    for name, process in processes.items():
        wait_for(process, urls[name], START_TIMEOUT_SECONDS, tmp_path / f"{name}.log")
    return processes


@pytest.mark.skipif(
    HAPROXY is None, reason="haproxy is not installed: the HAProxy recipe is not tested"
)
def test_two_replicas_behind_haproxy_one_stopped_and_started_again(
    tmp_path: Path, redis_url: str
) -> None:
    assert HAPROXY is not None
    with redis.Redis.from_url(redis_url) as client:
        client.delete(f"wahealth:rc:{WABA}")
    emulator_port, front, port1, port2 = (free_port() for _ in range(4))
    env = environment(WAHEALTH_MASTER_KEY=Fernet.generate_key().decode())
    haproxy_env = environment(
        WAHEALTH_FRONTEND=f"127.0.0.1:{front}",
        WAHEALTH_REPLICA1=f"127.0.0.1:{port1}",
        WAHEALTH_REPLICA2=f"127.0.0.1:{port2}",
    )
    check = subprocess.run(
        [HAPROXY, "-c", "-f", str(RECIPE)], env=haproxy_env, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with postgres_database() as storage_url, ExitStack() as stack:
        config = _config(tmp_path, storage_url, redis_url, emulator_port)

        def replica(port: int) -> tuple[list[str], dict[str, str]]:
            return wahealth("serve", "--config", str(config), "--port", str(port)), env

        emulator = wahealth("emulator", "--port", str(emulator_port)), env
        _start_all(
            stack,
            {"emulator": emulator},
            tmp_path,
            {"emulator": f"http://127.0.0.1:{emulator_port}/_emulator/calls"},
        )
        # Both at once on an empty database: the replicas race to migrate it, as in production.
        processes = _start_all(
            stack,
            {
                "replica1": replica(port1),
                "replica2": replica(port2),
                "haproxy": ([HAPROXY, "-db", "-f", str(RECIPE)], haproxy_env),
            },
            tmp_path,
            {
                "replica1": f"http://127.0.0.1:{port1}/readyz",
                "replica2": f"http://127.0.0.1:{port2}/readyz",
                "haproxy": f"http://127.0.0.1:{front}/readyz",
            },
        )
        client = Client(f"http://127.0.0.1:{front}/v21.0/{WABA}?fields=health_status")
        client.start()
        try:
            client.seen_since("replica1", 5, timeout=15)
            client.seen_since("replica2", 5, timeout=15)

            # Stop the second replica the way systemd or Docker do.
            assert stop(processes["replica2"], signal.SIGTERM) == 0
            answered_by_2 = client.replicas["replica2"]
            client.seen_since("replica1", 20, timeout=15)
            assert client.replicas["replica2"] == answered_by_2  # out of rotation

            # Start it again: back in rotation once its /readyz says so.
            _start_all(
                stack,
                {"replica2b": replica(port2)},
                tmp_path,
                {"replica2b": f"http://127.0.0.1:{port2}/readyz"},
            )
            client.seen_since("replica2", 5, timeout=20)
        finally:
            client.done.set()
            client.join(timeout=15)
        # HAProxy took it out of rotation by its /readyz (503), not by a refused connection.
        states = [
            line.split(" is ", 1)[1]
            for line in (tmp_path / "haproxy.log").read_text().splitlines()
            if line.startswith("[WARNING]") and "wahealth_replicas/replica2 is" in line
        ]
        first_up = next(i for i, state in enumerate(states) if state.startswith("UP"))
        assert states[first_up + 1].startswith("DOWN, reason: Layer7 wrong status, code: 503")
        assert states[first_up + 2].startswith("UP")
        calls = httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/calls", trust_env=False)
    assert set(client.statuses) == {200}, client.statuses
    assert client.statuses[200] > 100
    # Every answer but the first of each replica came from the shared Redis cache.
    assert calls.json()["by_path"].get(f"/{WABA}", 0) <= 2
