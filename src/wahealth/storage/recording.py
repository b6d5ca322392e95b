"""Storing fetched reports: the one write behind `HealthRepository.record` and `record_many`.

A chunk of reports is written in one transaction with a handful of statements: one
SELECT of the chunk's stored rows (locked on PostgreSQL), one bulk upsert of their
`node_health` rows, one bulk insert of the transitions of the nodes that changed and
one of their alerts. What is stored for each report is decided by `_next`, a pure
step applied in order, so a chunk gives exactly the rows the same reports recorded one
at a time would: a report older than the stored one is ignored, an unchanged one only
updates the row, a changed one (or a node's first report) is a transition with the
alerts planned for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.domain.changes import changes_between, entity_states, signature_of
from wahealth.domain.records import (
    AlertState,
    PlannedAlert,
    Subscription,
    Transition,
    TransitionCause,
)
from wahealth.storage._session import insert_for
from wahealth.storage.catalog import catalog_nodes
from wahealth.storage.columns import utcnow
from wahealth.storage.models import AlertSubscriptionRow, NodeHealthRow, OutboxRow, TransitionRow
from wahealth.storage.outbox import subscription_of

# Given the new transition and the space's active subscriptions, the alerts to send.
AlertPlanner = Callable[[Transition, Sequence[Subscription]], Iterable[PlannedAlert]]


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One fetched report as the monitor stores it (see `HealthRepository.record`)."""

    node_id: str
    kind: str
    space_id: str | None
    overall: str
    payload: Mapping[str, Any]
    error_codes: Iterable[str]
    fetched_at: datetime
    cause: TransitionCause | str
    changes: Mapping[str, Any] | None = None
    alerts: AlertPlanner | Sequence[PlannedAlert] = ()
    next_due_at: datetime | None = None
    checked_at: datetime | None = None
    # The catalog's kind and space of the node, when it knows it, replace `kind` and
    # `space_id` (read in the writing transaction: no lookup of its own per chunk).
    from_catalog: bool = False


@dataclass(frozen=True, slots=True)
class _Stored:
    """What a `node_health` row holds that decides the next write."""

    can_send_message: str | None
    payload: Mapping[str, Any] | None
    error_codes: Sequence[str]
    fetched_at: datetime | None


