"""A batch of reports stores exactly the rows the same reports recorded one at a time would.

The batch mixes new nodes, unchanged and changed ones, a node with a row but no report
yet, a report older than the stored one, a node outside the catalog and a node flapping
inside the batch. Each run starts from the same stored state; node_health, transitions
and outbox rows are compared (transition ids by rank, since ids are never reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.domain import parse_health_status
from wahealth.domain.records import PlannedAlert, Subscription, Transition, TransitionCause
from wahealth.monitor.recorder import TransitionRecorder
from wahealth.storage.catalog import CatalogRepository, PhoneNumberRecord
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.health import HealthRepository, ReportRecord
from wahealth.storage.models import NodeHealthRow, OutboxRow, TransitionRow
from wahealth.storage.outbox import OutboxRepository

from ._reports import codes, overall, report

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CHECKED = T0 + timedelta(hours=1)
CATALOGUED = ["p1", "p2", "p3", "p4", "p5", "p6"]


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _payload(node_id: str, status: str) -> dict[str, Any]:
    if status == "BLOCKED":
        document = report(waba="BLOCKED", waba_errors=(141006,))
    elif status == "LIMITED":
        document = report(phone="LIMITED", phone_info=("Display name not approved",))
    else:
        document = report()
    return {**document, "id": node_id}


# What is stored before the compared reports: p1 AVAILABLE, p2 BLOCKED, p3 LIMITED.
BEFORE = [("p1", "AVAILABLE", 0.0), ("p2", "BLOCKED", 0.0), ("p3", "LIMITED", 0.0)]
BATCH = [
    ("p1", "AVAILABLE", 1.0),  # unchanged
    ("p2", "AVAILABLE", 1.0),  # recovered
    ("p4", "BLOCKED", 1.0),  # new, news
    ("p5", "AVAILABLE", 1.0),  # new, a baseline
    ("p3", "AVAILABLE", -1.0),  # older than the stored report: ignored
    ("p6", "LIMITED", 1.0),  # scheduled before, never fetched
    ("outside", "BLOCKED", 1.0),  # not in the catalog
    ("p1", "BLOCKED", 2.0),  # p1 flaps within the batch
    ("p1", "AVAILABLE", 3.0),
    ("p1", "AVAILABLE", 3.5),  # unchanged again
    ("p1", "BLOCKED", 4.0),
    ("p2", "LIMITED", 4.0),
]


KEEP_SCHEDULE = {("p5", 1.0), ("p1", 3.5), ("p2", 4.0)}


def _plan(transition: Transition, subscriptions: Sequence[Subscription]) -> list[PlannedAlert]:
    return [
        PlannedAlert(
            s.id,
            transition.after,
            {
                "node": transition.node_id,
                "transition_id": transition.id,
                "seen": len(subscriptions),
            },
        )
        for s in subscriptions
        if s.wants(transition.after) or transition.before is not None
    ]


def _record(node_id: str, status: str, minutes: float) -> ReportRecord:
    payload = _payload(node_id, status)
    return ReportRecord(
        node_id,
        "PHONE_NUMBER",
        None if node_id == "outside" else "acme-space",
        overall(payload),
        payload,
        codes(payload),
        _at(minutes),
        TransitionCause.WEBHOOK if minutes > 3 else TransitionCause.POLL,
        alerts=_plan,
        # None keeps the schedule: of a new node, a stored one, one scheduled in this batch.
        next_due_at=None if (node_id, minutes) in KEEP_SCHEDULE else _at(minutes + 60),
        checked_at=CHECKED,
    )


Factory = async_sessionmaker[AsyncSession]


async def _reset(sessions: Factory, health: HealthRepository) -> None:
    async with sessions() as session, session.begin():
        for table in (OutboxRow, TransitionRow, NodeHealthRow):
            await session.execute(delete(table))
    await health.set_next_due("p6", _at(-5), node_kind="PHONE_NUMBER", space_id="acme-space")


async def _stored(sessions: Factory, *, checked: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    async with sessions() as session:
        nodes = (await session.scalars(select(NodeHealthRow).order_by(NodeHealthRow.node_id))).all()
        transitions = (
            await session.scalars(select(TransitionRow).order_by(TransitionRow.id))
        ).all()
        alerts = (await session.scalars(select(OutboxRow))).all()
    rank = {row.id: index for index, row in enumerate(transitions)}

    def ranked(payload: dict[str, Any]) -> dict[str, Any]:
        if "transition_id" in payload:
            payload = {**payload, "transition_id": rank[payload["transition_id"]]}
        if "nodes" in payload:  # a WABA-level group lists its nodes' transitions
            payload["nodes"] = [ranked(node) for node in payload["nodes"]]
        return payload

    return {
        "node_health": [
            (
                r.node_id,
                r.node_kind,
                r.space_id,
                r.can_send_message,
                r.payload,
                r.error_codes,
                r.fetched_at,
                r.checked_at if checked else r.checked_at is not None,
                r.next_due_at,
            )
            for r in nodes
        ],
        "transitions": [
            (
                r.node_id,
                r.node_kind,
                r.space_id,
                r.before,
                r.after,
                r.changes,
                r.error_codes,
                r.cause,
                r.occurred_at,
            )
            for r in transitions
        ],
        "outbox": sorted(
            (
                rank[r.transition_id],
                r.subscription_id,
                r.event,
                repr(sorted(ranked(r.payload).items())),
                r.state,
                r.attempts,
                r.next_attempt_at,
                r.delivered_at,
            )
            for r in alerts
        ),
    }


@pytest.fixture
async def fleet(acme: str, catalog: CatalogRepository, outbox: OutboxRepository) -> str:
    numbers = [
        PhoneNumberRecord(node_id, f"+1 555 {i:04d}") for i, node_id in enumerate(CATALOGUED)
    ]
    await catalog.replace_phone_numbers("waba-1", numbers)
    await outbox.add_subscription(acme, "https://hooks.example/bad", on_events=["BLOCKED"])
    await outbox.add_subscription(acme, "https://hooks.example/any", on_events=["ANY"])
    return acme


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize("chunk", [500, 3])
async def test_record_many_stores_what_record_one_by_one_stores(
    sessions: Factory, health: HealthRepository, chunk: int
) -> None:
    before = [_record(*item) for item in BEFORE]
    batch = [_record(*item) for item in BATCH]

    await _reset(sessions, health)
    await health.record_many(before)
    one_by_one = []
    for item in batch:
        one_by_one.append(
            await health.record(
                item.node_id,
                item.kind,
                item.space_id,
                item.overall,
                item.payload,
                item.error_codes,
                item.fetched_at,
                item.cause,
                alerts=item.alerts,
                next_due_at=item.next_due_at,
                checked_at=item.checked_at,
            )
        )
    expected = await _stored(sessions)

    await _reset(sessions, health)
    await health.record_many(before)
    in_bulk = await health.record_many(batch, chunk=chunk)

    assert await _stored(sessions) == expected
    assert [i is None for i in in_bulk] == [i is None for i in one_by_one]
    assert [i is None for i in in_bulk] == [
        True, False, False, False, True, False, False, False, False, True, False, False,
    ]  # fmt: skip
    # What record stores, as its own tests pin it: the schedule kept where None was given,
    # the older report ignored, a first report from a row without one has no `before`.
    schedule = {row[0]: row[8] for row in expected["node_health"]}
    assert schedule == {
        "outside": _at(61), "p1": _at(64), "p2": _at(61), "p3": _at(60), "p4": _at(61),
        "p5": None, "p6": _at(61),
    }  # fmt: skip
    assert [row[3] for row in expected["node_health"] if row[0] == "p3"] == ["LIMITED"]
    assert [(t[0], t[3], t[4]) for t in expected["transitions"][3:]] == [
        ("p2", "BLOCKED", "AVAILABLE"), ("p4", None, "BLOCKED"), ("p5", None, "AVAILABLE"),
        ("p6", None, "LIMITED"), ("outside", None, "BLOCKED"), ("p1", "AVAILABLE", "BLOCKED"),
        ("p1", "BLOCKED", "AVAILABLE"), ("p1", "AVAILABLE", "BLOCKED"), ("p2", "AVAILABLE", "LIMITED"),
    ]  # fmt: skip
    assert len(expected["outbox"]) > 0


@pytest.mark.usefixtures("fleet")
async def test_a_recorded_batch_folds_alerts_as_reports_one_by_one_do(
    sessions: Factory, health: HealthRepository
) -> None:
    def recorder() -> TransitionRecorder:
        return TransitionRecorder(
            history=health,
            flaps=FlapRepository(sessions),
            interval_seconds=600,
            flap_window_seconds=300,
            clock=lambda: _at(5),
        )

    def parsed(node_id: str, status: str, minutes: float) -> Any:
        return parse_health_status(
            _payload(node_id, status), fetched_at=_at(minutes), node_id=node_id
        )

    before = [parsed(*item) for item in BEFORE]
    batch = [parsed(*item) for item in BATCH]

    await _reset(sessions, health)
    await recorder().observe_many(before, "poll")
    for item in batch:
        await recorder().observe(item, "poll")
    expected = await _stored(sessions, checked=False)

    await _reset(sessions, health)
    await recorder().observe_many(before, "poll")
    await recorder().observe_many(batch, "poll")

    stored = await _stored(sessions, checked=False)
    assert stored == expected
    grouped = [alert for alert in stored["outbox"] if "'grouped', 2" in alert[3]]
    assert grouped, "the flapping node's alerts were folded"


@pytest.mark.usefixtures("fleet")
async def test_a_record_from_the_catalog_takes_its_kind_and_space_from_there(
    sessions: Factory, health: HealthRepository
) -> None:
    await _reset(sessions, health)
    guessed = [
        ReportRecord(
            node_id,
            "UNKNOWN",
            None,
            "BLOCKED",
            _payload(node_id, "BLOCKED"),
            ["141006"],
            _at(1),
            TransitionCause.POLL,
            alerts=_plan,
            from_catalog=True,
        )
        for node_id in ("p1", "outside")
    ]
    ids = await health.record_many(guessed)
    assert None not in ids
    stored = await _stored(sessions)
    assert [row[:3] for row in stored["node_health"] if row[0] in ("p1", "outside")] == [
        ("outside", "UNKNOWN", None),
        ("p1", "PHONE_NUMBER", "acme-space"),
    ]
    assert [row[:3] for row in stored["transitions"]] == [
        ("p1", "PHONE_NUMBER", "acme-space"),
        ("outside", "UNKNOWN", None),
    ]
    # The planner saw the space's two subscriptions for p1; the node outside has no space.
    assert stored["outbox"]
    assert {alert[0] for alert in stored["outbox"]} == {0}
    assert all("('seen', 2)" in alert[3] for alert in stored["outbox"])
