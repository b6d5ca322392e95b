"""Concurrent identical queries share one upstream call, its result and its failure."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from wahealth.core.coalesce import SingleFlight


class UpstreamError(Exception):
    pass


class GatedUpstream:
    """An upstream call that counts its calls and finishes only when released."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> dict[str, int]:
        self.calls += 1
        call = self.calls
        await self.release.wait()
        if self.fail:
            raise UpstreamError(f"call {call} failed")
        return {"call": call}


async def settle() -> None:
    """Let every ready task run until all are waiting."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_fifty_concurrent_calls_share_one_upstream_call() -> None:
    flight: SingleFlight[str, dict[str, int]] = SingleFlight()
    upstream = GatedUpstream()
    waiters = [asyncio.create_task(flight.run("106540352242922", upstream)) for _ in range(50)]
    await settle()
    assert flight.in_flight("106540352242922")
    assert flight.in_flight_count == 1

    upstream.release.set()
    results = await asyncio.gather(*waiters)

    assert upstream.calls == 1
    assert all(result is results[0] for result in results)
    assert results[0] == {"call": 1}
    assert (flight.started_total, flight.joined_total) == (1, 49)
    assert not flight.in_flight("106540352242922")
    assert flight.in_flight_count == 0


async def test_a_failure_reaches_every_waiter() -> None:
    flight: SingleFlight[str, dict[str, int]] = SingleFlight()
    upstream = GatedUpstream(fail=True)
    waiters = [asyncio.create_task(flight.run("node", upstream)) for _ in range(10)]
    await settle()

    upstream.release.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)

    assert upstream.calls == 1
    assert all(isinstance(outcome, UpstreamError) for outcome in outcomes)
    assert str(outcomes[0]) == "call 1 failed"
    assert not flight.in_flight("node")


async def test_a_cancelled_waiter_does_not_cancel_the_call_for_the_others() -> None:
    flight: SingleFlight[str, dict[str, int]] = SingleFlight()
    upstream = GatedUpstream()
    # The first waiter is the one that started the call: the worst one to lose.
    waiters = [asyncio.create_task(flight.run("node", upstream)) for _ in range(3)]
    await settle()

    waiters[0].cancel()
    await settle()
    upstream.release.set()

    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    assert await waiters[1] == {"call": 1}
    assert await waiters[2] == {"call": 1}
    assert upstream.calls == 1


async def test_a_failure_nobody_waits_for_any_more_is_not_reported_as_unhandled() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    flight: SingleFlight[str, dict[str, int]] = SingleFlight()
    upstream = GatedUpstream(fail=True)
    waiter = asyncio.create_task(flight.run("node", upstream))
    await settle()
    waiter.cancel()
    await settle()

    upstream.release.set()
    await settle()
    del waiter
    gc.collect()

    assert upstream.calls == 1
    assert not flight.in_flight("node")
    assert reported == []


async def test_a_call_after_completion_starts_a_new_one() -> None:
    flight: SingleFlight[str, dict[str, int]] = SingleFlight()
    upstream = GatedUpstream()
    upstream.release.set()

    first = await flight.run("node", upstream)
    second = await flight.run("node", upstream)

    assert (first, second) == ({"call": 1}, {"call": 2})
    assert (flight.started_total, flight.joined_total) == (2, 0)


async def test_different_keys_do_not_share_a_call() -> None:
    flight: SingleFlight[str, dict[str, int]] = SingleFlight()
    upstream = GatedUpstream()
    waiters = [asyncio.create_task(flight.run(key, upstream)) for key in ("a", "b", "a", "b")]
    await settle()
    assert flight.in_flight_count == 2

    upstream.release.set()
    results = await asyncio.gather(*waiters)

    assert upstream.calls == 2
    assert results[0] is results[2]
    assert results[1] is results[3]
    assert results[0] != results[1]
