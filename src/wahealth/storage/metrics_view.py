"""The fleet as /metrics reads it at scrape time: each node's status, numbers' quality and
limits, counts, and the oldest pending alert.

Nodes are those the fleet refresh keeps fresh (catalog nodes of enabled accounts). Big
reads come a page at a time, by primary key: each page is a short read transaction and
an index range scan, so a scrape of 100,000 nodes never holds them all, nor a transaction
open while the answer is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, func, literal, select

from wahealth.domain.model import NodeKind
from wahealth.domain.records import AlertState
from wahealth.storage._session import Factory, reading
from wahealth.storage.catalog import catalog_nodes
from wahealth.storage.models import (
    AccountRow,
    NodeHealthRow,
    OutboxRow,
    PhoneNumberRow,
    SpaceRow,
    TemplateRow,
    WabaRow,
)

PAGE = 5_000


class NodeStatus(NamedTuple):
    space_id: str
    node_id: str
    kind: str
    status: str | None  # None: no report yet


class PhoneNumberLevels(NamedTuple):
    space_id: str
    node_id: str
    quality_rating: str | None
    messaging_limit_tier: str | None


class StatusCount(NamedTuple):
    space_id: str
    kind: str
    status: str | None
    nodes: int


def _enabled(query: Any, space_id: Any) -> Any:
    return (
        query.join(SpaceRow, SpaceRow.id == space_id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .where(AccountRow.disabled_at.is_(None))
    )


class MetricsView:
    """Read-only views of storage for the metrics collector."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def node_statuses(self, page: int = PAGE) -> AsyncIterator[list[NodeStatus]]:
        """Every monitored node with its stored status, a page at a time (WABAs, numbers,
        templates; each by id)."""
        for model, kind in (
            (WabaRow, NodeKind.WABA),
            (PhoneNumberRow, NodeKind.PHONE_NUMBER),
            (TemplateRow, NodeKind.MESSAGE_TEMPLATE),
        ):
            space = WabaRow.space_id
            query: Any = select(
                space, model.id, literal(kind.value, String), NodeHealthRow.can_send_message
            )
            if model is PhoneNumberRow or model is TemplateRow:
                query = query.join(WabaRow, WabaRow.id == model.waba_id)
            query = _enabled(query, space).outerjoin(
                NodeHealthRow, NodeHealthRow.node_id == model.id
            )
            async for rows in self._pages(query, model.id, page):
                yield [NodeStatus(*row) for row in rows]

    async def phone_number_levels(self, page: int = PAGE) -> AsyncIterator[list[PhoneNumberLevels]]:
        """Every monitored phone number's quality rating and messaging limit tier, as kept."""
        query = _enabled(
            select(
                WabaRow.space_id,
                PhoneNumberRow.id,
                PhoneNumberRow.quality_rating,
                PhoneNumberRow.messaging_limit_tier,
            ).join(WabaRow, WabaRow.id == PhoneNumberRow.waba_id),
            WabaRow.space_id,
        )
        async for rows in self._pages(query, PhoneNumberRow.id, page):
            yield [PhoneNumberLevels(*row) for row in rows]

    async def _pages(self, query: Any, key: Any, page: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        after: str | None = None
        while True:
            paged = query if after is None else query.where(key > after)
            async with reading(self._sessions) as session:
                rows = [
                    tuple(row) for row in await session.execute(paged.order_by(key).limit(page))
                ]
            if rows:
                yield rows
            if len(rows) < page:
                return
            after = rows[-1][1]

    async def count_nodes(self) -> int:
        """How many nodes are monitored."""
        nodes = catalog_nodes().subquery()
        query = _enabled(select(func.count()).select_from(nodes), nodes.c.space_id)
        async with reading(self._sessions) as session:
            return int(await session.scalar(query) or 0)

    async def status_counts(self) -> list[StatusCount]:
        """Monitored nodes by space, kind and stored status (None: no report yet)."""
        nodes = catalog_nodes().subquery()
        status = NodeHealthRow.can_send_message
        query = (
            _enabled(
                select(nodes.c.space_id, nodes.c.kind, status, func.count()).select_from(nodes),
                nodes.c.space_id,
            )
            .outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)
            .group_by(nodes.c.space_id, nodes.c.kind, status)
            .order_by(nodes.c.space_id, nodes.c.kind, status)
        )
        async with reading(self._sessions) as session:
            return [StatusCount(*row) for row in await session.execute(query)]

    async def oldest_pending_alert_at(self) -> datetime | None:
        """When the oldest alert still waiting for delivery was queued (None: none waits)."""
        query = select(func.min(OutboxRow.created_at)).where(
            OutboxRow.state == AlertState.PENDING.value
        )
        async with reading(self._sessions) as session:
            found: datetime | None = await session.scalar(query)
            return found

    async def schedule_claims_held(self, now: datetime) -> int:
        """Nodes a refresh round (of any replica) holds a live claim on now."""
        query = select(func.count()).where(NodeHealthRow.claimed_until > now)
        async with reading(self._sessions) as session:
            return int(await session.scalar(query) or 0)

    async def alert_claims_held(self, now: datetime) -> int:
        """Alerts a sender (of any replica) holds a live claim on now."""
        query = select(func.count()).where(
            OutboxRow.state == AlertState.PENDING.value, OutboxRow.claimed_until > now
        )
        async with reading(self._sessions) as session:
            return int(await session.scalar(query) or 0)
