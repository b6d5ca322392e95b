"""Hardening figures: what a client gets, and what Meta is asked, when things go wrong.

    .venv/bin/python bench/hardening/run.py

In-process (the real app on the demo scenario, its emulator playing Meta, no sockets), it
prints the figures the hardening work is judged by:

- Graph calls for 9 client requests while Meta answers 500 (with a stale report cached,
  and with nothing cached), and for 120 concurrent requests after Meta throttled (80007);
- seconds until a client gets an answer while Meta takes 10 s to answer (stale if cached,
  else a 503 with Retry-After), under the default query deadline;
- how many of 20 replays of one validly signed Meta webhook were acted on;
- bytes retained per request for 300 requests with 30,000-digit Graph node ids.

Every figure is counted, not assumed: calls by the emulator's own counter, replays by it too.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import sys
import tempfile
import time
import tracemalloc
import urllib.parse
from pathlib import Path
from typing import Any

import structlog

from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

PHONE = "106540352242922"
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}
APP_SECRET = "bench-app-secret"
NO_CACHE = {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}


async def _calls(app: RunningApp) -> int:
    total: int = (await app.client.get("/_emulator/calls")).json()["total"]
    return total


async def _graph(app: RunningApp, node: str = PHONE) -> Any:
    return await app.client.get(f"/v21.0/{node}", params={"fields": "health_status"}, headers=GRAPH)


async def _fault(app: RunningApp, **fault: Any) -> None:
    answer = await app.client.post("/_emulator/faults", json=fault)
    answer.raise_for_status()


def _settings(work: Path, name: str, **sections: Any) -> Any:
    folder = work / name
    folder.mkdir()
    settings = demo_settings(folder, cache=NO_CACHE, **sections)
    for account in settings.accounts:
        account.qps = 1_000_000
    return settings


async def meta_failing(work: Path, cached: bool) -> tuple[int, list[int]]:
    async with running_app(_settings(work, f"failing-{cached}")) as app:
        if cached:
            assert (await _graph(app)).status_code == 200
        before = await _calls(app)
        await _fault(app, status=500, count=1000)
        statuses = [(await _graph(app)).status_code for _ in range(9)]
        return await _calls(app) - before, statuses


async def meta_throttled(work: Path) -> tuple[int, set[int]]:
    async with running_app(_settings(work, "throttled")) as app:
        assert (await _graph(app)).status_code == 200
        before = await _calls(app)
        await _fault(app, status=429, code=80007, estimated_time_to_regain_access=1, count=1000)
        answers = await asyncio.gather(*(_graph(app) for _ in range(120)))
        return await _calls(app) - before, {a.status_code for a in answers}


async def meta_slow(work: Path, cached: bool) -> tuple[float, int, str]:
    async with running_app(_settings(work, f"slow-{cached}")) as app:
        if cached:
            assert (await _graph(app)).status_code == 200
        await _fault(app, latency_ms=10_000, count=10)
        started = time.perf_counter()
        answer = await _graph(app)
        seconds = time.perf_counter() - started
        source = answer.headers.get("x-wahealth-source") or answer.headers.get("retry-after", "")
        return seconds, answer.status_code, source


async def webhook_replays(work: Path) -> int:
    settings = _settings(
        work,
        "replays",
        meta_webhooks={"app_secret": APP_SECRET, "min_refresh_interval_seconds": 0},
        upstream={"emulator_webhooks": False},
    )
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [{"field": "account_update", "value": {"event": "X"}}],
                }
            ],
        }
    ).encode()
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
    async with running_app(settings) as app:
        before = await _calls(app)
        for _ in range(21):  # the delivery and 20 replays
            answer = await app.client.post("/webhooks/meta", content=body, headers=headers)
            assert answer.status_code == 200
            await app.components.monitor.webhooks.drain()
        first_delivery_calls = 4  # the WABA, its two numbers and its template
        return (await _calls(app) - before - first_delivery_calls) // first_delivery_calls


async def memory_per_request(work: Path) -> float:
    async with running_app(_settings(work, "memory")) as app:
        for i in range(30):
            await _graph(app, "9" * 30_000 + str(i))
        urllib.parse.clear_cache()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            await _graph(app, "8" * 30_000 + str(i))
        # The test client's own URL parsing keeps its last URLs (urllib's bounded cache):
        # that is the client's memory, not the server's.
        urllib.parse.clear_cache()
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return retained / 300


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory(prefix="wahealth-hardening-") as tmp:
        work = Path(tmp)
        for cached in (True, False):
            calls, statuses = await meta_failing(work, cached)
            what = "a stale report cached" if cached else "nothing cached"
            print(f"Meta answering 500, {what}: 9 client requests -> {calls} Graph call(s); "
                  f"answers {sorted(set(statuses))}")  # fmt: skip
        calls, statuses = await meta_throttled(work)
        print(f"Meta throttling (80007): 120 concurrent requests -> {calls} Graph call(s); "
              f"answers {sorted(statuses)}")  # fmt: skip
        for cached in (True, False):
            seconds, status, source = await meta_slow(work, cached)
            what = "stale cached" if cached else "nothing cached"
            print(f"Meta taking 10 s, {what}: answered {status} ({source}) after {seconds:.2f} s")
        replays = await webhook_replays(work)
        print(f"one signed Meta webhook replayed 20 times: {replays} replay(s) acted on")
        per_request = await memory_per_request(work)
        print(f"30,000-digit Graph node ids: {per_request:.0f} bytes retained per request")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
