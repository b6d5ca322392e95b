"""The Meta budget's Lua script against a real Redis: one budget for every replica.

The script takes its window as an argument; these tests shrink Meta's minute to a
second (buckets of 100 ms) so expiry is seen in real time, without changing the rule.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis
from tests._redis import REFUSING_URL

from wahealth.core.ports import BackendUnavailable
from wahealth.ratelimit.budget import RedisCallBudget
from wahealth.redis_client import connect

WINDOW_MS, BUCKET_MS = 1_000, 100


def _budget(
    client: redis.Redis, prefix: str, limit: int, *, per_waba: int | None = None
) -> RedisCallBudget:
    return RedisCallBudget(
        client,
        limit,
        calls_per_minute_per_waba=per_waba,
        prefix=prefix,
        window_milliseconds=WINDOW_MS,
        bucket_milliseconds=BUCKET_MS,
    )


async def test_two_replicas_share_one_budget_and_never_overspend(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    other_client = connect(redis_url)
    first = _budget(redis_client, redis_prefix, 10)
    second = _budget(other_client, redis_prefix, 10)
    try:
        grants = await asyncio.gather(
            *(budget.spend(1) for _ in range(15) for budget in (first, second))
        )
        assert sum(grant.calls for grant in grants) == 10
        refused = [grant for grant in grants if grant.calls == 0]
        assert len(refused) == 20
        # Each refusal says when a call fits again: within the window (and its last bucket).
        assert all(0 < grant.retry_after <= (WINDOW_MS + BUCKET_MS) / 1000 for grant in refused)
        assert await first.spent() == await second.spent() == 10
    finally:
        await other_client.aclose()


async def test_a_batch_counts_each_sub_request_all_or_none_or_partially(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    budget = _budget(redis_client, redis_prefix, 10)
    assert (await budget.spend(7)).calls == 7
    refused = await budget.spend(5)  # all or none: 3 left is not enough
    assert refused.calls == 0
    assert refused.retry_after > 0
    assert await budget.spent() == 7
    partial = await budget.spend(5, partial=True)  # as many as fit
    assert partial.calls == 3
    assert partial.retry_after > 0
    assert await budget.spent() == 10
    assert (await budget.spend(1)).calls == 0


async def test_spent_calls_leave_the_window_and_free_the_budget(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    budget = _budget(redis_client, redis_prefix, 4)
    assert (await budget.spend(4)).calls == 4
    refused = await budget.spend(1)
    assert refused.calls == 0
    started = time.monotonic()
    # Counted for at least the whole window: never freed early.
    await asyncio.sleep(WINDOW_MS / 1000 - 0.2)
    assert (await budget.spend(1)).calls == 0
    await asyncio.sleep(max(0.0, refused.retry_after - (time.monotonic() - started)) + 0.05)
    assert (await budget.spend(4)).calls == 4


async def test_a_wabas_own_limit_binds_before_the_apps(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    budget = _budget(redis_client, redis_prefix, 10, per_waba=3)
    assert (await budget.spend(3, waba_id="111")).calls == 3
    assert (await budget.spend(1, waba_id="111")).calls == 0
    # Another WABA, and calls naming none, still have the app's budget.
    assert (await budget.spend(3, waba_id="222")).calls == 3
    assert (await budget.spend(4)).calls == 4
    assert (await budget.spend(1, waba_id="333")).calls == 0  # the app's budget is spent
    assert await budget.spent() == 10


async def test_a_redis_that_cannot_be_asked_is_backend_unavailable() -> None:
    client = connect(REFUSING_URL)
    try:
        budget = RedisCallBudget(client, 10)
        with pytest.raises(BackendUnavailable) as caught:
            await budget.spend(1)
        assert "hunter2" not in str(caught.value)
    finally:
        await client.aclose()
