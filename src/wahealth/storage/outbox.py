"""Alert subscriptions and the outbox of alerts still to deliver.

Outbox rows are written in the same transaction as the transition they report
(see `HealthRepository.record`), so an alert is never lost across a restart and
never sent for a change that was rolled back. Delivery workers `claim` rows: a
claim leases them for a while (other workers skip them) and counts an attempt,
so a row whose worker died is retried after the lease, and a row that keeps
crashing workers still runs out of attempts.

A claim is stored on the row (`claimed_by`, the sender's replica id, and
`claimed_until`, the end of the lease), so it holds across replicas. On
PostgreSQL the claiming transaction locks the due rows it takes and skips rows
another sender is locking (`FOR UPDATE SKIP LOCKED`): concurrent senders take
disjoint batches without waiting on each other. SQLite has one writer at a time
(the write transaction takes the database's lock), so there the claim needs no
row locks. The sender delivers outside any transaction and records the outcome
with the claim it was given: if the lease ran out and another sender claimed
the alert since, the outcome is refused (`LostClaim`) and the other sender's
stands.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Select, delete, func, or_, select

from wahealth.domain.records import (
    DEFAULT_ALERT_EVENTS,
    AlertFormat,
    AlertState,
    Claim,
    Delivery,
    OutboxItem,
    Subscription,
)
from wahealth.storage._session import Factory, insert_for, reading, rowcount, writing
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import (
    Conflict,
    LostClaim,
    UnknownAlert,
    UnknownSpace,
    UnknownSubscription,
)
from wahealth.storage.models import AlertSubscriptionRow, OutboxRow, SpaceRow
from wahealth.storage.prune import DEFAULT_BATCH, prune_older_than, table_of

UNNAMED_SENDER: Final = "unnamed"
"""`claim`'s default sender name, for callers that are the only sender."""


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""`update_subscription`'s default: leave this field as it is (None is a real secret value)."""


def subscription_of(row: AlertSubscriptionRow) -> Subscription:
    return Subscription(
        row.id,
        row.space_id,
        row.url,
        row.secret_encrypted,
        tuple(row.on_events),
        AlertFormat(row.format),
        row.created_at,
        row.disabled_at,
    )


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        row.id,
        row.subscription_id,
        row.transition_id,
        row.event,
        row.payload,
        AlertState(row.state),
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        row.created_at,
        row.delivered_at,
        row.claimed_by,
        row.claimed_until,
    )


def _due(now: datetime, limit: int) -> Select[OutboxRow, AlertSubscriptionRow]:
    return (
        select(OutboxRow, AlertSubscriptionRow)
        .join(AlertSubscriptionRow, AlertSubscriptionRow.id == OutboxRow.subscription_id)
        .where(
            OutboxRow.state == AlertState.PENDING.value,
            OutboxRow.next_attempt_at <= now,
            # Unclaimed, or its claim's lease has run out (that sender died or stalled).
            or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= now),
            AlertSubscriptionRow.disabled_at.is_(None),
        )
        .order_by(OutboxRow.next_attempt_at, OutboxRow.created_at, OutboxRow.id)
        .limit(limit)
    )


