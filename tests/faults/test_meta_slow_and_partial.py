"""Faults on a real socket: a slow Meta (timeouts), and batches that fail in part.

The emulator runs on a loopback port behind `UpstreamTap`, standing in for Meta
(`upstream.kind = "meta"`), so the Graph client's timeouts are real. The fleet
refresh is driven one round at a time on a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.faults._inject import (
    SUB_500,
    SUB_DEEP,
    SUB_NOT_JSON,
    UpstreamTap,
    gateway_settings,
    upstream_on_socket,
)
from tests.faults._matrix import (
    DIALECTS,
    NO_CACHE,
    NODE,
    Gateway,
    add_fault,
    assert_fresh,
    assert_retry_after,
    assert_stale,
    assert_unavailable,
    gateway,
)
from tests.monitor._fleet import FakeClock, refresher_for

from wahealth.monitor.refresh import FleetRefresher
from wahealth.storage.health import HealthRepository
from wahealth.upstream.emulator import create_emulator, load_scenario

TIMEOUT = 0.3
DEMO_NODES = 6  # two WABAs, three numbers, one template


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[UpstreamTap, str]]:
    tap = UpstreamTap(create_emulator(load_scenario(None)))
    with upstream_on_socket(tap) as url:
        yield tap, url


@pytest.fixture
async def admin(upstream: tuple[UpstreamTap, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator's admin API on its own port; faults and counts are cleared around each test."""
    tap, url = upstream
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
        await client.delete("/_emulator/faults")
        await client.delete("/_emulator/calls")
        tap.reset()
        yield client
        await client.delete("/_emulator/faults")
        tap.reset()


def _settings(tmp_path: Path, url: str, **upstream: Any) -> Any:
    return gateway_settings(
        tmp_path,
        url,
        upstream={"timeout_seconds": TIMEOUT, "max_attempts": 2, **upstream},
        cache=NO_CACHE,
    )


# --- a slow Meta -----------------------------------------------------------------------------


async def test_slow_meta_with_a_stale_report_answers_stale_after_one_timed_out_attempt(
    tmp_path: Path, upstream: tuple[UpstreamTap, str], admin: httpx.AsyncClient
) -> None:
    tap, url = upstream
    async with gateway(_settings(tmp_path, url)) as gw:
        assert_fresh("graph", await DIALECTS["graph"](gw.client))
        await gw.components.health.drain()
        arrived = tap.arrivals[f"/v21.0/{NODE}"]
        transitions = await gw.transitions()
        await add_fault(admin, latency_ms=3_000, count=10)

        answers = [await DIALECTS["graph"](gw.client) for _ in range(3)]

        for response in answers:
            assert_stale("graph", response)
        # A query tries once (max_attempts is for the fleet refresh); once that attempt
        # timed out, the back-off answers the next ones stale without calling.
        assert tap.arrivals[f"/v21.0/{NODE}"] - arrived == 1
        assert await gw.transitions() == transitions


async def test_slow_meta_with_nothing_cached_is_the_dialects_503(
    tmp_path: Path, upstream: tuple[UpstreamTap, str], admin: httpx.AsyncClient
) -> None:
    tap, url = upstream
    async with gateway(_settings(tmp_path, url, max_attempts=1)) as gw:
        await add_fault(admin, latency_ms=3_000, count=10)

        for dialect, query in DIALECTS.items():
            assert_unavailable(dialect, await query(gw.client))
        assert tap.arrivals[f"/v21.0/{NODE}"] == 1  # then the back-off answers
        assert await gw.stored_payload() is None


