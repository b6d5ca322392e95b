"""SIGTERM to a real `wahealth serve`: unready first, in-flight and new requests served, then exit."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from tests._processes import environment, free_port, running, wahealth

TOKEN = "graceful-stop-token"
WABA = "102290129340398"
LATENCY_MS = 3000
DRAIN_SECONDS = 2.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "wahealth.toml"
    path.write_text(
        f"""
[server]
drain_seconds = {DRAIN_SECONDS}
[storage]
url = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"
[security]
master_key_file = "{tmp_path / "wahealth.key"}"
[monitor]
enabled = false
[catalog]
sync_on_start = false
[upstream]
query_deadline_seconds = 30
timeout_seconds = 30
[[spaces]]
id = "s"
account = "a"
wabas = ["{WABA}"]
[[accounts]]
name = "a"
qps = 100
[[accounts.graph_tokens]]
token = "{TOKEN}"
""",
        encoding="utf-8",
    )
    return path


def _delay_every_worker(base: str, workers: int) -> None:
    """Queue a latency fault in each worker's emulator (each worker has its own)."""
    fault = json.dumps({"latency_ms": LATENCY_MS, "count": 1000})
    delayed = 0
    for _ in range(100):
        answer = httpx.post(f"{base}/_emulator/faults", content=fault, trust_env=False)
        assert answer.status_code == 201, answer.text
        delayed += len(answer.json()["pending"]) == 1  # a worker not delayed before
        if delayed == workers:
            return
    raise AssertionError("could not reach every worker")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_turns_unready_drains_then_exits(
    config: Path, tmp_path: Path, workers: int, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = wahealth("serve", "--config", str(config), "--port", str(port))
    command += ["--workers", str(workers)]
    extra = {}
    if workers > 1:  # several workers need shared backends
        url = request.getfixturevalue("redis_url")
        with redis.Redis.from_url(url) as client:
            client.delete(f"wahealth:rc:{WABA}")  # a report cached by an earlier run
        extra = {"WAHEALTH_CACHE__URL": url, "WAHEALTH_RATELIMIT__URL": url}
    log = tmp_path / "serve.log"
    with running(command, environment(**extra), log, f"{base}/readyz") as process:
        _delay_every_worker(base, workers)
        slow: list[tuple[httpx.Response, float]] = []

        def query() -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            url = f"{base}/v21.0/{WABA}?fields=health_status"
            answer = httpx.get(url, headers=headers, timeout=30, trust_env=False)
            slow.append((answer, time.monotonic()))

        in_flight = threading.Thread(target=query)
        in_flight.start()
        time.sleep(0.5)  # the query is waiting on the emulator
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)

        # Unready at once, while it still serves (liveness answers, new connections work).
        seen_stopping = None
        while time.monotonic() - sent < DRAIN_SECONDS / 2:
            answer = httpx.get(f"{base}/readyz", trust_env=False, timeout=2)
            if answer.status_code == 503:
                seen_stopping = answer.json()
                break
            time.sleep(0.05)
        assert seen_stopping == {"status": "stopping"}
        assert process.poll() is None
        assert httpx.get(f"{base}/healthz", trust_env=False, timeout=2).status_code == 200

        in_flight.join(timeout=30)
        assert process.wait(timeout=30) == 0
        # The in-flight query finished with its answer, after the drain and before the exit.
        [(answer, answered)] = slow
        assert answer.status_code == 200
        assert answer.json()["id"] == WABA
        # It was still in flight when the drain ended and the workers were told to stop.
        assert answered - sent >= DRAIN_SECONDS
    output = log.read_text()
    assert "SIGTERM: /readyz now answers 503" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", trust_env=False, timeout=2)