class OutboxRepository:
    """Subscriptions per space, and the alert outbox's life cycle."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def prune_alerts(
        self, state: AlertState, older_than: datetime, *, batch: int = DEFAULT_BATCH
    ) -> int:
        """Delete delivered or dead alerts (folded flap groups included) created before a time."""
        if state is AlertState.PENDING:
            raise ValueError("pending alerts are never pruned")
        return await prune_older_than(
            self._sessions,
            table_of(OutboxRow.id),
            "created_at",
            older_than,
            where=OutboxRow.state == state.value,
            batch=batch,
        )

    async def add_subscription(
        self,
        space_id: str,
        url: str,
        *,
        on_events: Iterable[str] = DEFAULT_ALERT_EVENTS,
        format: AlertFormat | str = AlertFormat.JSON,
        secret_encrypted: str | None = None,
    ) -> Subscription:
        """Subscribe a webhook URL to a space's transitions; Conflict if already subscribed."""
        events = tuple(dict.fromkeys(on_events))
        if not events:
            raise ValueError("on_events must name at least one event")
        kind = AlertFormat(format)
        async with writing(self._sessions) as session:
            if await session.get(SpaceRow, space_id) is None:
                raise UnknownSpace(space_id)
            insert = insert_for(session)
            result = await session.execute(
                insert(AlertSubscriptionRow)
                .values(
                    space_id=space_id,
                    url=url,
                    secret_encrypted=secret_encrypted,
                    on_events=list(events),
                    format=kind.value,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(
                    index_elements=[AlertSubscriptionRow.space_id, AlertSubscriptionRow.url]
                )
            )
            if rowcount(result) != 1:
                raise Conflict(f"{url!r} is already subscribed to space {space_id!r}")
            row = (
                await session.execute(
                    select(AlertSubscriptionRow).where(
                        AlertSubscriptionRow.space_id == space_id, AlertSubscriptionRow.url == url
                    )
                )
            ).scalar_one()
            return subscription_of(row)

    async def get_subscription(self, subscription_id: int) -> Subscription | None:
        async with reading(self._sessions) as session:
            row = await session.get(AlertSubscriptionRow, subscription_id)
            return None if row is None else subscription_of(row)

    async def list_subscriptions(
        self, space_id: str | None = None, *, include_disabled: bool = False
    ) -> list[Subscription]:
        query = select(AlertSubscriptionRow).order_by(AlertSubscriptionRow.id)
        if space_id is not None:
            query = query.where(AlertSubscriptionRow.space_id == space_id)
        if not include_disabled:
            query = query.where(AlertSubscriptionRow.disabled_at.is_(None))
        async with reading(self._sessions) as session:
            return [subscription_of(row) for row in await session.scalars(query)]

    async def remove_subscription(self, subscription_id: int) -> bool:
        """Delete a subscription and its undelivered alerts; False if there was none."""
        async with writing(self._sessions) as session:
            await session.execute(
                delete(OutboxRow).where(OutboxRow.subscription_id == subscription_id)
            )
            result = await session.execute(
                delete(AlertSubscriptionRow).where(AlertSubscriptionRow.id == subscription_id)
            )
            return rowcount(result) == 1

    async def update_subscription(
        self,
        subscription_id: int,
        *,
        secret_encrypted: str | Literal[_Keep.KEEP] | None = KEEP,
        on_events: Iterable[str] | Literal[_Keep.KEEP] = KEEP,
        format: AlertFormat | str | Literal[_Keep.KEEP] = KEEP,
    ) -> Subscription:
        """Change a subscription in place, keeping its id, its pause and all its alerts.

        Pending alerts need no rewrite: the sender renders and signs each one at
        delivery time with the subscription as it is then, so they go out with
        the new secret and format. They were planned for the old events and are
        still delivered; the new events apply to transitions recorded from now on.
        """
        values: dict[str, Any] = {}
        if secret_encrypted is not KEEP:
            values["secret_encrypted"] = secret_encrypted
        if on_events is not KEEP:
            events = list(dict.fromkeys(on_events))
            if not events:
                raise ValueError("on_events must name at least one event")
            values["on_events"] = events
        if format is not KEEP:
            values["format"] = AlertFormat(format).value
        async with writing(self._sessions) as session:
            row = await session.get(AlertSubscriptionRow, subscription_id, with_for_update=True)
            if row is None:
                raise UnknownSubscription(subscription_id)
            for name, value in values.items():
                setattr(row, name, value)
            return subscription_of(row)

    async def set_subscription_disabled(self, subscription_id: int, disabled: bool) -> Subscription:
        """Pause or resume a subscription; its pending alerts wait while it is paused."""
        async with writing(self._sessions) as session:
            row = await session.get(AlertSubscriptionRow, subscription_id, with_for_update=True)
            if row is None:
                raise UnknownSubscription(subscription_id)
            if disabled and row.disabled_at is None:
                row.disabled_at = utcnow()
            elif not disabled:
                row.disabled_at = None
            return subscription_of(row)

    async def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Pending alerts whose time has come, oldest first, without claiming them."""
        async with reading(self._sessions) as session:
            rows = await session.execute(_due(now, limit))
            return [Delivery(_item(item), subscription_of(sub)) for item, sub in rows]

    async def claim(
        self,
        now: datetime,
        limit: int = 100,
        lease: timedelta = timedelta(seconds=60),
        *,
        by: str = UNNAMED_SENDER,
    ) -> list[Delivery]:
        """Take due alerts for sender `by`: count an attempt and hide them for `lease`.

        Each returned item carries its claim (`item.claim`), which its outcome is
        recorded with. Rows another sender is claiming at this moment are skipped,
        not waited for. If the claim is abandoned the alert is due again when the
        lease ends, which is also its `next_attempt_at` meanwhile.
        """
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        until = now + lease
        async with writing(self._sessions) as session:
            # FOR UPDATE ... SKIP LOCKED on PostgreSQL; SQLAlchemy leaves it out on SQLite.
            query = _due(now, limit).with_for_update(of=OutboxRow, skip_locked=True)
            rows = (await session.execute(query)).all()
            for item, _ in rows:
                item.attempts += 1
                item.next_attempt_at = until
                item.claimed_by = by
                item.claimed_until = until
            return [Delivery(_item(item), subscription_of(sub)) for item, sub in rows]

    async def mark_delivered(
        self, alert_id: str, at: datetime, *, held: Claim | None = None
    ) -> OutboxItem:
        """Record the alert as delivered; with `held`, only if that claim is still current."""
        return await self._update(
            alert_id, held, state=AlertState.DELIVERED, delivered_at=at, last_error=None
        )

    async def mark_failed(
        self, alert_id: str, error: str, next_attempt_at: datetime, *, held: Claim | None = None
    ) -> OutboxItem:
        """Keep the alert pending and try again at `next_attempt_at` (`held`: as above)."""
        return await self._update(
            alert_id,
            held,
            state=AlertState.PENDING,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )

    async def mark_dead(
        self, alert_id: str, error: str, *, held: Claim | None = None
    ) -> OutboxItem:
        """Give up on the alert; `retry_dead` brings it back (`held`: as above)."""
        return await self._update(alert_id, held, state=AlertState.DEAD, last_error=error)

    async def retry_dead(self, alert_id: str, now: datetime | None = None) -> OutboxItem:
        """Make a dead alert pending again, due now, with a fresh attempt count."""
        async with writing(self._sessions) as session:
            row = await session.get(OutboxRow, alert_id, with_for_update=True)
            if row is None:
                raise UnknownAlert(alert_id)
            if row.state != AlertState.DEAD.value:
                raise Conflict(f"alert {alert_id!r} is {row.state}, not dead")
            row.state = AlertState.PENDING.value
            row.attempts = 0
            row.next_attempt_at = now or utcnow()
            row.claimed_by = row.claimed_until = None
            return _item(row)

    async def get(self, alert_id: str) -> OutboxItem | None:
        async with reading(self._sessions) as session:
            row = await session.get(OutboxRow, alert_id)
            return None if row is None else _item(row)

    async def list_alerts(
        self,
        state: AlertState | str | None = None,
        *,
        space_id: str | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        """Alerts, newest first, optionally of one state or one space."""
        query = select(OutboxRow).order_by(OutboxRow.created_at.desc(), OutboxRow.id).limit(limit)
        if state is not None:
            query = query.where(OutboxRow.state == AlertState(state).value)
        if space_id is not None:
            query = query.join(
                AlertSubscriptionRow, AlertSubscriptionRow.id == OutboxRow.subscription_id
            ).where(AlertSubscriptionRow.space_id == space_id)
        async with reading(self._sessions) as session:
            return [_item(row) for row in await session.scalars(query)]

    async def _update(self, alert_id: str, held: Claim | None, **values: Any) -> OutboxItem:
        """Record an outcome and release the claim; with `held`, only if it is the current one.

        The claim that was taken after `held`'s lease ran out (by another sender, or
        by this one again) ends later, so it never matches: its outcome stands.
        """
        async with writing(self._sessions) as session:
            row = await session.get(OutboxRow, alert_id, with_for_update=True)
            if row is None:
                raise UnknownAlert(alert_id)
            if held is not None and (row.claimed_by, row.claimed_until) != (held.by, held.until):
                raise LostClaim(alert_id)
            for name, value in values.items():
                setattr(row, name, value.value if isinstance(value, enum.Enum) else value)
            row.claimed_by = row.claimed_until = None
            return _item(row)

    async def count_by_state(self) -> dict[str, int]:
        """How many alerts are in each delivery state (metrics read this at scrape time)."""
        query = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
        return {str(state): int(count) for state, count in rows}
