"""Fleet-refresh benchmark: Graph batch requests against one request per node.

    .venv/bin/python bench/refresh/run.py [--nodes 5000] [--wabas 10] [--concurrency 8]

Starts the Meta emulator in its own process on a loopback port (`wahealth emulator
--scenario`, a synthetic scenario of `--nodes` nodes: `--wabas` WABAs and their phone
numbers), then refreshes every node twice through the real app (upstream `meta` pointed at
the emulator, SQLite storage, every report recorded as a transition):

- batched: the monitor's fleet refresh (`FleetRefresher.refresh_all`), 50 nodes per Graph
  batch request, one request at a time;
- per node: the health core's `refresh` for each node (`GET /<node>?fields=health_status`),
  `--concurrency` at a time.

Each run starts from an empty database, so both store the same transitions. The call budget
is lifted for the measurement (the budget paces a real fleet on purpose; its cost is shown
separately). HTTP requests and Graph calls are the emulator's own counts: Meta counts each
batch sub-request as a call, so batching saves HTTP requests and time, not budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from asgi_lifespan import LifespanManager

from wahealth.app import Components, create_app
from wahealth.domain import HealthReport
from wahealth.logs import configure_logging
from wahealth.settings import Settings
from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import DEMO_TOKEN, synthetic_waba_id
from wahealth.upstream.graph import GraphClient

SPACE = "bench-space"


@dataclass(frozen=True)
class Row:
    mode: str  # "batched" or "per-node", plus ", fetch only" without storage
    nodes: int
    http_requests: int
    graph_calls: int
    seconds: float


@contextlib.contextmanager
def emulator(scenario_file: Path) -> Iterator[str]:
    """`wahealth emulator` in a subprocess on a free port; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from wahealth.cli import main; main()",
            "emulator",
            "--scenario",
            str(scenario_file),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if "listening on " not in first:
            raise RuntimeError(f"the emulator did not start: {first!r}")
        url = first.split("listening on ")[1].split()[0]
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_emulator/calls").status_code == 200:
                    break
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def settings_for(workdir: Path, emulator_url: str, wabas: list[str]) -> Settings:
    return Settings.model_validate(
        {
            "storage": {"url": f"sqlite+aiosqlite:///{workdir / 'wahealth.db'}"},
            "security": {"master_key_file": str(workdir / "wahealth.key")},
            "upstream": {"kind": "meta", "base_url": emulator_url, "access_token": DEMO_TOKEN},
            "monitor": {"enabled": False, "meta_calls_per_minute": 1_000_000_000},
            "spaces": [{"id": SPACE, "account": "bench", "wabas": wabas}],
            "accounts": [{"name": "bench"}],
        }
    )


@contextlib.asynccontextmanager
async def app_services(settings: Settings) -> AsyncIterator[Components]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=300, shutdown_timeout=60):
        services: Components = app.state.components
        yield services


async def calls(client: httpx.AsyncClient, reset: bool = False) -> dict[str, Any]:
    answer = await (client.delete if reset else client.get)("/_emulator/calls")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


async def measure(mode: str, settings: Settings, emulator_url: str, concurrency: int) -> Row:
    async with (
        app_services(settings) as services,
        httpx.AsyncClient(base_url=emulator_url) as admin,
    ):
        node_ids = [node.node_id for node in await services.catalog.nodes_of_space(SPACE)]
        await calls(admin, reset=True)  # forget the start-up catalog sync
        started = time.perf_counter()
        if mode == "batched":
            summary = await services.monitor.refresher.refresh_all(node_ids)
            if summary.failed:
                raise RuntimeError(f"{len(summary.failed)} nodes failed: {summary.failed}")
        else:
            limit = asyncio.Semaphore(concurrency)

            async def one(node_id: str) -> None:
                async with limit:
                    await services.health.refresh(node_id, cause="manual")

            await asyncio.gather(*(one(node_id) for node_id in node_ids))
        seconds = time.perf_counter() - started
        stats = await calls(admin)
    # The batched run sends only batch POSTs, the per-node run only single GETs.
    http_requests = stats["batches"] if mode == "batched" else stats["total"]
    if mode != "batched" and stats["batches"]:
        raise RuntimeError("the per-node run sent batch requests")
    return Row(mode, len(node_ids), http_requests, stats["total"], seconds)


