"""Meta throttles: 429 / code 80007 with `X-Business-Use-Case-Usage` ("wait a minute").

The emulator answers Graph's throttling envelope with the usage header, whose
`estimated_time_to_regain_access` (1 minute) exceeds the Graph client's longest
retry wait, so the client gives up at once and the gateway must pause, not retry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.faults._matrix import (
    DIALECTS,
    NO_CACHE,
    add_fault,
    assert_fresh,
    assert_retry_after,
    assert_stale,
    assert_unavailable,
    emulator_calls,
    gateway,
)
from tests.gateway._wire import PHONE_LIMITED

from wahealth.testing import DEMO, demo_settings

THROTTLE = {"status": 429, "code": 80007, "estimated_time_to_regain_access": 1, "count": 500}


async def test_throttled_with_a_stale_report_answers_stale_after_one_call(
    tmp_path: Path,
) -> None:
    async with gateway(demo_settings(tmp_path, cache=NO_CACHE)) as gw:
        assert_fresh("graph", await DIALECTS["graph"](gw.client))
        await gw.components.health.drain()
        transitions = await gw.transitions()
        await add_fault(gw.client, **THROTTLE)

        calls = await emulator_calls(gw.client)
        for dialect, query in DIALECTS.items():
            assert_stale(dialect, await query(gw.client))
        # One call, never retried; Meta's wait then covers the other dialects' queries.
        assert await emulator_calls(gw.client) - calls == 1
        assert await gw.transitions() == transitions


async def test_throttled_with_nothing_cached_is_a_503_with_meta_s_wait(tmp_path: Path) -> None:
    async with gateway(demo_settings(tmp_path, cache=NO_CACHE)) as gw:
        await add_fault(gw.client, **THROTTLE)

        response = await DIALECTS["graph"](gw.client)

        assert_unavailable("graph", response)
        assert_retry_after(response)
        assert response.headers["retry-after"] == "60"
        assert await emulator_calls(gw.client) == 1
        assert await gw.stored_payload() is None


@pytest.mark.parametrize("cached", [True, False], ids=["stale", "nothing-cached"])
async def test_after_a_throttle_queries_wait_for_meta_s_retry_after(
    tmp_path: Path, cached: bool
) -> None:
    async with gateway(demo_settings(tmp_path, cache=NO_CACHE)) as gw:
        if cached:
            assert_fresh("graph", await DIALECTS["graph"](gw.client))
            await gw.components.health.drain()
        before = await emulator_calls(gw.client)
        await add_fault(gw.client, **THROTTLE)

        for dialect, query in [*DIALECTS.items()] * 3:
            response = await query(gw.client)
            if cached:
                assert_stale(dialect, response)
            else:
                assert_unavailable(dialect, response)
                assert_retry_after(response)

        assert await emulator_calls(gw.client) - before == 1  # today: 9


async def test_after_a_throttle_concurrent_queries_cost_one_call(tmp_path: Path) -> None:
    async with gateway(demo_settings(tmp_path, cache=NO_CACHE)) as gw:
        assert_fresh("graph", await DIALECTS["graph"](gw.client))
        await gw.components.health.drain()
        before = await emulator_calls(gw.client)
        await add_fault(gw.client, **THROTTLE)
        assert_stale("graph", await DIALECTS["graph"](gw.client))

        answers = await asyncio.gather(*(DIALECTS["graph"](gw.client) for _ in range(60)))

        for response in answers:
            assert_stale("graph", response)
        assert await emulator_calls(gw.client) - before == 1


async def test_a_waba_throttle_pauses_the_waba_s_other_numbers_too(tmp_path: Path) -> None:
    async with gateway(demo_settings(tmp_path, cache=NO_CACHE)) as gw:
        await add_fault(gw.client, **THROTTLE)
        assert_unavailable("graph", await DIALECTS["graph"](gw.client))  # 80007 on the WABA

        other = await gw.client.get(
            f"/v21.0/{PHONE_LIMITED}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
        )

        assert_unavailable("graph", other)
        assert_retry_after(other)
        assert await emulator_calls(gw.client, PHONE_LIMITED) == 0
