"""Acknowledgements: someone saw a node's problem, so it is not alerted again.

An acknowledgement holds for a node while its overall status stays the one
acknowledged; the recorder drops it at the first change of status, and every read
here checks the status too (a report may be stored before the recorder runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.domain.model import Status
from wahealth.domain.records import Acknowledgement
from wahealth.storage._session import Factory, insert_for, reading, writing
from wahealth.storage.models import AcknowledgementRow, NodeHealthRow, TransitionRow


def acknowledgement_of_row(row: AcknowledgementRow) -> Acknowledgement:
    return Acknowledgement(
        row.node_id,
        row.status,
        row.transition_id,
        row.acknowledged_by,
        row.note,
        row.acknowledged_at,
    )


class AcknowledgementRepository:
    """Acknowledgements per node."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def acknowledge(
        self, node_id: str, *, by: str | None, note: str | None, now: datetime
    ) -> Acknowledgement | None:
        """Acknowledge the node's current status; None if it is AVAILABLE or never seen."""
        async with writing(self._sessions) as session:
            health = await session.get(NodeHealthRow, node_id)
            status = health.can_send_message if health is not None else None
            if status is None or status == Status.AVAILABLE.value:
                return None
            last = await session.scalar(
                select(func.max(TransitionRow.id)).where(
                    TransitionRow.node_id == node_id, TransitionRow.field.is_(None)
                )
            )
            values = {
                "status": status,
                "transition_id": last,
                "acknowledged_by": by,
                "note": note,
                "acknowledged_at": now,
            }
            insert = insert_for(session)(AcknowledgementRow)
            await session.execute(
                insert.values(node_id=node_id, **values).on_conflict_do_update(
                    index_elements=[AcknowledgementRow.node_id], set_=values
                )
            )
            return Acknowledgement(node_id, status, last, by, note, now)

    async def acknowledgements(self, node_ids: Iterable[str]) -> dict[str, Acknowledgement]:
        """The stored acknowledgements of these nodes (valid or not: see `acknowledgement_of`)."""
        wanted = sorted(set(node_ids))
        if not wanted:
            return {}
        async with reading(self._sessions) as session:
            rows = await session.scalars(
                select(AcknowledgementRow).where(AcknowledgementRow.node_id.in_(wanted))
            )
            return {row.node_id: acknowledgement_of_row(row) for row in rows}

    async def acknowledgements_in_force(
        self, node_ids: Iterable[str]
    ) -> dict[str, Acknowledgement]:
        """The acknowledgements of these nodes that still hold (their status is unchanged)."""
        wanted = sorted(set(node_ids))
        if not wanted:
            return {}
        async with reading(self._sessions) as session:
            rows = await session.scalars(
                select(AcknowledgementRow)
                .join(NodeHealthRow, NodeHealthRow.node_id == AcknowledgementRow.node_id)
                .where(
                    AcknowledgementRow.node_id.in_(wanted),
                    NodeHealthRow.can_send_message == AcknowledgementRow.status,
                )
            )
            return {row.node_id: acknowledgement_of_row(row) for row in rows}

    async def acknowledgement_of(self, node_id: str) -> Acknowledgement | None:
        """The node's acknowledgement, if its status is still the one acknowledged."""
        async with reading(self._sessions) as session:
            row = await session.get(AcknowledgementRow, node_id)
            health = await session.get(NodeHealthRow, node_id)
            if row is None or health is None or health.can_send_message != row.status:
                return None
            return acknowledgement_of_row(row)

    async def clear_acknowledgements(self, node_ids: Iterable[str]) -> int:
        """Drop the acknowledgements of nodes whose status changed."""
        wanted = sorted(set(node_ids))
        if not wanted:
            return 0
        async with writing(self._sessions) as session:
            result = await session.execute(
                delete(AcknowledgementRow).where(AcknowledgementRow.node_id.in_(wanted))
            )
            return int(getattr(result, "rowcount", 0) or 0)


async def acknowledged(session: AsyncSession, node_ids: list[str]) -> set[str]:
    """The nodes among these whose acknowledgement still holds (status unchanged)."""
    if not node_ids:
        return set()
    rows = await session.execute(
        select(AcknowledgementRow.node_id)
        .join(NodeHealthRow, NodeHealthRow.node_id == AcknowledgementRow.node_id)
        .where(
            AcknowledgementRow.node_id.in_(node_ids),
            NodeHealthRow.can_send_message == AcknowledgementRow.status,
        )
    )
    return {node_id for (node_id,) in rows}
