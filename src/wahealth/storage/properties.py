"""The kept fields of phone numbers and templates: applying what was seen, recording changes.

`record` is the one write. Observations (from the catalog sync, the fleet refresh or
a Meta webhook) are applied in order to the catalog rows; each field that went from
one known value to another (see `wahealth.domain.changes.field_changes`) is a
transition of its own, `field` naming it, with the alerts planned for it. The new
values, the transitions and their alerts are written in one transaction, as health
transitions are. Most observations change nothing: they are compared in a read
first, so an unchanged fleet costs no write at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.domain.changes import field_changes
from wahealth.domain.model import NodeKind
from wahealth.domain.nodes import normalize_phone_number
from wahealth.domain.properties import PHONE_NUMBER_FIELDS, TEMPLATE_FIELDS
from wahealth.domain.records import PropertyObservation, Transition, TransitionCause
from wahealth.storage._session import Factory, insert_for, reading, writing
from wahealth.storage.models import OutboxRow, PhoneNumberRow, TemplateRow, WabaRow
from wahealth.storage.recording import (
    AlertPlanner,
    _active_subscriptions,
    _insert_transitions,
    _outbox_row,
)

_IN_CHUNK = 500
_TABLES: tuple[tuple[NodeKind, type[PhoneNumberRow] | type[TemplateRow], tuple[str, ...]], ...] = (
    (NodeKind.PHONE_NUMBER, PhoneNumberRow, PHONE_NUMBER_FIELDS),
    (NodeKind.MESSAGE_TEMPLATE, TemplateRow, TEMPLATE_FIELDS),
)


@dataclass(slots=True)
class _Stored:
    kind: NodeKind
    space_id: str
    values: dict[str, str | None]
    observed_at: datetime | None
    written: bool = False


class PropertyRepository:
    """Kept fields per node, and the transitions their changes are."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def kinds(self, node_ids: Iterable[str]) -> dict[str, NodeKind]:
        """Which of these ids are catalog phone numbers or templates."""
        return {node_id: kind for node_id, (kind, _) in (await self.snapshot(node_ids)).items()}

    async def snapshot(
        self, node_ids: Iterable[str]
    ) -> dict[str, tuple[NodeKind, dict[str, str | None]]]:
        """The kind and stored kept fields of each of these ids that is a catalog phone
        number or template (a plain read: compare with it, record through `record`)."""
        wanted = sorted(set(node_ids))
        found: dict[str, tuple[NodeKind, dict[str, str | None]]] = {}
        async with reading(self._sessions) as session:
            for kind, model, names in _TABLES:
                columns = [model.__table__.c[name] for name in names]
                for start in range(0, len(wanted), _IN_CHUNK):
                    chunk = wanted[start : start + _IN_CHUNK]
                    rows = await session.execute(
                        select(model.id, *columns).where(model.id.in_(chunk))
                    )
                    for node_id, *values in rows:
                        found[node_id] = (kind, dict(zip(names, values, strict=True)))
        return found

    async def record(
        self,
        observations: Sequence[PropertyObservation],
        cause: TransitionCause | str,
        *,
        alerts: AlertPlanner | None = None,
        before_write: Callable[[], Awaitable[None]] | None = None,
    ) -> list[int]:
        """Apply the observations in order; the ids of the transitions they made.

        Nodes not in the catalog are skipped, and so is an observation older than the
        one last applied to its node. `alerts` plans each transition's alerts, given
        the space's active subscriptions; they are enqueued in the same transaction.
        `before_write` is awaited once a read has shown there is something to write,
        before the write (what only a write needs, such as the silences, is read there).
        """
        node_ids = sorted({observation.node_id for observation in observations})
        if not node_ids:
            return []
        async with reading(self._sessions) as session:
            stored = await _stored_rows(session, node_ids, lock=False)
        if not _apply(stored, observations, TransitionCause(cause))[0]:
            return []
        if before_write is not None:
            await before_write()
        async with writing(self._sessions) as session:
            stored = await _stored_rows(session, node_ids, lock=True)
            written, transitions = _apply(stored, observations, TransitionCause(cause))
            await _write_values(session, written)
            if not transitions:
                return []
            ids = await _insert_transitions(session, transitions)
            await _enqueue(session, ids, transitions, alerts)
            return ids


