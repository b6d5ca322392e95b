"""One Meta budget and one coalescer for two replicas, counted where Meta would count.

Both replicas run on one PostgreSQL and Redis with a standalone emulator as their
shared upstream, which records when it served each Graph call. These wait on real time:
the budget's minute is Meta's, so the first test runs for a little over a minute.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.scale._replicas import NODES, PHONE, TOKEN, Fleet, two_replicas

BUDGET = 120
WINDOW = 60.0
RUN_SECONDS = 68.0  # past the first minute: calls must resume as the window slides
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _max_in_any_window(times: list[float], window: float) -> int:
    """The most calls served in any `window` seconds (windows start at a call)."""
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, start + window) - i for i, start in enumerate(times)),
        default=0,
    )


class Asker(threading.Thread):
    """Asks one replica for each node in turn, as fast as it answers, counting what it saw."""

    def __init__(self, base_url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.stop = stop
        self.seen: Counter[str] = Counter()
        self.unexplained: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                node = NODES[n % len(NODES)]
                n += 1
                answer = http.get(f"/v21.0/{node}?fields=health_status", headers=HEADERS)
                source = answer.headers.get("x-wahealth-source", "")
                self.seen[f"{answer.status_code} {source}"] += 1
                if answer.status_code == 503 and "retry-after" not in answer.headers:
                    self.unexplained.append(answer.text)
                elif answer.status_code not in (200, 503):
                    self.unexplained.append(f"{answer.status_code} {answer.text}")
                time.sleep(0.02)


def test_two_replicas_spend_one_budget_queries_included(tmp_path: Path, redis_url: str) -> None:
    # Every answer goes stale at once (ttl 0): each query would call Meta, and each
    # replica's refresh loop alone wants two calls a second (nodes due every second).
    settings = f"""
[cache]
url = "{redis_url}"
ttl_seconds = 0
stale_while_revalidate_seconds = 0
[monitor]
interval_seconds = 1
meta_calls_per_minute = {BUDGET}
"""
    with two_replicas(tmp_path, redis_url, settings) as fleet:
        fleet.reset_calls()
        started = time.time()
        stop = threading.Event()
        askers = [Asker(url, stop) for url in fleet.replicas for _ in range(2)]
        for asker in askers:
            asker.start()
        time.sleep(RUN_SECONDS)
        stop.set()
        for asker in askers:
            asker.join(timeout=15)
        times = fleet.calls(times=True)["times"]
    assert isinstance(times, list)
    seen = sum((asker.seen for asker in askers), Counter[str]())
    assert [text for asker in askers for text in asker.unexplained] == []

    assert _max_in_any_window(times, WINDOW) <= BUDGET
    # The budget binds (two replicas' loops and the queries want far more) and is shared:
    # per replica, the first minute alone would have seen twice as many calls.
    first_minute = [t for t in times if t < started + WINDOW]
    assert len(first_minute) >= BUDGET * 0.75, (len(first_minute), seen)
    # The loops wait for the budget rather than give up: calls resume as the window slides.
    assert any(t >= started + WINDOW for t in times), seen
    # Queries that found the budget spent were answered stale, marked as such.
    assert seen["200 stale"] > 0, seen


async def _ask_at_once(fleet: Fleet, node: str, per_replica: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        trust_env=False, timeout=30, limits=httpx.Limits(max_connections=2 * per_replica)
    ) as http:
        return await asyncio.gather(
            *(
                http.get(f"{base}/v21.0/{node}?fields=health_status", headers=HEADERS)
                for _ in range(per_replica)
                for base in fleet.replicas
            )
        )


def _leases(replica: str) -> tuple[int, int]:
    """(fetches made holding the lease, fetches left to another replica), from /metrics."""
    text = httpx.get(f"{replica}/metrics", trust_env=False).text
    found = {
        sample.name: int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("wahealth_coalesce_leased_total", "wahealth_coalesce_waited_total")
    }
    return found.get("wahealth_coalesce_leased_total", 0), found.get(
        "wahealth_coalesce_waited_total", 0
    )


def test_identical_cold_queries_on_two_replicas_make_one_graph_call(
    tmp_path: Path, redis_url: str
) -> None:
    # Cold: the start's sync brings no health, so nothing is cached before the queries.
    settings = f"""
[cache]
url = "{redis_url}"
[monitor]
enabled = false
[catalog]
sync_health = false
"""
    with two_replicas(tmp_path, redis_url, settings) as fleet:
        fleet.reset_calls()
        # Meta takes a second to answer: every query arrives while the first call is out.
        fleet.fault({"latency_ms": 1000, "count": 1})
        answers = asyncio.run(_ask_at_once(fleet, PHONE, 50))
        calls = fleet.calls()
        leases = [_leases(replica) for replica in fleet.replicas]
    assert [a.status_code for a in answers] == [200] * 100
    assert len({a.content for a in answers}) == 1
    assert calls["total"] == 1, calls
    assert calls["by_node"] == {PHONE: 1}, calls
    # One replica held the lease and called; the other took its report from the cache.
    assert sorted(leases) == [(0, 1), (1, 0)], leases
