"""Two `wahealth serve` replicas on one PostgreSQL database share one refresh schedule.

A standalone emulator serves 1,000 nodes (990 phone numbers on 10 WABAs) to both; it
times each node's calls (`/_emulator/calls/nodes`), so what Meta would see is the
measure. Both replicas run the monitor with a 20 s interval:

- for 60 s, every node is fetched once per interval in total: never twice within one
  interval (not by both replicas, not by one), never left out of one;
- after `kill -9` of one replica (its process group, while it holds claims), the other
  refreshes all 1,000 nodes within the lease plus the interval: the dead replica's
  claims expire and its nodes become the other's.

These wait on real time by design (about two minutes in all), bounded at each step.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
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

from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import DEMO_TOKEN, synthetic_waba_id

PHONE_NUMBERS, WABAS = 990, 10
NODES = PHONE_NUMBERS + WABAS
INTERVAL = 20.0
OBSERVED = 60.0
LEASE = 10.0
ROUND = 5.0  # the refresh plans a round every min(5 s, interval)
# A node due at t is taken by the first round of either replica at or after t, and
# fetched in that round: up to a round late, plus the time a loaded machine takes.
LATE = ROUND + 4.0
# Per replica: 500 nodes a round (6,000 / 60 * 5 s), so each round of one replica alone
# cannot take every due node, and the two share the 3,000 calls a minute 1,000 nodes need.
CALLS_PER_MINUTE = 6000


@dataclass
class Cluster:
    emulator: str
    storage_url: str
    replicas: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    def node_calls(self) -> dict[str, dict[str, Any]]:
        answer = httpx.get(f"{self.emulator}/_emulator/calls/nodes", trust_env=False, timeout=10)
        assert answer.status_code == 200
        nodes: dict[str, dict[str, Any]] = answer.json()["nodes"]
        return nodes

    def refreshed_by(self, replica: str) -> int:
        """Nodes this replica says it refreshed, summed over its rounds (its JSON log)."""
        total = 0
        for line in self.logs[replica].read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("event") == "fleet refresh round":
                    total += int(entry["refreshed"])
        return total

    def wait_until(self, done: Any, timeout: float, what: str) -> dict[str, dict[str, Any]]:
        """Poll the emulator's node times until `done(nodes)`; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.node_calls()
            if done(nodes):
                return nodes
            assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
            time.sleep(0.5)


