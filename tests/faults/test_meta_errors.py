"""Meta answers wrongly: 5xx, HTML, malformed or unexpected JSON, JSON 5,000 deep.

For each, in each dialect, with and without a cached report: what the client gets,
how many Graph calls it cost, and what was stored. The emulator injects the faults
(`POST /_emulator/faults`); the cache is off (ttl 0), so every query asks Meta and a
report fetched earlier is the stale one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.faults._matrix import (
    DIALECTS,
    NO_CACHE,
    Gateway,
    add_fault,
    assert_fresh,
    assert_retry_after,
    assert_stale,
    assert_unavailable,
    emulator_calls,
    gateway,
)

from wahealth.testing import demo_settings

MAX_ATTEMPTS = 2
DEEP = "[" * 5000 + "]" * 5000
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "503": {"status": 503},
    "html-502": {"status": 502, "body": "<html><body>Bad Gateway</body></html>"},
    "not-json": {"status": 200, "body": '{"health_status": {"can_send_'},
    "unexpected-json": {"status": 200, "body": '{"health_status": "BLOCKED", "id": 1}'},
    "deep-json": {"status": 200, "body": DEEP},
}


def _kinds(marks: dict[str, pytest.MarkDecorator]) -> list[Any]:
    return [pytest.param(kind, marks=[marks[kind]] if kind in marks else []) for kind in FAULTS]


def _settings(tmp_path: Path, **upstream: Any) -> Any:
    return demo_settings(
        tmp_path, cache=NO_CACHE, upstream={"max_attempts": MAX_ATTEMPTS, **upstream}
    )


async def _prime(gw: Gateway, dialect: str) -> None:
    """One good answer, so the cache holds a report to serve stale."""
    assert_fresh(dialect, await DIALECTS[dialect](gw.client))
    await gw.components.health.drain()  # its transition is recorded after the answer


@pytest.mark.parametrize("kind", _kinds({}))
async def test_with_a_stale_report_the_client_gets_it_marked_stale(
    tmp_path: Path, kind: str
) -> None:
    async with gateway(_settings(tmp_path)) as gw:
        await _prime(gw, "graph")
        stored, transitions = await gw.stored_payload(), await gw.transitions()
        await add_fault(gw.client, **FAULTS[kind], count=100)

        calls = await emulator_calls(gw.client)
        for dialect, query in DIALECTS.items():
            assert_stale(dialect, await query(gw.client))
        # The first query asked Meta once (a query does not retry); the node's back-off
        # answered the other dialects from the last known report without calling.
        assert await emulator_calls(gw.client) - calls == 1
        assert await gw.stored_payload() == stored  # a failure overwrites nothing
        assert await gw.transitions() == transitions


@pytest.mark.parametrize("kind", _kinds({}))
async def test_with_nothing_cached_the_client_gets_the_dialects_503(
    tmp_path: Path, kind: str
) -> None:
    async with gateway(_settings(tmp_path)) as gw:
        await add_fault(gw.client, **FAULTS[kind], count=100)

        calls = await emulator_calls(gw.client)
        for dialect, query in DIALECTS.items():
            assert_unavailable(dialect, await query(gw.client))
        assert await emulator_calls(gw.client) - calls == 1  # then the back-off answers
        assert await gw.stored_payload() is None
        assert await gw.transitions() == 0


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["500", "not-json"])
async def test_the_503_says_when_to_retry(tmp_path: Path, kind: str, dialect: str) -> None:
    async with gateway(_settings(tmp_path)) as gw:
        await add_fault(gw.client, **FAULTS[kind], count=100)

        response = await DIALECTS[dialect](gw.client)

        assert_unavailable(dialect, response)
        assert_retry_after(response)


N = 9


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_with_meta_failing_one_graph_call_per_back_off_whatever_the_query_rate(
    tmp_path: Path, dialect: str
) -> None:
    # One attempt per fetch, so "one call per back-off period" is exact (today: N calls;
    # with the default 3 attempts, 3 per query: 9 queries -> 27 calls).
    async with gateway(_settings(tmp_path, max_attempts=1)) as gw:
        await _prime(gw, dialect)
        calls = await emulator_calls(gw.client)
        await add_fault(gw.client, status=500, count=100)

        for _ in range(N):
            assert_stale(dialect, await DIALECTS[dialect](gw.client))

        assert await emulator_calls(gw.client) - calls == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_with_meta_failing_and_nothing_cached_503s_cost_one_graph_call(
    tmp_path: Path, dialect: str
) -> None:
    async with gateway(_settings(tmp_path, max_attempts=1)) as gw:
        await add_fault(gw.client, status=500, count=100)

        for _ in range(N):
            response = await DIALECTS[dialect](gw.client)
            assert_unavailable(dialect, response)
            assert_retry_after(response)

        assert await emulator_calls(gw.client) == 1
