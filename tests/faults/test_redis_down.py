"""Redis down (a closed loopback port), alone and with Meta failing.

The rate limiter and the CAMS nonce store fail closed: the dialect's 503 with
Retry-After, no Graph call. The report cache fails open: a miss, answered from Meta;
so with the cache down and Meta failing there is no stale report to fall back on.
"""

from __future__ import annotations

from pathlib import Path

from tests.faults._matrix import (
    DIALECTS,
    add_fault,
    assert_fresh,
    assert_retry_after,
    assert_unavailable,
    emulator_calls,
    gateway,
)

from wahealth.testing import demo_settings

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once
N = 3


async def test_limiter_down_every_dialect_503_without_calling_meta(tmp_path: Path) -> None:
    async with gateway(demo_settings(tmp_path, ratelimit={"url": DEAD_REDIS})) as gw:
        for dialect, query in DIALECTS.items():
            for _ in range(N):
                response = await query(gw.client)
                assert_unavailable(dialect, response)
                assert_retry_after(response)
        assert await emulator_calls(gw.client) == 0
        assert await gw.stored_payload() is None
        assert await gw.transitions() == 0


async def test_cache_down_meta_answers_each_query(tmp_path: Path) -> None:
    async with gateway(demo_settings(tmp_path, cache={"url": DEAD_REDIS})) as gw:
        # CAMS claims a nonce in the same Redis: it fails closed.
        cams = await DIALECTS["cams"](gw.client)
        assert_unavailable("cams", cams)
        assert_retry_after(cams)
        assert await emulator_calls(gw.client) == 0

        for dialect in ("d360", "graph"):
            for _ in range(N):
                assert_fresh(dialect, await DIALECTS[dialect](gw.client))
        assert await emulator_calls(gw.client) == 2 * N  # no cache: every query asks Meta
        assert await gw.transitions() == 1  # first seen; the rest are unchanged
        assert await gw.stored_payload() is not None


async def test_cache_down_and_meta_failing_is_a_503_with_retry_after(tmp_path: Path) -> None:
    async with gateway(
        demo_settings(tmp_path, cache={"url": DEAD_REDIS}, upstream={"max_attempts": 1})
    ) as gw:
        assert_fresh("graph", await DIALECTS["graph"](gw.client))
        await gw.components.health.drain()
        await add_fault(gw.client, status=500, count=100)

        for dialect in ("d360", "graph"):
            response = await DIALECTS[dialect](gw.client)
            assert_unavailable(dialect, response)
            assert_retry_after(response)
