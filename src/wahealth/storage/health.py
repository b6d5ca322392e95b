"""Last known health per node, its history of transitions, and the polling schedule.

`record` is the monitor's one write: it stores the new state and, only when
something that matters changed (see `wahealth.domain.changes`), a transition
plus the alerts for it — all in one transaction, so history and alerts can
never disagree. `record_many` does the same for many reports, a chunk per
transaction (see `recording`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update

from wahealth.domain.model import NodeKind
from wahealth.domain.records import (
    AlertState,
    Claim,
    DueNode,
    NodeHealth,
    PlannedAlert,
    Transition,
    TransitionCause,
)
from wahealth.storage._session import Factory, insert_for, reading, rowcount, writing
from wahealth.storage.catalog import catalog_nodes
from wahealth.storage.models import AccountRow, NodeHealthRow, OutboxRow, SpaceRow, TransitionRow
from wahealth.storage.prune import DEFAULT_BATCH, prune_older_than, table_of
from wahealth.storage.recording import AlertPlanner, ReportRecord, write_reports

__all__ = ["AlertPlanner", "HealthRepository", "ReportRecord"]

# Reports written per transaction by `record_many`: big enough that a fleet refresh pays a
# few statements per chunk, not per report; small enough to keep each transaction short.
RECORD_CHUNK = 500
# Due nodes handed out at a time by `due_pages`.
DUE_PAGE = 2_000


def _health(row: NodeHealthRow) -> NodeHealth:
    return NodeHealth(
        row.node_id,
        row.node_kind,
        row.space_id,
        row.can_send_message,
        row.payload,
        tuple(row.error_codes),
        row.fetched_at,
        row.checked_at,
        row.next_due_at,
    )


def _transition(row: TransitionRow) -> Transition:
    return Transition(
        row.id,
        row.node_id,
        row.node_kind,
        row.space_id,
        row.before,
        row.after,
        row.changes,
        tuple(row.error_codes),
        TransitionCause(row.cause),
        row.occurred_at,
        row.field,
    )


def _held_by(claim: Claim) -> ColumnElement[bool]:
    """The row's current claim is `claim` (a later claim of it ends later)."""
    return and_(NodeHealthRow.claimed_by == claim.by, NodeHealthRow.claimed_until == claim.until)


def _due_query(now: datetime, limit: int) -> Select[str, str, str, datetime | None]:
    nodes = catalog_nodes().subquery()
    return (
        select(nodes.c.node_id, nodes.c.kind, nodes.c.space_id, NodeHealthRow.next_due_at)
        .join(SpaceRow, SpaceRow.id == nodes.c.space_id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)
        .where(
            AccountRow.disabled_at.is_(None),
            or_(NodeHealthRow.next_due_at.is_(None), NodeHealthRow.next_due_at <= now),
        )
        .order_by(NodeHealthRow.next_due_at.asc().nulls_first(), nodes.c.node_id)
        .limit(limit)
    )


