"""What the dashboard's alerts and node pages read of the outbox, scoped to one account.

Every query joins an alert to its subscription's space and that space's account, so an
account sees, and retries, only its own alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from wahealth.domain.records import AlertState, Subscription
from wahealth.storage._session import Factory, reading
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import Conflict, UnknownAlert
from wahealth.storage.models import (
    AccountRow,
    AlertSubscriptionRow,
    OutboxRow,
    SpaceRow,
    TransitionRow,
)
from wahealth.storage.outbox import OutboxRepository, subscription_of


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert with where it goes and which node's change it reports."""

    id: str
    state: str
    event: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    subscription_id: int
    url: str
    space_id: str
    node_id: str
    transition_id: int


def _alerts(account: str) -> Select[*tuple[Any, ...]]:
    return (
        select(
            OutboxRow.id,
            OutboxRow.state,
            OutboxRow.event,
            OutboxRow.attempts,
            OutboxRow.last_error,
            OutboxRow.created_at,
            OutboxRow.next_attempt_at,
            OutboxRow.delivered_at,
            OutboxRow.subscription_id,
            AlertSubscriptionRow.url,
            AlertSubscriptionRow.space_id,
            TransitionRow.node_id,
            OutboxRow.transition_id,
        )
        .join(AlertSubscriptionRow, AlertSubscriptionRow.id == OutboxRow.subscription_id)
        .join(TransitionRow, TransitionRow.id == OutboxRow.transition_id)
        .join(SpaceRow, SpaceRow.id == AlertSubscriptionRow.space_id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .where(AccountRow.name == account)
    )


class AlertsView:
    """The account's alerts by state, its subscriptions, and retrying its dead letters."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions
        self._outbox = OutboxRepository(sessions)

    async def alerts(
        self, account: str, *, state: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[AlertView]:
        """The account's alerts (of one state), newest first."""
        query = _alerts(account)
        if state is not None:
            query = query.where(OutboxRow.state == state)
        query = query.order_by(OutboxRow.created_at.desc(), OutboxRow.id).offset(offset)
        return await self._list(query.limit(limit))

    async def alerts_of_node(self, account: str, node_id: str, limit: int = 50) -> list[AlertView]:
        """The alerts sent (or to send) for the node's transitions, newest first."""
        query = _alerts(account).where(TransitionRow.node_id == node_id)
        return await self._list(
            query.order_by(OutboxRow.created_at.desc(), OutboxRow.id).limit(limit)
        )

    async def counts(self, account: str) -> dict[str, int]:
        """How many of the account's alerts are in each state (every state named)."""
        query = (
            select(OutboxRow.state, func.count())
            .join(AlertSubscriptionRow, AlertSubscriptionRow.id == OutboxRow.subscription_id)
            .join(SpaceRow, SpaceRow.id == AlertSubscriptionRow.space_id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(AccountRow.name == account)
            .group_by(OutboxRow.state)
        )
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
        counts = {state.value: 0 for state in AlertState}
        counts.update({str(state): int(count) for state, count in rows})
        return counts

    async def subscriptions(self, account: str) -> list[Subscription]:
        """The account's subscriptions, paused ones included."""
        query = (
            select(AlertSubscriptionRow)
            .join(SpaceRow, SpaceRow.id == AlertSubscriptionRow.space_id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(AccountRow.name == account)
            .order_by(AlertSubscriptionRow.space_id, AlertSubscriptionRow.id)
        )
        async with reading(self._sessions) as session:
            return [subscription_of(row) for row in await session.scalars(query)]

    async def retry_dead(self, account: str, alert_id: str) -> str:
        """Requeue one of the account's dead alerts, due now with its attempts reset.

        Answers "retried", "not dead" (it is pending or delivered) or "not found" (no such
        alert, or another account's).
        """
        query = _alerts(account).where(OutboxRow.id == alert_id)
        async with reading(self._sessions) as session:
            if (await session.execute(query)).first() is None:
                return "not found"
        try:
            await self._outbox.retry_dead(alert_id, utcnow())
        except UnknownAlert:
            return "not found"  # removed meanwhile
        except Conflict:
            return "not dead"
        return "retried"

    async def _list(self, query: Select[*tuple[Any, ...]]) -> list[AlertView]:
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
        return [AlertView(*row) for row in rows]