@pytest.mark.parametrize("cached", [True, False], ids=["stale", "nothing-cached"])
async def test_slow_meta_is_answered_within_the_query_deadline(
    tmp_path: Path, upstream: tuple[UpstreamTap, str], admin: httpx.AsyncClient, cached: bool
) -> None:
    _, url = upstream
    deadline = 0.5
    # A Meta timeout well past the deadline, and a client that gives up soon after it
    # (as the CAMS SDK's 10 s read timeout does with the 5 s x 3 attempts of today).
    settings = _settings(tmp_path, url, timeout_seconds=2.0, max_attempts=3,
                         query_deadline_seconds=deadline)  # fmt: skip
    async with gateway(settings) as gw:
        if cached:
            assert_fresh("graph", await DIALECTS["graph"](gw.client))
            await gw.components.health.drain()
        await add_fault(admin, latency_ms=10_000, count=10)

        for dialect, query in DIALECTS.items():
            started = time.monotonic()
            response = await query(gw.client)
            waited = time.monotonic() - started
            if cached:
                assert_stale(dialect, response)
            else:
                assert_unavailable(dialect, response)
                assert_retry_after(response)
            assert waited < 2.0, f"{dialect}: {waited:.1f} s, past the client's patience"


# --- batches that fail in part (the fleet refresh) -------------------------------------------


def _refresher(gw: Gateway, clock: FakeClock) -> FleetRefresher:
    return refresher_for(gw.components, clock)


async def _fetched(gw: Gateway) -> dict[str, Any]:
    """When each demo node's stored report was fetched."""
    rows = await HealthRepository(gw.components.sessions).of_space("demo-space")
    return {n.node_id: n.fetched_at for n in rows}


async def _refreshed(gw: Gateway) -> set[str]:
    rows = await HealthRepository(gw.components.sessions).recent(limit=100)
    return {t.node_id for t in rows}


@pytest.mark.parametrize(
    "sub_response",
    [
        pytest.param(SUB_500, id="sub-500"),
        pytest.param(SUB_NOT_JSON, id="sub-not-json"),
        pytest.param(SUB_DEEP, id="sub-deep-json"),
    ],
)
async def test_one_failed_sub_response_spares_the_others_and_keeps_its_report(
    tmp_path: Path,
    upstream: tuple[UpstreamTap, str],
    admin: httpx.AsyncClient,
    sub_response: dict[str, Any],
) -> None:
    tap, url = upstream
    async with gateway(_settings(tmp_path, url)) as gw:
        clock = FakeClock()
        refresher = _refresher(gw, clock)
        await refresher.step()  # a first round: every node known
        assert len(await _refreshed(gw)) == DEMO_NODES
        stored = await gw.stored_payload()
        first = await _fetched(gw)
        tap.batches.clear()
        tap.batch_faults[NODE] = sub_response

        clock.now += 61
        await refresher.step()

        # One batch request, each node in it once: a failed sub-response is not retried.
        assert [sorted(batch) for batch in tap.batches] == [sorted(first)]
        assert await gw.stored_payload() == stored  # the failed node keeps its report
        row = await HealthRepository(gw.components.sessions).get(NODE)
        assert row is not None
        assert row.next_due_at is not None
        assert row.next_due_at.timestamp() > clock.now + 60 - 1  # backed off, not due again
        second = await _fetched(gw)
        assert second[NODE] == first[NODE]
        assert all(second[n] > first[n] for n in first if n != NODE), "the others were refreshed"


@pytest.mark.parametrize("cached", [True, False], ids=["stale", "nothing-cached"])
async def test_a_node_failing_in_the_batch_is_not_asked_again_by_queries(
    tmp_path: Path, upstream: tuple[UpstreamTap, str], admin: httpx.AsyncClient, cached: bool
) -> None:
    tap, url = upstream
    async with gateway(_settings(tmp_path, url)) as gw:
        clock = FakeClock()
        refresher = _refresher(gw, clock)
        if not cached:
            tap.batch_faults[NODE] = SUB_500
        await refresher.step()
        clock.now += 61
        tap.batch_faults[NODE] = SUB_500
        await refresher.step()
        arrived = tap.arrivals[f"/v21.0/{NODE}"]

        response = await DIALECTS["graph"](gw.client)

        if cached:
            assert_stale("graph", response)
        else:
            assert_unavailable("graph", response)
            assert_retry_after(response)
        assert tap.arrivals[f"/v21.0/{NODE}"] == arrived
