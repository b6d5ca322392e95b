"""/metrics with several workers: every worker's counters merged, whichever one answers.

First the merge itself (two publishers standing for two processes), then a real
`wahealth serve --workers 2` scraped over the socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests._healthz import wait_for_healthz

from wahealth.metrics import Instruments, Metrics
from wahealth.metrics.multiprocess import MULTIPROC_ENV, Publisher

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
D360_2XX = ("wahealth_http_requests_total", frozenset({("dialect", "d360"), ("status", "2xx")}))
START_TIMEOUT_SECONDS = 60.0
PUBLISH_TIMEOUT_SECONDS = 15.0
_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")

# The Meta budget of the default token's app (each connection has its own).
DEFAULT_APP = frozenset({("connection", "default")})


def parse(text: str) -> Samples:
    """Samples by (name, labels); the `replica` label is checked on its own (`replicas`)."""
    return {
        (sample.name, frozenset((k, v) for k, v in sample.labels.items() if k != "replica")): (
            sample.value
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def replicas(text: str) -> dict[str, set[str | None]]:
    """The `replica` labels each sample name carries (None: a sample without one)."""
    found: dict[str, set[str | None]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).add(sample.labels.get("replica"))
    return found


class _Flight:
    def __init__(self, in_flight: int) -> None:
        self.in_flight_count = in_flight
        self.started_total = in_flight
        self.joined_total = 0


async def test_two_processes_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    first, second = Instruments(coalescer=_Flight(2)), Instruments(coalescer=_Flight(3))
    for _ in range(3):
        first.observe_request("/health_status", 200, 0.002)
    second.observe_request("/health_status", 200, 0.3)
    second.observe_request("/v21.0/1", 404, 0.01)
    second.count_meta_calls(50)
    one = Publisher(str(tmp_path), process_id=lambda: 101)
    two = Publisher(str(tmp_path), process_id=lambda: 102)
    for _ in range(2):  # publishing again writes the same totals: nothing is counted twice
        one.publish(first.families())
        two.publish(second.families())
    scraper = Metrics(multiprocess_dir=str(tmp_path))
    try:
        merged = parse((await scraper.render()).decode())
        one.close()  # the first process ends: its counts stay, its live gauges go
        after = parse((await scraper.render()).decode())
    finally:
        two.close()
        assert scraper.publisher is not None
        scraper.publisher.close()

    latency = "wahealth_http_request_duration_seconds"
    d360 = frozenset({("dialect", "d360")})
    assert merged[D360_2XX] == 4
    assert merged[(f"{latency}_count", d360)] == 4
    assert merged[(f"{latency}_sum", d360)] == pytest.approx(0.306)
    assert merged[(f"{latency}_bucket", d360 | {("le", "0.005")})] == 3
    assert merged[(f"{latency}_bucket", d360 | {("le", "0.5")})] == 4
    assert merged[(f"{latency}_bucket", d360 | {("le", "+Inf")})] == 4
    graph_4xx = (
        "wahealth_http_requests_total",
        frozenset({("dialect", "graph"), ("status", "4xx")}),
    )
    assert merged[graph_4xx] == 1
    assert merged[("wahealth_meta_calls_total", frozenset())] == 50
    assert merged[("wahealth_coalesce_in_flight", frozenset())] == 5
    assert merged[("wahealth_coalesce_started_total", frozenset())] == 5
    assert not any(name.startswith("process_") for name, _ in merged)

    assert after[D360_2XX] == 4
    assert after[("wahealth_coalesce_in_flight", frozenset())] == 3
    assert after[("wahealth_coalesce_started_total", frozenset())] == 5


# --- a real server with two workers ------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _serve(config: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAHEALTH_")}
    for name in (*_PROXY_VARS, MULTIPROC_ENV):
        env.pop(name, None)
    command = "from wahealth.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", command, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for_healthz(process, port, START_TIMEOUT_SECONDS)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _get_metrics(port: int) -> str:
    # A new connection each time: any worker may answer.
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False, timeout=10)
    assert response.status_code == 200
    return response.text


def _scrape(port: int) -> Samples:
    return parse(_get_metrics(port))


def test_serve_with_two_workers_merges_every_workers_counts(tmp_path: Path, redis_url: str) -> None:
    # Our own account and key: the rate limiter in the shared Redis keys by account.
    account, key = f"mp-{uuid.uuid4().hex[:12]}", f"mp-key-{uuid.uuid4().hex}"
    config = tmp_path / "wahealth.toml"
    config.write_text(
        f"""
[server]
workers = 2
[storage]
url = "sqlite+aiosqlite:///{tmp_path / "wahealth.db"}"
[security]
master_key_file = "{tmp_path / "wahealth.key"}"
[monitor]
enabled = false
[cache]
url = "{redis_url}"
[ratelimit]
url = "{redis_url}"
[[spaces]]
id = "{account}-space"
account = "{account}"
wabas = ["102290129340398", "299399000000001"]
[[accounts]]
name = "{account}"
qps = 1000
d360_keys = [{{ key = "{key}", phone_number_id = "106540352242922" }}]
""",
        encoding="utf-8",
    )
    port, requests = _free_port(), 20
    with _serve(config, port):
        for _ in range(requests):
            answer = httpx.get(
                f"http://127.0.0.1:{port}/health_status",
                headers={"D360-API-KEY": key},
                trust_env=False,
            )
            assert answer.status_code == 200, answer.text
        # Each worker syncs both WABAs at its start: four calls, two per worker, once both
        # have started (/healthz answers as soon as one of them is ready).
        phone_numbers = ("wahealth_upstream_calls_total", frozenset({("method", "phone_numbers")}))
        deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
        while (seen := _scrape(port)).get(D360_2XX) != requests or seen.get(phone_numbers) != 4:
            assert time.monotonic() < deadline, "the workers' counts were not merged"
            time.sleep(0.2)
        scrapes = [_scrape(port) for _ in range(6)]
        texts = [_get_metrics(port) for _ in range(4)]

    # Whichever worker answers, this replica's series carry its name (by default
    # <hostname>:<port>); the figures every replica reads alike from storage and Redis do not.
    this_replica = f"{socket.gethostname()}:{port}"
    for text in texts:
        labels = replicas(text)
        assert labels["wahealth_http_requests_total"] == {this_replica}
        assert labels["wahealth_upstream_calls_total"] == {this_replica}
        assert labels["wahealth_meta_budget_spent_calls"] == {None}
        assert labels["wahealth_node_status"] == {None}

    for samples in scrapes:
        assert samples[D360_2XX] == requests
        assert samples[phone_numbers] == 4
        # One Meta budget in Redis for both workers: the budget is not their sum.
        assert samples[("wahealth_meta_budget_calls_per_minute", DEFAULT_APP)] == 600
        assert samples[("wahealth_meta_budget_spent_calls", DEFAULT_APP)] >= 0
        # Claims held, read from storage: none here (the monitor is off).
        assert samples[("wahealth_schedule_claims_held", frozenset())] == 0
        assert samples[("wahealth_alert_claims_held", frozenset())] == 0
        node = frozenset(
            {
                ("space", f"{account}-space"),
                ("node_id", "106540352242922"),
                ("kind", "PHONE_NUMBER"),
            }
        )
        assert samples[("wahealth_node_status", node)] == 0
        assert not any(name.startswith("process_") for name, _ in samples)
