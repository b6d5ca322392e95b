"""What the public views read: nodes of spaces that opted in, by name, and their history.

A space's badges and status page are public only while it opts in (`spaces.badges`,
`spaces.public_status`) and its account is enabled; otherwise nothing is found, exactly
as for a node or space that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, func, literal, select, union_all

from wahealth.domain.model import NodeKind, Status
from wahealth.domain.public import PublicNode, StatusChange
from wahealth.storage._session import Factory, reading
from wahealth.storage.models import (
    AccountRow,
    NodeHealthRow,
    PhoneNumberRow,
    SpaceRow,
    TemplateRow,
    TransitionRow,
    WabaRow,
)

_IN_CHUNK = 500


def _named_nodes(*, wabas: bool) -> Select[Any]:
    """(node_id, kind, space_id, name, order) of every phone number and template (and WABA)."""
    parts = [
        select(
            PhoneNumberRow.id.label("node_id"),
            literal(NodeKind.PHONE_NUMBER.value, String).label("kind"),
            WabaRow.space_id.label("space_id"),
            PhoneNumberRow.display_phone_number.label("name"),
            PhoneNumberRow.verified_name.label("detail"),
            literal(0).label("rank"),
        ).join(WabaRow, WabaRow.id == PhoneNumberRow.waba_id),
        select(
            TemplateRow.id,
            literal(NodeKind.MESSAGE_TEMPLATE.value, String),
            WabaRow.space_id,
            TemplateRow.name,
            TemplateRow.language,
            literal(1),
        ).join(WabaRow, WabaRow.id == TemplateRow.waba_id),
    ]
    if wabas:
        parts.append(
            select(
                WabaRow.id,
                literal(NodeKind.WABA.value, String),
                WabaRow.space_id,
                func.coalesce(WabaRow.name, WabaRow.id),
                literal(None, String),
                literal(2),
            )
        )
    return union_all(*parts).subquery("named_nodes").select()


def _name(name: str, detail: str | None) -> str:
    """`+86 138 0000 0001 (Verified Name)`, `order_update (en)`, or a WABA's name."""
    return f"{name} ({detail})" if detail else name


def _public_node(row: Any) -> PublicNode:
    node_id, kind, name, detail, status, codes = row
    return PublicNode(
        node_id,
        NodeKind(kind),
        _name(name, detail),
        None if status is None else Status.from_wire(status),
        tuple(codes or ()),
    )


def _opted_in(flag: Any) -> ColumnElement[bool]:
    return and_(flag.is_(True), AccountRow.disabled_at.is_(None))


class PublicViews:
    """Read-only lookups for badges and status pages."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def badge_node(self, node_id: str) -> PublicNode | None:
        """The node, if it is in a space that shows badges."""
        nodes = _named_nodes(wabas=True).subquery()
        query = (
            self._named(nodes)
            .join(SpaceRow, SpaceRow.id == nodes.c.space_id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(nodes.c.node_id == node_id, _opted_in(SpaceRow.badges))
            .limit(1)
        )
        async with reading(self._sessions) as session:
            row = (await session.execute(query)).first()
        return None if row is None else _public_node(row)

    async def public_space(self, space_id: str) -> bool:
        """Whether the space shows a public status page."""
        query = (
            select(SpaceRow.id)
            .join(AccountRow, AccountRow.id == SpaceRow.account_id)
            .where(SpaceRow.id == space_id, _opted_in(SpaceRow.public_status))
        )
        async with reading(self._sessions) as session:
            return await session.scalar(query) is not None

    async def space_nodes(
        self, space_id: str, *, offset: int = 0, limit: int = 100
    ) -> tuple[list[PublicNode], int]:
        """A page of the space's phone numbers, then templates, by name; and how many in all."""
        nodes = _named_nodes(wabas=False).subquery()
        query = (
            self._named(nodes)
            .where(nodes.c.space_id == space_id)
            .order_by(nodes.c.rank, nodes.c.name, nodes.c.detail, nodes.c.node_id)
            .offset(offset)
            .limit(limit)
        )
        total = select(func.count()).select_from(nodes).where(nodes.c.space_id == space_id)
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
            count = int(await session.scalar(total) or 0)
        return [_public_node(row) for row in rows], count

    async def space_statuses(self, space_id: str) -> dict[Status | None, int]:
        """How many of the space's phone numbers and templates have each status."""
        nodes = _named_nodes(wabas=False).subquery()
        status = NodeHealthRow.can_send_message
        query = (
            select(status, func.count())
            .select_from(nodes)
            .outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)
            .where(nodes.c.space_id == space_id)
            .group_by(status)
        )
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).all()
        counts: dict[Status | None, int] = {}
        for value, n in rows:
            key = None if value is None else Status.from_wire(value)
            counts[key] = counts.get(key, 0) + n
        return counts

    async def status_changes(
        self, node_ids: Sequence[str], since: datetime
    ) -> dict[str, list[StatusChange]]:
        """Each node's status changes since `since`, after the last one before it, in order."""
        changes: dict[str, list[StatusChange]] = {node_id: [] for node_id in node_ids}
        health = _health_changes()
        async with reading(self._sessions) as session:
            for start in range(0, len(node_ids), _IN_CHUNK):
                chunk = list(node_ids[start : start + _IN_CHUNK])
                latest = (
                    select(
                        TransitionRow.node_id,
                        TransitionRow.occurred_at,
                        TransitionRow.before,
                        TransitionRow.after,
                        func.row_number()
                        .over(
                            partition_by=TransitionRow.node_id,
                            order_by=(TransitionRow.occurred_at.desc(), TransitionRow.id.desc()),
                        )
                        .label("newest"),
                    )
                    .where(health, TransitionRow.node_id.in_(chunk))
                    .where(TransitionRow.occurred_at < since)
                    .subquery()
                )
                prior = select(
                    latest.c.node_id, latest.c.occurred_at, latest.c.before, latest.c.after
                ).where(latest.c.newest == 1)
                for node_id, at, before, after in await session.execute(prior):
                    changes[node_id].append(StatusChange(at, before, after))
                recent = (
                    select(
                        TransitionRow.node_id,
                        TransitionRow.occurred_at,
                        TransitionRow.before,
                        TransitionRow.after,
                    )
                    .where(health, TransitionRow.node_id.in_(chunk))
                    .where(TransitionRow.occurred_at >= since)
                    .order_by(TransitionRow.occurred_at, TransitionRow.id)
                )
                for node_id, at, before, after in await session.execute(recent):
                    changes[node_id].append(StatusChange(at, before, after))
        return changes

    @staticmethod
    def _named(nodes: Any) -> Select[Any]:
        return select(
            nodes.c.node_id,
            nodes.c.kind,
            nodes.c.name,
            nodes.c.detail,
            NodeHealthRow.can_send_message,
            NodeHealthRow.error_codes,
        ).outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)


def _health_changes() -> ColumnElement[bool]:
    """Transitions of the overall status (not of a kept field: quality, limits, statuses)."""
    return TransitionRow.field.is_(None)
