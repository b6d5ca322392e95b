"""Folding the alerts of a flapping node: what the monitor needs beyond `HealthRepository`.

Alerts are enqueued with their transition, in its transaction (see
`HealthRepository.record`), so none is ever lost. Folding runs right after, in
a transaction of its own: for one node and one subscription it keeps the
newest alert that has not been tried yet, deletes the older untried ones into
it (counting them in the payload's `grouped`; the alerts of its health and of each
kept field apart) and may hold it back until the
flap window since the last alert sent has passed. What to do is decided by a
pure policy passed in; this module only reads the rows and applies the plan.
Alerts already claimed by a sender are never touched: one may be on the wire.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from wahealth.domain.records import AlertSnapshot, AlertState, FlapPolicy
from wahealth.storage._session import Factory, writing
from wahealth.storage.models import OutboxRow, TransitionRow


def _snapshot(row: OutboxRow) -> AlertSnapshot:
    grouped = row.payload.get("grouped") if isinstance(row.payload, dict) else None
    return AlertSnapshot(
        id=row.id,
        transition_id=row.transition_id,
        state=AlertState(row.state),
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        grouped=grouped if isinstance(grouped, int) and grouped > 0 else 1,
    )


class FlapRepository:
    """Alert folding for the monitor's recorder."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def fold(self, transition_id: int, now: datetime, policy: FlapPolicy) -> int:
        """Apply `policy` to each untried alert of the transition; returns alerts deleted."""
        dropped = 0
        async with writing(self._sessions) as session:
            found = (
                await session.execute(
                    select(TransitionRow.node_id, TransitionRow.field).where(
                        TransitionRow.id == transition_id
                    )
                )
            ).first()
            if found is None:
                return 0
            # A node's health and each of its kept fields are grouped apart: a quality
            # alert must never absorb a BLOCKED one.
            node_id, changed_field = found
            fresh = (
                await session.scalars(
                    select(OutboxRow)
                    .where(OutboxRow.transition_id == transition_id)
                    .order_by(OutboxRow.subscription_id)
                    .with_for_update()
                )
            ).all()
            for row in fresh:
                new = _snapshot(row)
                if not new.untried:
                    continue  # a sender took it already
                others = (
                    await session.scalars(
                        select(OutboxRow)
                        .join(TransitionRow, TransitionRow.id == OutboxRow.transition_id)
                        .where(
                            OutboxRow.subscription_id == row.subscription_id,
                            TransitionRow.node_id == node_id,
                            TransitionRow.field.is_not_distinct_from(changed_field),
                            OutboxRow.id != row.id,
                            OutboxRow.state != AlertState.DEAD.value,
                        )
                        .order_by(OutboxRow.transition_id)
                        # Locked: a sender's claim waits (or skips them) until the plan is applied.
                        .with_for_update(of=OutboxRow)
                    )
                ).all()
                by_id = {other.id: other for other in others}
                by_id[row.id] = row
                plan = policy(new, [_snapshot(other) for other in others], now)
                if plan is None:
                    continue
                keep = by_id[plan.keep_id]
                drop = [by_id[i] for i in plan.drop_ids if i != plan.keep_id and i in by_id]
                if drop:
                    await session.execute(
                        delete(OutboxRow).where(OutboxRow.id.in_([r.id for r in drop]))
                    )
                    dropped += len(drop)
                keep.payload = {**keep.payload, "grouped": plan.grouped}
                keep.next_attempt_at = plan.due_at
                await session.flush()
        return dropped
