"""The fleet refresh's schedule shared by every replica on PostgreSQL: due nodes are claimed.

Every replica runs the monitor. A round takes its due nodes by claiming them: the
claiming transaction locks the due `node_health` rows it takes and skips rows another
replica is locking (`FOR UPDATE SKIP LOCKED`), and stores the claim on each row
(`claimed_by`, the replica id; `claimed_until`, the end of the lease). Concurrent rounds
take disjoint nodes without waiting on each other, and a claimed node is no other
replica's until its lease ends.

When a node is fetched, its report and its next due time (one interval after the
fetch) are recorded like any report (see `HealthRepository.record`); the round then
lets go of the claim (`release`), and the node is due again, for every replica, one
interval later. A node that failed is rescheduled only under the claim it was taken
with (`set_next_due(held=...)`): if the lease ran out and another replica claimed it
since, that replica's outcome stands. A replica that dies leaves claims that expire:
the others take its nodes when the lease ends. The lease is compared with each
replica's clock: keep the replicas' clocks in sync (NTP), as for the outbox's claims.

A node that was never scheduled has no row to lock: a claim first writes the rows of
such catalog nodes (unscheduled, unclaimed; usually none), in node id order, so two
replicas doing so at once wait on each other instead of deadlocking.

SQLite has one writer at a time and one process refreshing the fleet: it keeps
`HealthRepository`'s plain schedule, without claims.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.domain.model import NodeKind
from wahealth.domain.records import Claim, DueNode
from wahealth.storage._session import Factory, insert_for, writing
from wahealth.storage.catalog import catalog_nodes
from wahealth.storage.columns import JSONDocument, utcnow
from wahealth.storage.health import DUE_PAGE, HealthRepository
from wahealth.storage.models import AccountRow, NodeHealthRow, SpaceRow

__all__ = ["ClaimedSchedule"]


def _claimable(now: datetime, limit: int) -> Select[str, str, str, datetime | None]:
    """Due nodes of enabled accounts that no live claim holds, oldest first, locked."""
    nodes = catalog_nodes().subquery()
    return (
        select(NodeHealthRow.node_id, nodes.c.kind, nodes.c.space_id, NodeHealthRow.next_due_at)
        .join(nodes, nodes.c.node_id == NodeHealthRow.node_id)
        .join(SpaceRow, SpaceRow.id == nodes.c.space_id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .where(
            AccountRow.disabled_at.is_(None),
            or_(NodeHealthRow.next_due_at.is_(None), NodeHealthRow.next_due_at <= now),
            # Unclaimed, or its claim's lease has run out (that replica died or stalled).
            or_(NodeHealthRow.claimed_until.is_(None), NodeHealthRow.claimed_until <= now),
        )
        .order_by(NodeHealthRow.next_due_at.asc().nulls_first(), NodeHealthRow.node_id)
        .limit(limit)
        .with_for_update(of=NodeHealthRow, skip_locked=True)
    )


async def _schedule_new(session: AsyncSession) -> None:
    """Write a row (unscheduled, so due, and unclaimed) for every catalog node of an
    enabled account that has none, so it can be locked and claimed like the others.

    All of them, not a page: replicas doing this at once pick the same rows, and a page
    each would leave the rest of the new nodes unclaimable in that round."""
    nodes = catalog_nodes().subquery()
    unscheduled = (
        select(nodes.c.node_id, nodes.c.kind, nodes.c.space_id, literal([], JSONDocument))
        .join(SpaceRow, SpaceRow.id == nodes.c.space_id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)
        .where(AccountRow.disabled_at.is_(None), NodeHealthRow.node_id.is_(None))
        .order_by(nodes.c.node_id)
    )
    insert = insert_for(session)(NodeHealthRow).from_select(
        ["node_id", "node_kind", "space_id", "error_codes"], unscheduled
    )
    await session.execute(insert.on_conflict_do_nothing(index_elements=[NodeHealthRow.node_id]))


class ClaimedSchedule:
    """Due nodes claimed for one replica (`by`) for `lease`; the rest as `HealthRepository`."""

    def __init__(
        self,
        sessions: Factory,
        *,
        by: str,
        lease: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        self._sessions = sessions
        self._history = HealthRepository(sessions)
        self.replica_id = by
        self.lease = lease
        self._clock = clock

    async def due_nodes(self, now: datetime, limit: int = 100) -> list[DueNode]:
        """Claim up to `limit` due nodes (never scheduled first, then oldest due) for this
        replica; each carries its claim. Nodes another replica holds are skipped."""
        if limit <= 0:
            return []
        # The lease runs from the claim: a round may claim its last page well after it began.
        until = max(now, self._clock()) + self.lease
        async with writing(self._sessions) as session:
            await _schedule_new(session)
        async with writing(self._sessions) as session:
            rows = (await session.execute(_claimable(now, limit))).all()
            node_ids = [node_id for node_id, *_ in rows]
            if node_ids:
                await session.execute(
                    update(NodeHealthRow)
                    .where(NodeHealthRow.node_id.in_(node_ids))
                    .values(claimed_by=self.replica_id, claimed_until=until)
                )
        claim = Claim(self.replica_id, until)
        return [
            DueNode(node_id, NodeKind(kind), space_id, due, claim)
            for node_id, kind, space_id, due in rows
        ]

    async def due_pages(
        self, now: datetime, *, limit: int, page: int = DUE_PAGE
    ) -> AsyncGenerator[list[DueNode]]:
        """`due_nodes(now, limit)`, claimed `page` nodes at a time as they are asked for:
        a round holds no claim on nodes it has not reached."""
        handed = 0
        while handed < limit:
            wanted = min(page, limit - handed)
            claimed = await self.due_nodes(now, wanted)
            if claimed:
                yield claimed
            handed += len(claimed)
            if len(claimed) < wanted:
                return

    async def count_nodes(self) -> int:
        return await self._history.count_nodes()

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
        """See `HealthRepository.set_next_due`: with `held`, only under that claim."""
        return await self._history.set_next_due(
            node_id,
            next_due_at,
            checked_at=checked_at,
            node_kind=node_kind,
            space_id=space_id,
            held=held,
        )

    async def release(self, nodes: Sequence[DueNode]) -> int:
        """Let go of these nodes' claims where they are still current; how many."""
        return await self._history.release(nodes)