class HealthRepository:
    """Node health, transitions and schedule, as the monitor uses them."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def prune_transitions(self, older_than: datetime, *, batch: int = DEFAULT_BATCH) -> int:
        """Delete history before `older_than`, except transitions with an alert still pending."""
        pending = (
            select(OutboxRow.id)
            .where(
                OutboxRow.transition_id == TransitionRow.id,
                OutboxRow.state == AlertState.PENDING.value,
            )
            .exists()
        )
        return await prune_older_than(
            self._sessions,
            table_of(TransitionRow.id),
            "occurred_at",
            older_than,
            where=~pending,
            batch=batch,
        )

    async def get(self, node_id: str) -> NodeHealth | None:
        async with reading(self._sessions) as session:
            row = await session.get(NodeHealthRow, node_id)
            return None if row is None else _health(row)

    async def of_space(self, space_id: str) -> list[NodeHealth]:
        """The last known state of every recorded node of a space."""
        async with reading(self._sessions) as session:
            rows = await session.scalars(
                select(NodeHealthRow)
                .where(NodeHealthRow.space_id == space_id)
                .order_by(NodeHealthRow.node_id)
            )
            return [_health(row) for row in rows]

    async def record(
        self,
        node_id: str,
        kind: str,
        space_id: str | None,
        overall: str,
        payload: Mapping[str, Any],
        error_codes: Iterable[str],
        fetched_at: datetime,
        cause: TransitionCause | str,
        changes: Mapping[str, Any] | None = None,
        *,
        alerts: AlertPlanner | Sequence[PlannedAlert] = (),
        next_due_at: datetime | None = None,
        checked_at: datetime | None = None,
    ) -> int | None:
        """Store a fetched report; the new transition's id if something changed, else None.

        `changes` defaults to the per-entity difference from the stored report.
        `alerts` (a list, or a planner called with the transition and the space's
        active subscriptions) are enqueued in the same transaction; if any insert
        fails, nothing at all is stored. A report older than the stored one is
        ignored. `next_due_at=None` keeps the current schedule.
        """
        record = ReportRecord(
            node_id,
            kind,
            space_id,
            overall,
            payload,
            error_codes,
            fetched_at,
            TransitionCause(cause),
            changes,
            alerts,
            next_due_at,
            checked_at,
        )
        [transition_id] = await self.record_many([record])
        return transition_id

    async def record_many(
        self, records: Sequence[ReportRecord], *, chunk: int = RECORD_CHUNK
    ) -> list[int | None]:
        """`record` for many reports, one transaction per `chunk` of them; per report, in
        order, its new transition's id or None.

        Every report is stored exactly as `record` would store it, one after the
        other (a node may appear more than once). A failing chunk stores nothing
        of itself; the chunks before it stay committed.
        """
        ids: list[int | None] = []
        for start in range(0, len(records), chunk):
            async with writing(self._sessions) as session:
                ids.extend(await write_reports(session, records[start : start + chunk]))
        return ids

    async def history(
        self, node_id: str, limit: int = 50, before_id: int | None = None
    ) -> list[Transition]:
        """A node's transitions, newest first; pass the last id seen as `before_id` for more."""
        return await self._page(TransitionRow.node_id == node_id, limit, before_id)

    async def recent(
        self, limit: int = 50, before_id: int | None = None, space_id: str | None = None
    ) -> list[Transition]:
        """Transitions of every node (or one space's), newest first."""
        condition = TransitionRow.space_id == space_id if space_id is not None else None
        return await self._page(condition, limit, before_id)

    async def _page(
        self, condition: ColumnElement[bool] | None, limit: int, before_id: int | None
    ) -> list[Transition]:
        query = select(TransitionRow).order_by(
            TransitionRow.occurred_at.desc(), TransitionRow.id.desc()
        )
        if condition is not None:
            query = query.where(condition)
        async with reading(self._sessions) as session:
            if before_id is not None:
                anchor = await session.get(TransitionRow, before_id)
                if anchor is None:
                    return []
                query = query.where(
                    or_(
                        TransitionRow.occurred_at < anchor.occurred_at,
                        and_(
                            TransitionRow.occurred_at == anchor.occurred_at,
                            TransitionRow.id < anchor.id,
                        ),
                    )
                )
            rows = await session.scalars(query.limit(limit))
            return [_transition(row) for row in rows]

    async def due_nodes(self, now: datetime, limit: int = 100) -> list[DueNode]:
        """Catalog nodes of enabled accounts due for a refresh: never-scheduled first, then
        by `next_due_at`, oldest first."""
        async with reading(self._sessions) as session:
            rows = (await session.execute(_due_query(now, limit))).all()
        return [DueNode(node_id, NodeKind(kind), space, due) for node_id, kind, space, due in rows]

    async def due_pages(
        self, now: datetime, *, limit: int, page: int = DUE_PAGE
    ) -> AsyncGenerator[list[DueNode]]:
        """`due_nodes(now, limit)`, read by one query and handed out `page` nodes at a time.

        The catalog is sorted once for the whole round instead of once per page (with
        100,000 nodes each sort reads them all); only a page is held at a time. The
        pages come from one snapshot, taken when the first is read. Close the iterator
        (`contextlib.aclosing`) when leaving it early: it holds a read transaction.
        """
        async with reading(self._sessions) as session:
            result = await session.stream(_due_query(now, limit))
            async for rows in result.partitions(page):
                yield [
                    DueNode(node_id, NodeKind(kind), space, due)
                    for node_id, kind, space, due in rows
                ]

    async def count_nodes(self) -> int:
        """How many catalog nodes of enabled accounts the fleet refresh keeps fresh."""
        nodes = catalog_nodes().subquery()
        query = (
            select(func.count())
            .select_from(nodes)
            .join(SpaceRow, SpaceRow.id == nodes.c.space_id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(AccountRow.disabled_at.is_(None))
        )
        async with reading(self._sessions) as session:
            return int(await session.scalar(query) or 0)

    async def set_next_due(
        self,
        node_id: str,
        next_due_at: datetime,
        *,
        checked_at: datetime | None = None,
        node_kind: str = NodeKind.UNKNOWN.value,
        space_id: str | None = None,
        held: Claim | None = None,
    ) -> bool:
        """Schedule the next refresh (e.g. backing off after a failed fetch); False if not.

        A node never fetched gets a row without a report; `node_kind` and
        `space_id` are used only then. With `held` (see `ClaimedSchedule`) the node
        is rescheduled and let go only while that claim is its current one: if the
        lease ran out and another replica claimed it since, that replica's outcome
        stands and this one is dropped (False).
        """
        changes: dict[str, Any] = {"next_due_at": next_due_at}
        if checked_at is not None:
            changes["checked_at"] = checked_at
        async with writing(self._sessions) as session:
            if held is not None:
                result = await session.execute(
                    update(NodeHealthRow)
                    .where(NodeHealthRow.node_id == node_id, _held_by(held))
                    .values(**changes, claimed_by=None, claimed_until=None)
                )
                return rowcount(result) == 1
            insert = insert_for(session)
            await session.execute(
                insert(NodeHealthRow)
                .values(
                    node_id=node_id,
                    node_kind=node_kind,
                    space_id=space_id,
                    error_codes=[],
                    **changes,
                )
                .on_conflict_do_update(index_elements=[NodeHealthRow.node_id], set_=changes)
            )
        return True

    async def release(self, nodes: Sequence[DueNode]) -> int:
        """Let go of these nodes' claims (fetched and recorded, or never sent); how many.

        A claim that is no longer current (its lease ran out and the node was claimed
        again) is left alone. Nodes without a claim are skipped.
        """
        by_claim: dict[Claim, list[str]] = {}
        for node in nodes:
            if node.claim is not None:
                by_claim.setdefault(node.claim, []).append(node.node_id)
        if not by_claim:
            return 0
        released = 0
        async with writing(self._sessions) as session:
            for claim, node_ids in by_claim.items():
                result = await session.execute(
                    update(NodeHealthRow)
                    .where(NodeHealthRow.node_id.in_(sorted(node_ids)), _held_by(claim))
                    .values(claimed_by=None, claimed_until=None)
                )
                released += rowcount(result)
        return released