async def measure_fetch_only(
    mode: str, emulator_url: str, node_ids: list[str], concurrency: int
) -> Row:
    """The Graph client alone: what the transport costs, without storage."""
    async with (
        GraphClient(base_url=emulator_url, access_token=DEMO_TOKEN) as graph,
        httpx.AsyncClient(base_url=emulator_url) as admin,
    ):
        await calls(admin, reset=True)
        started = time.perf_counter()
        if mode == "batched":
            results = list((await graph.batch_health(node_ids)).values())
        else:
            limit = asyncio.Semaphore(concurrency)

            async def one(node_id: str) -> object:
                async with limit:
                    return await graph.health(node_id)

            results = await asyncio.gather(*(one(node_id) for node_id in node_ids))
        seconds = time.perf_counter() - started
        stats = await calls(admin)
    if not all(isinstance(r, HealthReport) for r in results):
        raise RuntimeError(f"{mode} (fetch only): some nodes failed")
    http_requests = stats["batches"] if mode == "batched" else stats["total"]
    return Row(f"{mode}, fetch only", len(node_ids), http_requests, stats["total"], seconds)


def _ratios(batched: Row, single: Row) -> None:
    scope = "fetch only" if batched.mode.endswith("fetch only") else "end to end"
    print(f"\nper node / batched ({scope}):")
    print(f"  HTTP requests  {single.http_requests / batched.http_requests:6.1f}x")
    print(f"  Graph calls    {single.graph_calls / batched.graph_calls:6.1f}x"
          "   (Meta counts every batch sub-request)")  # fmt: skip
    print(f"  wall time      {single.seconds / batched.seconds:6.1f}x")


def report(rows: list[Row], budget: int) -> None:
    print(f"\n{'mode':<22} {'nodes':>6} {'HTTP requests':>14} {'Graph calls':>12} "
          f"{'wall s':>8} {'nodes/s':>9}")  # fmt: skip
    for row in rows:
        print(f"{row.mode:<22} {row.nodes:>6} {row.http_requests:>14} {row.graph_calls:>12} "
              f"{row.seconds:>8.2f} {row.nodes / row.seconds:>9.0f}")  # fmt: skip
    for batched, single in (rows[0:2], rows[2:4]):
        _ratios(batched, single)
    minutes = rows[0].graph_calls / budget
    print(f"\nwithin a budget of {budget} Graph calls/min a full pass takes at least "
          f"{minutes:.1f} min, whatever the transport")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000, help="WABAs + phone numbers")
    parser.add_argument("--wabas", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="per-node requests in flight")
    parser.add_argument("--budget", type=int, default=600, help="calls/min, for the pass time")
    args = parser.parse_args()
    configure_logging(level="warning")
    wabas = [synthetic_waba_id(i) for i in range(args.wabas)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        scenario_file = workdir / "scenario.yaml"
        scenario = synthetic_scenario(args.nodes - args.wabas, wabas=args.wabas)
        scenario_file.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), "utf-8")
        with emulator(scenario_file) as url:
            print(f"emulator: {url} ({args.nodes} nodes: {args.wabas} WABAs + phone numbers)")
            rows = []
            for mode in ("batched", "per-node"):
                run_dir = workdir / mode
                run_dir.mkdir()
                row = await measure(mode, settings_for(run_dir, url, wabas), url, args.concurrency)
                print(f"{row.mode}: {row.seconds:.2f} s")
                rows.append(row)
            node_ids = [*wabas, *(p.id for p in scenario.phone_numbers)]
            for mode in ("batched", "per-node"):
                row = await measure_fetch_only(mode, url, node_ids, args.concurrency)
                print(f"{row.mode}: {row.seconds:.2f} s")
                rows.append(row)
    report(rows, args.budget)


if __name__ == "__main__":
    asyncio.run(main())
