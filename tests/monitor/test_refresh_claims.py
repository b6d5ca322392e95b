"""The fleet refresh over the claimed schedule: rounds of two replicas take disjoint nodes,
and every claim is let go once its node is stored, rescheduled or never sent.

The claimed schedule is PostgreSQL's in production; its SQL runs on SQLite too (without
row locks), which is enough to drive two replicas' rounds one after the other here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from tests.monitor._fleet import FakeClock, refresher_for

from wahealth.monitor.refresh import FleetRefresher
from wahealth.monitor.service import fleet_schedule
from wahealth.storage.health import HealthRepository
from wahealth.storage.models import NodeHealthRow
from wahealth.storage.schedule import ClaimedSchedule
from wahealth.testing import RunningApp, demo_settings, running_app

from .test_refresh import DEMO_NODES, _calls

INTERVAL = 60.0
# 36 calls a minute in rounds of 5 s: 3 nodes a round, half of the demo's six.
BUDGET = 36


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[RunningApp]:
    settings = demo_settings(tmp_path, upstream={"emulator_webhooks": False})
    async with running_app(settings) as running:
        await running.client.delete("/_emulator/calls")  # forget the start-up catalog sync
        yield running


def _replica(running: RunningApp, clock: FakeClock, name: str) -> FleetRefresher:
    schedule = ClaimedSchedule(running.components.sessions, by=name, lease=timedelta(seconds=30))
    return refresher_for(
        running.components, clock, budget=BUDGET, interval=INTERVAL, schedule=schedule
    )


async def _claimed(running: RunningApp) -> dict[str, str | None]:
    async with running.components.sessions() as session:
        rows = await session.execute(select(NodeHealthRow.node_id, NodeHealthRow.claimed_by))
        return {node_id: by for node_id, by in rows}


async def _by_node(running: RunningApp) -> dict[str, int]:
    by_node: dict[str, int] = (await _calls(running))["by_node"]
    return by_node


async def test_two_replicas_rounds_share_the_fleet_and_let_go_of_every_claim(
    demo: RunningApp,
) -> None:
    clock = FakeClock()
    a, b = _replica(demo, clock, "replica-a"), _replica(demo, clock, "replica-b")
    await a.step()
    first = await _by_node(demo)
    assert len(first) == 3
    await b.step()
    assert await _by_node(demo) == dict.fromkeys(DEMO_NODES, 1)  # the other three
    assert set((await _claimed(demo)).values()) == {None}

    # Fetched by either replica: due for neither until the interval has passed.
    await a.step()
    await b.step()
    assert await _by_node(demo) == dict.fromkeys(DEMO_NODES, 1)
    clock.now += INTERVAL + 1
    await b.step()
    await a.step()
    assert await _by_node(demo) == dict.fromkeys(DEMO_NODES, 2)
    assert set((await _claimed(demo)).values()) == {None}


async def test_a_failed_node_is_rescheduled_and_let_go(demo: RunningApp) -> None:
    clock = FakeClock()
    a, b = _replica(demo, clock, "replica-a"), _replica(demo, clock, "replica-b")
    # Meta fails the round's one batch request (the client tries each 3 times).
    fault = {"status": 500, "count": 3}
    assert (await demo.client.post("/_emulator/faults", json=fault)).status_code == 201
    await a.step()
    history = HealthRepository(demo.components.sessions)
    failed = [node for node in await history.of_space("demo-space") if node.next_due_at is not None]
    assert len(failed) == 3
    for stored in failed:
        assert stored.payload is None
        assert stored.next_due_at is not None
        assert stored.next_due_at.timestamp() == pytest.approx(clock.now + INTERVAL)
    assert set((await _claimed(demo)).values()) == {None}

    # Rescheduled for everyone: the other replica takes only the three still due.
    await b.step()
    clock.now += 5
    await b.step()
    fetched = await _by_node(demo)
    assert set(fetched) == DEMO_NODES - {node.node_id for node in failed}


async def test_nodes_never_sent_after_a_throttle_are_let_go_for_any_replica(
    demo: RunningApp,
) -> None:
    clock = FakeClock()
    a, b = _replica(demo, clock, "replica-a"), _replica(demo, clock, "replica-b")
    fault = {"code": 4, "retry_after": 120, "count": 1}
    assert (await demo.client.post("/_emulator/faults", json=fault)).status_code == 201
    assert await a.step() == 120
    assert (await _calls(demo))["by_node"] == {}  # refused as a whole: no node answered
    assert set((await _claimed(demo)).values()) == {None}

    # Not held by the paused replica: the other takes them in its next rounds.
    await b.step()
    clock.now += 5
    await b.step()
    assert await _by_node(demo) == dict.fromkeys(DEMO_NODES, 1)


def test_the_monitor_claims_on_postgresql_and_keeps_the_plain_schedule_on_sqlite(
    tmp_path: Path,
) -> None:
    sqlite = demo_settings(tmp_path)
    assert isinstance(fleet_schedule(sqlite, None, "replica-a"), HealthRepository)
    postgresql = demo_settings(
        tmp_path,
        storage={"url": "postgresql+asyncpg://wahealth@127.0.0.1/wahealth"},
        monitor={"schedule_lease_seconds": 15},
    )
    claimed = fleet_schedule(postgresql, None, "replica-a")
    assert isinstance(claimed, ClaimedSchedule)
    assert (claimed.replica_id, claimed.lease) == ("replica-a", timedelta(seconds=15))
    with pytest.raises(ValidationError, match="schedule_lease_seconds"):
        demo_settings(tmp_path, monitor={"schedule_lease_seconds": 0})