def _apply(
    stored: dict[str, _Stored], observations: Sequence[PropertyObservation], cause: TransitionCause
) -> tuple[dict[str, _Stored], list[dict[str, Any]]]:
    """The rows to write and the transitions to insert."""
    transitions: list[dict[str, Any]] = []
    for observation in observations:
        row = stored.get(observation.node_id)
        if row is None or (
            row.observed_at is not None and observation.observed_at < row.observed_at
        ):
            continue
        names = PHONE_NUMBER_FIELDS if row.kind is NodeKind.PHONE_NUMBER else TEMPLATE_FIELDS
        seen = {name: observation.values.get(name) for name in names}
        writes, changes = field_changes(row.values, seen)
        if not writes:
            continue
        row.values.update(writes)
        row.observed_at = observation.observed_at
        row.written = True
        transitions.extend(
            {
                "node_id": observation.node_id,
                "node_kind": row.kind.value,
                "space_id": row.space_id,
                "before": change.before,
                "after": change.after,
                "field": change.field,
                "changes": {"field": change.field, "before": change.before, "after": change.after},
                "error_codes": [],
                "cause": cause.value,
                "occurred_at": observation.observed_at,
            }
            for change in changes
        )
    written = {node_id: row for node_id, row in stored.items() if row.written}
    return written, transitions


async def _stored_rows(
    session: AsyncSession, node_ids: list[str], *, lock: bool
) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    for kind, model, names in _TABLES:
        columns = [model.__table__.c[name] for name in names]
        for start in range(0, len(node_ids), _IN_CHUNK):
            query = (
                select(model.id, WabaRow.space_id, model.observed_at, *columns)
                .join(WabaRow, WabaRow.id == model.waba_id)
                .where(model.id.in_(node_ids[start : start + _IN_CHUNK]))
                .order_by(model.id)  # one lock order, so two writers cannot deadlock
            )
            if lock:
                query = query.with_for_update(of=model)
            for node_id, space_id, observed_at, *values in await session.execute(query):
                stored[node_id] = _Stored(
                    kind, space_id, dict(zip(names, values, strict=True)), observed_at
                )
    return stored


async def _write_values(session: AsyncSession, written: dict[str, _Stored]) -> None:
    for kind, model, names in _TABLES:
        rows: list[dict[str, Any]] = []
        for node_id, row in written.items():
            if row.kind is not kind:
                continue
            values: dict[str, Any] = {"id": node_id, "observed_at": row.observed_at}
            values.update((name, row.values[name]) for name in names)
            if kind is NodeKind.PHONE_NUMBER:
                values["digits"] = normalize_phone_number(row.values["display_phone_number"] or "")
            rows.append(values)
        if rows:
            await session.execute(update(model), rows)  # by primary key, executemany


async def _enqueue(
    session: AsyncSession,
    ids: list[int],
    transitions: list[dict[str, Any]],
    alerts: AlertPlanner | None,
) -> None:
    if alerts is None:
        return
    subscriptions = await _active_subscriptions(session, {t["space_id"] for t in transitions})
    rows: list[dict[str, Any]] = []
    for transition_id, values in zip(ids, transitions, strict=True):
        transition = Transition(
            transition_id,
            values["node_id"],
            values["node_kind"],
            values["space_id"],
            values["before"],
            values["after"],
            values["changes"],
            (),
            TransitionCause(values["cause"]),
            values["occurred_at"],
            values["field"],
        )
        planned = alerts(transition, subscriptions.get(values["space_id"], []))
        rows.extend(_outbox_row(alert, transition_id, values["occurred_at"]) for alert in planned)
    if rows:
        await session.execute(insert_for(session)(OutboxRow.__table__), rows)
