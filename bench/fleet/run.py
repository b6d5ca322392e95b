"""Fleet benchmark: memory and start-up time of one `wahealth serve` watching a big fleet.

    .venv/bin/python bench/fleet/run.py [--phone-numbers 100000] [--wabas 200] [--timeout 180]

A synthetic scenario (`--phone-numbers` numbers spread over `--wabas` WABAs, see
`wahealth.upstream.emulator.synthetic`) is served by `wahealth emulator` in its own process
on a loopback port. Then `wahealth serve` runs twice, each time in its own process tree
with a fresh SQLite database, one worker, upstream `meta` pointed at the emulator, and one
account with one space:

1. with no WABAs: its resident memory (RSS, all its processes) once ready;
2. with every WABA of the scenario, the monitor on and a Meta budget large enough for a
   full pass inside a minute: the time from starting the process to the catalog being
   synced (every number in storage) and to every node fetched once (a stored report per
   node, which is when a refreshed node counts: fetched and recorded), read from the
   SQLite file; then the RSS of its process tree (granian's main process and worker), and
   the Graph calls the emulator served until then (the catalog sync's pages bring the
   numbers' health, so they count once per page, not once per number).

Everything is bounded: each phase gives up after `--timeout` seconds. The machine's load
average is printed beside the figures (other work on its cores slows both processes);
`--logs DIR` keeps each server's log there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import DEMO_TOKEN, synthetic_waba_id

HOST = "127.0.0.1"
SPACE = "fleet-space"
POLL_SECONDS = 0.25


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from wahealth.cli import main; main()", *args]


@contextlib.contextmanager
def _emulator(scenario_file: Path, timeout: float) -> Iterator[tuple[str, int]]:
    process = subprocess.Popen(
        _cli("emulator", "--scenario", str(scenario_file), "--port", "0"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if "listening on " not in first:
            raise RuntimeError(f"the emulator did not start: {first!r}")
        url = first.split("listening on ")[1].split()[0]
        _wait_http(f"{url}/_emulator/calls", timeout)
        yield url, process.pid
    finally:
        _stop(process)


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _config(workdir: Path, emulator_url: str, wabas: list[str], port: int) -> Path:
    path = workdir / "wahealth.toml"
    path.write_text(
        f"""