def _next(
    stored: _Stored | None, item: ReportRecord, now: datetime, ref: tuple[str, str] | None
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The row values and the transition (None: unchanged) a report gives; None to ignore it.

    `ref` is the catalog's (kind, space id) of the node, which `item.from_catalog` prefers.
    """
    if stored is not None and stored.fetched_at is not None and stored.fetched_at > item.fetched_at:
        return None
    kind, space_id = ref if ref is not None and item.from_catalog else (item.kind, item.space_id)
    codes = sorted({str(code) for code in item.error_codes})
    row: dict[str, Any] = {
        "node_id": item.node_id,
        "node_kind": kind,
        "space_id": space_id,
        "can_send_message": item.overall,
        "payload": dict(item.payload),
        "error_codes": codes,
        "fetched_at": item.fetched_at,
        "checked_at": item.checked_at or now,
    }
    if item.next_due_at is not None:
        row["next_due_at"] = item.next_due_at
    known = stored is not None and stored.payload is not None
    old_overall = stored.can_send_message if stored is not None else None
    # Each side's entity states once: for the comparison and for the changes.
    old_states = entity_states(stored.payload) if stored is not None and known else {}
    new_states = entity_states(item.payload) if item.changes is None or known else {}
    if known and signature_of(
        old_overall, old_states, stored.error_codes if stored is not None else ()
    ) == signature_of(item.overall, new_states, codes):
        return row, None
    transition = {
        "node_id": item.node_id,
        "node_kind": kind,
        "space_id": space_id,
        "before": old_overall if known else None,
        "after": item.overall,
        "changes": dict(item.changes)
        if item.changes is not None
        else changes_between(old_states, new_states),
        "error_codes": codes,
        "cause": TransitionCause(item.cause).value,
        "occurred_at": item.fetched_at,
    }
    return row, transition


def _transition(transition_id: int, values: Mapping[str, Any]) -> Transition:
    return Transition(
        transition_id,
        values["node_id"],
        values["node_kind"],
        values["space_id"],
        values["before"],
        values["after"],
        values["changes"],
        tuple(values["error_codes"]),
        TransitionCause(values["cause"]),
        values["occurred_at"],
    )


# The tables, not the ORM classes: a chunk's rows go in as one Core executemany each,
# without the ORM's per-row bulk bookkeeping (a fleet refresh writes 100,000 of them).
_NODE_HEALTH = NodeHealthRow.__table__
_TRANSITIONS = TransitionRow.__table__
_OUTBOX = OutboxRow.__table__


async def write_reports(session: AsyncSession, items: Sequence[ReportRecord]) -> list[int | None]:
    """Store `items` in the caller's transaction; per item its new transition's id, or None."""
    now = utcnow()
    stored = await _stored_rows(session, {item.node_id for item in items})
    refs = await _catalog_refs(session, {item.node_id for item in items if item.from_catalog})
    rows: dict[str, dict[str, Any]] = {}
    changed: list[tuple[int, ReportRecord, dict[str, Any]]] = []
    for index, item in enumerate(items):
        step = _next(stored.get(item.node_id), item, now, refs.get(item.node_id))
        if step is None:
            continue
        row, transition = step
        previous = rows.get(item.node_id)
        if previous is not None and "next_due_at" not in row and "next_due_at" in previous:
            row["next_due_at"] = previous["next_due_at"]  # None keeps the schedule
        rows[item.node_id] = row
        stored[item.node_id] = _Stored(
            row["can_send_message"], row["payload"], row["error_codes"], row["fetched_at"]
        )
        if transition is not None:
            changed.append((index, item, transition))
    await _upsert_rows(session, list(rows.values()))
    ids: list[int | None] = [None] * len(items)
    if not changed:
        return ids
    transition_ids = await _insert_transitions(session, [values for _, _, values in changed])
    subscriptions = await _active_subscriptions(
        session,
        {values["space_id"] for _, item, values in changed if callable(item.alerts)} - {None},
    )
    alerts: list[dict[str, Any]] = []
    for transition_id, (index, item, values) in zip(transition_ids, changed, strict=True):
        ids[index] = transition_id
        planned = item.alerts
        if callable(planned):
            space_id = values["space_id"]
            spaces = subscriptions.get(space_id, []) if space_id is not None else []
            planned = list(planned(_transition(transition_id, values), spaces))
        alerts.extend(_outbox_row(alert, transition_id, item.fetched_at) for alert in planned)
    if alerts:
        await session.execute(insert_for(session)(_OUTBOX), alerts)
    return ids


async def _insert_transitions(
    session: AsyncSession, transitions: list[dict[str, Any]]
) -> list[int]:
    """Insert transitions; their new ids, in order.

    PostgreSQL returns them from one multi-row INSERT. SQLite would answer RETURNING in
    parameter order only row by row (a round trip per transition), so there the rows go in
    one executemany and the ids are read back: the write transaction holds SQLite's only
    write lock (BEGIN IMMEDIATE) and the ids autoincrement, so they are the newest ones.
    """
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(
            insert_for(session)(TransitionRow).returning(
                TransitionRow.id, sort_by_parameter_order=True
            ),
            transitions,
        )
        return list(result.scalars())
    await session.execute(insert_for(session)(_TRANSITIONS), transitions)
    newest = await session.scalars(
        select(TransitionRow.id).order_by(TransitionRow.id.desc()).limit(len(transitions))
    )
    return sorted(newest)


def _outbox_row(alert: PlannedAlert, transition_id: int, due_at: datetime) -> dict[str, Any]:
    return {
        "id": alert.alert_id or uuid.uuid4().hex,
        "subscription_id": alert.subscription_id,
        "transition_id": transition_id,
        "event": alert.event,
        "payload": dict(alert.payload),
        "state": (alert.state or AlertState.PENDING).value,
        "attempts": 0,
        "next_attempt_at": alert.due_at or due_at,
        "last_error": None,
        "created_at": utcnow(),
        "delivered_at": None,
        "group_key": alert.group_key,
    }


async def _stored_rows(session: AsyncSession, node_ids: set[str]) -> dict[str, _Stored]:
    table = NodeHealthRow.__table__
    query = (
        select(
            table.c.node_id,
            table.c.can_send_message,
            table.c.payload,
            table.c.error_codes,
            table.c.fetched_at,
        )
        .where(table.c.node_id.in_(sorted(node_ids)))
        .order_by(table.c.node_id)  # one lock order, so two writers cannot deadlock
        .with_for_update()
    )
    return {
        node_id: _Stored(overall, payload, codes or (), fetched_at)
        for node_id, overall, payload, codes, fetched_at in await session.execute(query)
    }


async def _catalog_refs(session: AsyncSession, node_ids: set[str]) -> dict[str, tuple[str, str]]:
    """The catalog's (kind, space id) of each of these nodes that it knows."""
    if not node_ids:
        return {}
    nodes = catalog_nodes().subquery()
    query = select(nodes).where(nodes.c.node_id.in_(sorted(node_ids)))
    return {node_id: (kind, space_id) for node_id, kind, space_id in await session.execute(query)}


async def _upsert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    for row in rows:
        row.setdefault("next_due_at", None)
    insert = insert_for(session)(_NODE_HEALTH)
    excluded = insert.excluded
    columns = ("node_kind", "space_id", "can_send_message", "payload", "error_codes")
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[NodeHealthRow.node_id],
            set_={
                **{name: excluded[name] for name in columns},
                "fetched_at": excluded.fetched_at,
                "checked_at": excluded.checked_at,
                "next_due_at": func.coalesce(excluded.next_due_at, NodeHealthRow.next_due_at),
            },
            # A row another writer inserted since the SELECT keeps a newer report.
            where=or_(
                NodeHealthRow.fetched_at.is_(None),
                NodeHealthRow.fetched_at <= excluded.fetched_at,
            ),
        ),
        rows,
    )


async def _active_subscriptions(
    session: AsyncSession, space_ids: set[str]
) -> dict[str, list[Subscription]]:
    if not space_ids:
        return {}
    rows = await session.scalars(
        select(AlertSubscriptionRow)
        .where(
            AlertSubscriptionRow.space_id.in_(sorted(space_ids)),
            AlertSubscriptionRow.disabled_at.is_(None),
        )
        .order_by(AlertSubscriptionRow.id)
    )
    by_space: dict[str, list[Subscription]] = {}
    for row in rows:
        by_space.setdefault(row.space_id, []).append(subscription_of(row))
    return by_space
