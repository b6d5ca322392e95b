"""Silences and acknowledgements: what keeps an alert from being delivered.

A silence covers a node, a WABA (the WABA and its numbers and templates) or a space
from `starts_at` until `ends_at` (or until it is lifted). Alerts planned inside one
are stored as suppressed, never delivered. When it ends, `plan_ended` plans in one
transaction the one alert per subscription that lists the nodes of its scope still
not AVAILABLE, and marks the silence so it is planned only once.

Acknowledgements are kept by the same repository (see `acknowledgements`); which
space a scope is in, for a caller, by `SilenceOwners` (see `silence_owners`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.domain.model import Status
from wahealth.domain.records import (
    AlertState,
    PlannedAlert,
    Silence,
    SilenceScope,
    Subscription,
)
from wahealth.storage._session import insert_for, reading, writing
from wahealth.storage.acknowledgements import AcknowledgementRepository, acknowledged
from wahealth.storage.errors import UnknownSpace
from wahealth.storage.models import (
    AlertSubscriptionRow,
    NodeHealthRow,
    OutboxRow,
    PhoneNumberRow,
    SilenceRow,
    SpaceRow,
    TemplateRow,
    TransitionRow,
)
from wahealth.storage.outbox import subscription_of
from wahealth.storage.silence_owners import SilenceOwners

__all__ = [
    "EndPlanner",
    "SilenceOwners",
    "SilenceRepository",
    "SilencedNode",
    "UnknownSilence",
    "silence_of",
]


class UnknownSilence(LookupError):
    """No silence has this id."""


@dataclass(frozen=True, slots=True)
class SilencedNode:
    """A node still not AVAILABLE when a silence of its scope ended."""

    node_id: str
    node_kind: str
    space_id: str | None
    status: str
    error_codes: tuple[str, ...]
    transition_id: int


# (the silence that ended, its nodes still not AVAILABLE, the space's subscriptions) -> alerts
EndPlanner = Callable[[Silence, Sequence[SilencedNode], Sequence[Subscription]], list[PlannedAlert]]


def silence_of(row: SilenceRow) -> Silence:
    return Silence(
        row.id,
        row.space_id,
        SilenceScope(row.scope),
        row.scope_id,
        row.starts_at,
        row.ends_at,
        row.reason,
        row.created_by,
        row.created_at,
        row.ended_at,
        row.end_alerted_at,
    )


def _not_over(now: datetime) -> Select[SilenceRow]:
    """Silences that have not ended by `now` (started or still to start)."""
    return select(SilenceRow).where(
        SilenceRow.ends_at > now, or_(SilenceRow.ended_at.is_(None), SilenceRow.ended_at > now)
    )


class SilenceRepository(AcknowledgementRepository):
    """Silences per space and acknowledgements per node."""

    async def add(
        self,
        space_id: str,
        scope: SilenceScope,
        scope_id: str,
        *,
        starts_at: datetime,
        ends_at: datetime,
        reason: str | None,
        created_by: str | None,
    ) -> Silence:
        async with writing(self._sessions) as session:
            if await session.get(SpaceRow, space_id) is None:
                raise UnknownSpace(space_id)
            row = SilenceRow(
                space_id=space_id,
                scope=scope.value,
                scope_id=scope_id,
                starts_at=starts_at,
                ends_at=ends_at,
                reason=reason,
                created_by=created_by,
                created_at=starts_at,
            )
            session.add(row)
            await session.flush()
            return silence_of(row)

    async def get(self, silence_id: int) -> Silence | None:
        async with reading(self._sessions) as session:
            row = await session.get(SilenceRow, silence_id)
            return None if row is None else silence_of(row)

    async def current(self, now: datetime, space_ids: Iterable[str] | None = None) -> list[Silence]:
        """Silences not over at `now`, of these spaces (all spaces when None), oldest first."""
        query = _not_over(now).order_by(SilenceRow.id)
        if space_ids is not None:
            query = query.where(SilenceRow.space_id.in_(sorted(set(space_ids))))
        async with reading(self._sessions) as session:
            return [silence_of(row) for row in await session.scalars(query)]

    async def end(self, silence_id: int, now: datetime) -> Silence:
        """Lift a silence now (its end alert is planned at the next round)."""
        async with writing(self._sessions) as session:
            row = await session.get(SilenceRow, silence_id, with_for_update=True)
            if row is None:
                raise UnknownSilence(silence_id)
            if row.ended_at is None and row.ends_at > now:
                row.ended_at = now
            return silence_of(row)

    async def plan_ended(self, now: datetime, planner: EndPlanner) -> list[Silence]:
        """Plan the alerts of silences that ended by `now`; the silences handled."""
        async with writing(self._sessions) as session:
            ended = (
                await session.scalars(
                    select(SilenceRow)
                    .where(
                        SilenceRow.end_alerted_at.is_(None),
                        or_(SilenceRow.ends_at <= now, SilenceRow.ended_at <= now),
                    )
                    .order_by(SilenceRow.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not ended:
                return []
            still = [silence_of(row) for row in await session.scalars(_not_over(now))]
            still = [s for s in still if s.active_at(now)]
            handled = []
            for row in ended:
                silence = silence_of(row)
                nodes = await self._unavailable(session, silence)
                # A node under another silence, or acknowledged, is not news now.
                acked = await acknowledged(session, [n.node_id for n in nodes])
                nodes = [
                    n
                    for n in nodes
                    if n.node_id not in acked
                    and not any(s.id != silence.id and _covers(s, n) for s in still)
                ]
                if nodes:
                    subs = await _subscriptions(session, silence.space_id)
                    rows = [_outbox_row(a, now) for a in planner(silence, nodes, subs)]
                    if rows:
                        await session.execute(insert_for(session)(OutboxRow.__table__), rows)
                row.end_alerted_at = now
                handled.append(silence_of(row))
            return handled

    async def _unavailable(self, session: AsyncSession, silence: Silence) -> list[SilencedNode]:
        health = NodeHealthRow
        query = select(
            health.node_id,
            health.node_kind,
            health.space_id,
            health.can_send_message,
            health.error_codes,
        ).where(
            health.can_send_message.is_not(None),
            health.can_send_message != Status.AVAILABLE.value,
            health.space_id == silence.space_id,
        )
        if silence.scope is SilenceScope.NODE:
            query = query.where(health.node_id == silence.scope_id)
        elif silence.scope is SilenceScope.WABA:
            members = (
                select(PhoneNumberRow.id)
                .where(PhoneNumberRow.waba_id == silence.scope_id)
                .union_all(select(TemplateRow.id).where(TemplateRow.waba_id == silence.scope_id))
            )
            query = query.where(
                or_(health.node_id == silence.scope_id, health.node_id.in_(members))
            )
        found = (await session.execute(query.order_by(health.node_id))).all()
        if not found:
            return []
        last = dict(
            (
                await session.execute(
                    select(TransitionRow.node_id, func.max(TransitionRow.id))
                    .where(
                        TransitionRow.node_id.in_([r[0] for r in found]),
                        TransitionRow.field.is_(None),
                    )
                    .group_by(TransitionRow.node_id)
                )
            ).all()
        )
        return [
            SilencedNode(node_id, kind, space, str(status), tuple(codes or ()), last[node_id])
            for node_id, kind, space, status, codes in found
            if node_id in last
        ]

    async def wabas_of(self, node_ids: Sequence[str]) -> dict[str, str]:
        """The WABA of each of these numbers and templates that the catalog knows."""
        wanted = sorted(set(node_ids))
        if not wanted:
            return {}
        query = (
            select(PhoneNumberRow.id, PhoneNumberRow.waba_id)
            .where(PhoneNumberRow.id.in_(wanted))
            .union_all(
                select(TemplateRow.id, TemplateRow.waba_id).where(TemplateRow.id.in_(wanted))
            )
        )
        async with reading(self._sessions) as session:
            return {str(node): str(waba) for node, waba in await session.execute(query)}


def _covers(silence: Silence, node: SilencedNode) -> bool:
    # A WABA silence's members were found by the catalog; here only the node itself matters.
    return silence.space_id == node.space_id and (
        silence.scope is SilenceScope.SPACE or silence.scope_id == node.node_id
    )


async def _subscriptions(session: AsyncSession, space_id: str) -> list[Subscription]:
    rows = await session.scalars(
        select(AlertSubscriptionRow)
        .where(
            AlertSubscriptionRow.space_id == space_id, AlertSubscriptionRow.disabled_at.is_(None)
        )
        .order_by(AlertSubscriptionRow.id)
    )
    return [subscription_of(row) for row in rows]


def _outbox_row(alert: PlannedAlert, now: datetime) -> dict[str, object]:
    return {
        "id": alert.alert_id or uuid.uuid4().hex,
        "subscription_id": alert.subscription_id,
        "transition_id": int(alert.payload["transition_id"]),
        "event": alert.event,
        "payload": dict(alert.payload),
        "state": (alert.state or AlertState.PENDING).value,
        "attempts": 0,
        "next_attempt_at": alert.due_at or now,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
        "group_key": alert.group_key,
    }