[server]
host = "{HOST}"
port = {port}
workers = 1
[storage]
url = "sqlite+aiosqlite:///{workdir / "wahealth.db"}"
[security]
master_key_file = "{workdir / "wahealth.key"}"
[upstream]
kind = "meta"
base_url = "{emulator_url}"
access_token = "{DEMO_TOKEN}"
timeout_seconds = 60
[monitor]
enabled = true
interval_seconds = 3600
meta_calls_per_minute = 1000000
[[spaces]]
id = "{SPACE}"
account = "fleet"
wabas = {json.dumps(wabas)}
[[accounts]]
name = "fleet"
""",
        encoding="utf-8",
    )
    return path


def _tree(root: int) -> set[int]:
    """`root` and all its descendants (granian runs workers as children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
                parents[int(entry.name)] = int(stat[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree


def _cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time these processes have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants."""
    total = 0
    for pid in _tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _count(database: Path, query: str) -> int:
    if not database.exists():
        return 0
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        ) as db:
            found = db.execute(query).fetchone()
    except sqlite3.OperationalError:  # not migrated yet, or locked for a moment
        return -1
    return int(found[0]) if found else 0


PHONE_NUMBERS = "SELECT count(*) FROM phone_numbers"
FETCHED = "SELECT count(*) FROM node_health WHERE fetched_at IS NOT NULL"


@dataclass
class ServeRun:
    ready_seconds: float = float("nan")
    synced_seconds: float = float("nan")
    fetched_seconds: float = float("nan")
    rss_bytes: int = 0
    fetched: int = 0
    ended_seconds: float = float("nan")  # when watching stopped (all fetched, or timeout)
    cpu_seconds: float = 0.0  # used by the server's processes until then
    emulator_cpu_seconds: float = 0.0  # used by the emulator during the run
    meta_calls: int = 0  # Graph calls the emulator served until then (a batch item is one)


def _meta_calls(emulator_url: str) -> int:
    calls = httpx.get(f"{emulator_url}/_emulator/calls", timeout=10, trust_env=False).json()
    return int(calls["total"])


def _serve(workdir: Path, config: Path, expect_numbers: int, expect_nodes: int,
           timeout: float, emulator_pid: int, emulator_url: str) -> ServeRun:  # fmt: skip
    """Start `wahealth serve`, watch its database until every node is fetched, measure RSS."""
    env = dict(os.environ)
    port = int(config.read_text().split("port = ")[1].split()[0])
    database = workdir / "wahealth.db"
    run = ServeRun()
    log = (workdir / "serve.log").open("w")
    emulator_cpu = _cpu_seconds({emulator_pid})
    calls_before = _meta_calls(emulator_url)
    started = time.monotonic()
    process = subprocess.Popen(_cli("serve", "--config", str(config)), env=env, stdout=log,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = started + timeout
        url = f"http://{HOST}:{port}/healthz"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited; log:\n{(workdir / 'serve.log').read_text()}")
            now = time.monotonic() - started
            if run.ready_seconds != run.ready_seconds:  # nan: not ready yet
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                        run.ready_seconds = now
            if run.synced_seconds != run.synced_seconds and (
                _count(database, PHONE_NUMBERS) >= expect_numbers
            ):
                run.synced_seconds = now
            run.fetched = max(run.fetched, _count(database, FETCHED))
            if run.fetched >= expect_nodes and run.ready_seconds == run.ready_seconds:
                run.fetched_seconds = now
                break
            time.sleep(POLL_SECONDS)
        else:
            print(f"  gave up after {timeout:.0f} s: {run.fetched} of {expect_nodes} fetched",
                  file=sys.stderr)  # fmt: skip
        run.ended_seconds = time.monotonic() - started
        run.cpu_seconds = _cpu_seconds(_tree(process.pid))
        run.emulator_cpu_seconds = _cpu_seconds({emulator_pid}) - emulator_cpu
        run.meta_calls = _meta_calls(emulator_url) - calls_before
        time.sleep(1.0)  # let the last round's objects go before reading memory
        run.rss_bytes = _tree_rss_bytes(process.pid)
        return run
    finally:
        _stop(process)
        log.close()


def _load(averages: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in averages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phone-numbers", type=int, default=100_000)
    parser.add_argument("--wabas", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per phase, at most")
    parser.add_argument("--logs", type=Path, help="keep each server's log in this directory")
    args = parser.parse_args()
    wabas = [synthetic_waba_id(i) for i in range(args.wabas)]
    nodes = args.phone_numbers + args.wabas
    with tempfile.TemporaryDirectory(prefix="wahealth-fleet-") as tmp:
        workdir = Path(tmp)
        scenario_file = workdir / "scenario.yaml"
        scenario = synthetic_scenario(args.phone_numbers, wabas=args.wabas)
        # libyaml's dumper when built in: the pure-Python one takes a minute at 100,000 numbers.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        text = yaml.dump(scenario.model_dump(mode="json"), Dumper=dumper)
        scenario_file.write_text(text, "utf-8")
        with _emulator(scenario_file, args.timeout) as (url, emulator_pid):
            print(f"emulator {url}: {args.phone_numbers:,} phone numbers on {args.wabas} WABAs")
            empty_dir, fleet_dir = workdir / "empty", workdir / "fleet"
            empty_dir.mkdir()
            fleet_dir.mkdir()
            empty = _serve(empty_dir, _config(empty_dir, url, [], _free_port()), 0, 0,
                           args.timeout, emulator_pid, url)  # fmt: skip
            print(f"no nodes: ready in {empty.ready_seconds:.1f} s, "
                  f"RSS {empty.rss_bytes / 2**20:.0f} MB")  # fmt: skip
            load_before = os.getloadavg()
            fleet = _serve(fleet_dir, _config(fleet_dir, url, wabas, _free_port()),
                           args.phone_numbers, nodes, args.timeout, emulator_pid,
                           url)  # fmt: skip
            load_after = os.getloadavg()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for name, directory in (("empty", empty_dir), ("fleet", fleet_dir)):
                    shutil.copy(directory / "serve.log", args.logs / f"serve-{name}.log")
    print(f"\n{'':<34} {'measured':>10} {'target':>8}")
    print(f"{'RSS, no nodes':<34} {empty.rss_bytes / 2**20:>7.0f} MB")
    print(f"{'RSS after every node fetched once':<34} {fleet.rss_bytes / 2**20:>7.0f} MB "
          f"{'<= 300 MB':>10}")  # fmt: skip
    print(f"{'start to catalog synced':<34} {fleet.synced_seconds:>8.1f} s")
    print(f"{'start to ready (/healthz 200)':<34} {fleet.ready_seconds:>8.1f} s")
    print(f"{'start to every node fetched once':<34} {fleet.fetched_seconds:>8.1f} s "
          f"{'<= 30 s':>10}")  # fmt: skip
    print(f"nodes fetched: {fleet.fetched:,} of {nodes:,} "
          f"({args.wabas} WABAs + {args.phone_numbers:,} phone numbers)")  # fmt: skip
    print(f"CPU time until then: server {fleet.cpu_seconds:.1f} s, "
          f"emulator {fleet.emulator_cpu_seconds:.1f} s")  # fmt: skip
    print(f"load average (1, 5, 15 min): {_load(load_before)} before the fleet run, "
          f"{_load(load_after)} after")  # fmt: skip
    print(f"Meta calls until then: {fleet.meta_calls:,} (a batch sub-request counts as one; "
          "the catalog's pages bring the numbers' health)")  # fmt: skip
    if fleet.ended_seconds > 0:
        print(f"{fleet.fetched / fleet.ended_seconds:,.0f} nodes/s fetched and stored, "
              "from start")  # fmt: skip


if __name__ == "__main__":
    main()