def _config(path: Path, storage_url: str, emulator_port: int) -> Path:
    wabas = [synthetic_waba_id(i) for i in range(WABAS)]
    path.write_text(
        f"""
[storage]
url = "{storage_url}"
[upstream]
kind = "meta"
base_url = "http://127.0.0.1:{emulator_port}"
access_token = "{DEMO_TOKEN}"
[monitor]
enabled = true
interval_seconds = {INTERVAL}
meta_calls_per_minute = {CALLS_PER_MINUTE}
schedule_lease_seconds = {LEASE}
[[spaces]]
id = "fleet-space"
account = "fleet"
wabas = {json.dumps(wabas)}
[[accounts]]
name = "fleet"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("replicas")
    scenario = tmp / "fleet.yaml"
    scenario.write_text(
        yaml.safe_dump(synthetic_scenario(PHONE_NUMBERS, wabas=WABAS).model_dump(mode="json")),
        encoding="utf-8",
    )
    env = environment(WAHEALTH_MASTER_KEY=Fernet.generate_key().decode())
    emulator_port = free_port()
    with postgres_database() as storage_url, ExitStack() as stack:
        config = _config(tmp / "wahealth.toml", storage_url, emulator_port)
        emulator_log = tmp / "emulator.log"
        emulator = start(
            wahealth("emulator", "--scenario", str(scenario), "--port", str(emulator_port)),
            env,
            emulator_log,
        )
        stack.callback(stop, emulator)
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        wait_for(emulator, f"{emulator_url}/_emulator/calls", START_TIMEOUT_SECONDS, emulator_log)
        # Both at once on an empty database, as a deployment starts them.
        replicas, logs, ports = {}, {}, {}
        for name in ("replica1", "replica2"):
            ports[name] = free_port()
            logs[name] = tmp / f"{name}.log"
            command = wahealth("serve", "--config", str(config), "--port", str(ports[name]))
            replicas[name] = start(command, env, logs[name])
            stack.callback(stop, replicas[name])
        for name, process in replicas.items():
            ready = f"http://127.0.0.1:{ports[name]}/readyz"
            wait_for(process, ready, START_TIMEOUT_SECONDS, logs[name])
        running = Cluster(emulator_url, storage_url, replicas, logs)
        # The first pass: every node fetched once (the catalog synced first).
        running.wait_until(lambda nodes: len(nodes) == NODES, 60, "a first fetch of every node")
        yield running


def test_two_replicas_fetch_each_node_once_per_interval(cluster: Cluster) -> None:
    assert all(process.poll() is None for process in cluster.replicas.values())
    before = cluster.node_calls()
    time.sleep(OBSERVED)
    after = cluster.node_calls()
    now = time.monotonic()  # the emulator's clock is the machine's monotonic clock

    assert len(after) == NODES
    counts = {node: after[node]["count"] - before[node]["count"] for node in after}
    # 60 s at one fetch per interval (each a little over 20 s apart): 2 or 3 fetches.
    assert set(counts.values()) <= {2, 3}, sorted(counts.items(), key=lambda kv: kv[1])[:5]
    # Never twice within one interval, by either replica; never an interval left out.
    shortest = min(after[node]["min_gap_seconds"] for node in after)
    longest = max(after[node]["max_gap_seconds"] for node in after)
    assert shortest >= INTERVAL - 0.5
    assert longest <= INTERVAL + LATE
    assert all(now - after[node]["last_at"] <= INTERVAL + LATE for node in after)
    # Both replicas took part: each refreshed a share of the fleet.
    shares = {name: cluster.refreshed_by(name) for name in cluster.replicas}
    assert all(share >= NODES // 2 for share in shares.values()), shares
    assert sum(shares.values()) <= sum(node["count"] for node in after.values())


def _group(leader: int) -> set[int]:
    """The pids of a replica's process group (granian's main process and its worker)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(fields[2]) == leader:
                    pids.add(int(entry.name))
    return pids


async def _held(storage_url: str, pids: set[int]) -> set[str]:
    """Nodes whose live claim belongs to one of these processes (`host:pid:random`)."""
    engine = create_async_engine(storage_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT node_id, claimed_by FROM node_health"
                    " WHERE claimed_until > now() AND claimed_by IS NOT NULL"
                )
            )
            return {node for node, by in rows if int(by.split(":")[-2]) in pids}
    finally:
        await engine.dispose()


def test_after_kill_9_the_other_replica_refreshes_every_node(cluster: Cluster) -> None:
    survivor, victim = cluster.replicas["replica1"], cluster.replicas["replica2"]
    assert survivor.poll() is None
    assert victim.poll() is None
    # Kill the victim while it holds claims: frozen when it is seen holding some, killed
    # (its whole process group, as a crash of the host would) if it still does.
    pids = _group(victim.pid)
    held: set[str] = set()
    deadline = time.monotonic() + INTERVAL + LATE
    while not held:
        assert time.monotonic() < deadline, "replica2 held no claim for a whole interval"
        if asyncio.run(_held(cluster.storage_url, pids)):
            os.killpg(victim.pid, signal.SIGSTOP)
            held = asyncio.run(_held(cluster.storage_url, pids))
            os.killpg(victim.pid, signal.SIGKILL if held else signal.SIGCONT)
        time.sleep(0.05)
    victim.wait(timeout=10)
    killed_at = time.monotonic()

    # Its fetched nodes come due, its claimed ones come free when their lease ends: every
    # node is refreshed by replica1 within the lease plus the interval.
    after = cluster.wait_until(
        lambda nodes: all(node["last_at"] > killed_at for node in nodes.values()),
        LEASE + INTERVAL + LATE,
        f"every node refreshed by the surviving replica ({len(held)} were claimed by the dead)",
    )
    assert len(after) == NODES
    assert survivor.poll() is None
    assert _group(victim.pid) == set()
