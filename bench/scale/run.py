"""Scale-out benchmark: 1 vs 2 `wahealth serve` replicas behind HAProxy, in one run.

    .venv/bin/python bench/scale/run.py [--postgres URL] [--redis URL] [--phone-numbers 2000]
        [--wabas 20] [--seconds 10] [--interval 20] [--connections 32]

Needs PostgreSQL and Redis (`--postgres`/`--redis`, default WAHEALTH_TEST_POSTGRES_URL and
WAHEALTH_TEST_REDIS_URL; every `wahealth:*` key of that Redis database is deleted) and
Debian's `haproxy` and `wrk`. A synthetic scenario is served by `wahealth emulator`; for
each count of replicas, a fresh database, then the replicas (monitor on, refresh interval
`--interval`) behind `deploy/haproxy.cfg` (with one replica both of its server lines name
it). Once every node was fetched once, it measures:

1. cache-hit throughput: `wrk` through HAProxy on one node's Graph query for `--seconds`
   (for one replica, also straight to it, to show what HAProxy costs);
2. Meta calls per refreshed node: the emulator's health calls over the next `--intervals`
   intervals, per node and interval (1.0: each node fetched once an interval, by one replica).

It prints both figures per count and the 2-replica / 1-replica throughput ratio. All
processes share this machine's cores, wrk included: the ratio says what a second replica
adds here, not on machines of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import DEMO_TOKEN, synthetic_waba_id

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "deploy" / "haproxy.cfg"
HOST = "127.0.0.1"
TOKEN = "bench-scale-token"
EDGES = ("/phone_numbers", "/message_templates")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from wahealth.cli import main; main()", *args]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAHEALTH_")}
    env.update(extra)
    return env


def _wait(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def _database(url: str) -> Iterator[str]:
    name = f"wahealth_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _forget(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match="wahealth:*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.delete(*keys[start : start + 10_000])


def _health_calls(emulator: str) -> dict[str, int]:
    by_node: dict[str, int] = httpx.get(f"{emulator}/_emulator/calls", trust_env=False).json()[
        "by_node"
    ]
    return by_node


def _config(
    workdir: Path, storage: str, redis_url: str, emulator: str, args: argparse.Namespace
) -> Path:
    wabas = [synthetic_waba_id(i) for i in range(args.wabas)]
    path = workdir / "wahealth.toml"
    path.write_text(
        f"""
[storage]
url = "{storage}"
[cache]
url = "{redis_url}"
[ratelimit]
url = "{redis_url}"
[upstream]
kind = "meta"
base_url = "{emulator}"
access_token = "{DEMO_TOKEN}"
[monitor]
interval_seconds = {args.interval}
meta_calls_per_minute = 1000000
[[spaces]]
id = "bench"
account = "bench"
wabas = {wabas!r}
[[accounts]]
name = "bench"
qps = 10000000
[[accounts.graph_tokens]]
token = "{TOKEN}"
""",
        encoding="utf-8",
    )
    return path


def _wrk(url: str, args: argparse.Namespace) -> float:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return float(found.group(1))


def _measure(
    replicas: int, emulator: str, phone: str, nodes: int, workdir: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """(cache-hit req/s through HAProxy, Meta calls per refreshed node over one interval)."""
    _forget(args.redis)
    httpx.delete(f"{emulator}/_emulator/calls", trust_env=False)
    ports = [_free_port() for _ in range(replicas)]
    front = _free_port()
    env = _env(WAHEALTH_MASTER_KEY=Fernet.generate_key().decode())
    with _database(args.postgres) as storage, contextlib.ExitStack() as stack:
        config = _config(workdir, storage, args.redis, emulator, args)
        for n, port in enumerate(ports):
            command = _cli("serve", "--config", str(config), "--port", str(port))
            stack.enter_context(_process(command, env, workdir / f"replica{replicas}-{n}.log"))
        for port in ports:
            _wait(f"http://{HOST}:{port}/readyz")
        addresses = [f"{HOST}:{port}" for port in ports] * (3 - replicas)
        haproxy_env = _env(
            WAHEALTH_FRONTEND=f"{HOST}:{front}",
            WAHEALTH_REPLICA1=addresses[0],
            WAHEALTH_REPLICA2=addresses[1],
        )
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        stack.enter_context(
            _process([haproxy, "-db", "-f", str(RECIPE)], haproxy_env, workdir / "haproxy.log")
        )
        _wait(f"http://{HOST}:{front}/readyz")
        # Every node fetched once (the first pass), then one warm node for the cache hits.
        deadline = time.monotonic() + 10 * args.interval
        while len(_health_calls(emulator)) < nodes:
            if time.monotonic() > deadline:
                raise TimeoutError("the first refresh pass did not finish")
            time.sleep(0.5)
        url = f"http://{HOST}:{front}/v21.0/{phone}?fields=health_status"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        httpx.get(url, headers=headers, trust_env=False).raise_for_status()
        throughput = _wrk(url, args)
        if replicas == 1:
            direct = _wrk(f"http://{HOST}:{ports[0]}/v21.0/{phone}?fields=health_status", args)
            print(f"  (the same replica without HAProxy: {direct:,.0f} req/s)")
        # A few intervals of the refresh loops alone: how often is each node fetched?
        before = _health_calls(emulator)
        time.sleep(args.interval * args.intervals)
        after = _health_calls(emulator)
    calls = sum(after.get(n, 0) - before.get(n, 0) for n in after)
    return throughput, calls / (nodes * args.intervals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("WAHEALTH_TEST_POSTGRES_URL"))
    parser.add_argument("--redis", default=os.environ.get("WAHEALTH_TEST_REDIS_URL"))
    parser.add_argument("--phone-numbers", type=int, default=2000)
    parser.add_argument("--wabas", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10, help="wrk's run per count")
    parser.add_argument("--interval", type=float, default=20.0, help="refresh interval (s)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--intervals", type=int, default=2, help="refresh intervals counted")
    args = parser.parse_args()
    if not args.postgres or not args.redis:
        parser.error("needs --postgres and --redis (or WAHEALTH_TEST_POSTGRES_URL/_REDIS_URL)")
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install {tool})")
    with tempfile.TemporaryDirectory(prefix="wahealth-scale-") as tmp:
        workdir = Path(tmp)
        scenario_file = workdir / "scenario.yaml"
        scenario = synthetic_scenario(args.phone_numbers, wabas=args.wabas)
        scenario_file.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), "utf-8")
        nodes = args.phone_numbers + args.wabas
        port = _free_port()
        emulator = f"http://{HOST}:{port}"
        command = _cli("emulator", "--scenario", str(scenario_file), "--port", str(port))
        with _process(command, _env(), workdir / "emulator.log"):
            _wait(f"{emulator}/_emulator/calls")
            print(f"{args.phone_numbers:,} phone numbers on {args.wabas} WABAs ({nodes:,} nodes)")
            results = {}
            for replicas in (1, 2):
                phone = scenario.phone_numbers[0].id
                results[replicas] = _measure(replicas, emulator, phone, nodes, workdir, args)
                rps, per_node = results[replicas]
                print(
                    f"{replicas} replica(s): cache hits {rps:,.0f} req/s through HAProxy; "
                    f"{per_node:.2f} Meta calls per node per interval"
                )
    ratio = results[2][0] / results[1][0]
    print(f"cache-hit throughput, 2 replicas / 1: {ratio:.2f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
