"""What the dashboard's fleet and node pages read: every node of an account, paged in SQL.

A fleet is the union of an account's WABAs, phone numbers and templates, each with its
last known health (`node_health`, joined by primary key). Filtering, searching, sorting
and paging happen in the database (`LIMIT`/`OFFSET`), so a page costs one bounded query
however many nodes there are; the counts per status come from one grouped query over
the same filters. The account is part of every query: another account's nodes are not
found, never merely hidden.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)

from wahealth.domain.model import NodeKind
from wahealth.domain.nodes import normalize_phone_number
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

UNKNOWN = "UNKNOWN"  # a node never fetched successfully
STATUSES = ("BLOCKED", "LIMITED", UNKNOWN, "AVAILABLE")  # worst first
MAX_UPTIME_TRANSITIONS = 50_000  # per node and window: beyond it the oldest are left out


class FleetSort(enum.StrEnum):
    """What a fleet page can be ordered by."""

    STATUS = "status"
    NAME = "name"
    KIND = "kind"
    AGE = "age"
    ID = "id"


@dataclass(frozen=True, slots=True)
class FleetNode:
    """One node as the fleet page lists it."""

    node_id: str
    kind: str
    space_id: str
    waba_id: str
    waba_name: str | None
    display_phone_number: str | None
    verified_name: str | None
    template_name: str | None
    template_language: str | None
    quality: str | None
    limit_tier: str | None
    template_status: str | None
    status: str  # AVAILABLE, LIMITED, BLOCKED or UNKNOWN
    error_codes: tuple[str, ...]
    fetched_at: datetime | None


@dataclass(frozen=True, slots=True)
class FleetPage:
    """A page of nodes, how many match in all, and how many of those are in each status."""

    nodes: list[FleetNode]
    total: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """When a node's status changed, from what to what (for uptime)."""

    occurred_at: datetime
    before: str | None
    after: str


def _none() -> ColumnElement[Any]:
    # Typed, so that PostgreSQL can unite it with the other branches' text columns.
    return literal(None, String)


def _phones() -> Select[Any]:
    return select(
        PhoneNumberRow.id.label("node_id"),
        literal(NodeKind.PHONE_NUMBER.value, String).label("kind"),
        WabaRow.space_id.label("space_id"),
        WabaRow.id.label("waba_id"),
        WabaRow.name.label("waba_name"),
        PhoneNumberRow.display_phone_number.label("display_phone_number"),
        PhoneNumberRow.verified_name.label("verified_name"),
        _none().label("template_name"),
        _none().label("template_language"),
        PhoneNumberRow.quality_rating.label("quality"),
        _none().label("limit_tier"),
        _none().label("template_status"),
        PhoneNumberRow.display_phone_number.label("label"),
        PhoneNumberRow.digits.label("digits"),
    ).join(WabaRow, WabaRow.id == PhoneNumberRow.waba_id)


def _templates() -> Select[Any]:
    return select(
        TemplateRow.id,
        literal(NodeKind.MESSAGE_TEMPLATE.value, String),
        WabaRow.space_id,
        WabaRow.id,
        WabaRow.name,
        _none(),
        _none(),
        TemplateRow.name,
        TemplateRow.language,
        _none(),
        _none(),
        TemplateRow.status,
        TemplateRow.name + " " + TemplateRow.language,
        _none(),
    ).join(WabaRow, WabaRow.id == TemplateRow.waba_id)


def _wabas() -> Select[Any]:
    return select(
        WabaRow.id,
        literal(NodeKind.WABA.value, String),
        WabaRow.space_id,
        WabaRow.id,
        WabaRow.name,
        _none(),
        _none(),
        _none(),
        _none(),
        _none(),
        _none(),
        _none(),
        func.coalesce(WabaRow.name, WabaRow.id),
        _none(),
    )


def _account_spaces(account: str) -> Select[Any]:
    return (
        select(SpaceRow.id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .where(AccountRow.name == account)
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class FleetView:
    """The fleet and node pages' reads over the catalog, node health and transitions."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    def _nodes(
        self,
        account: str,
        *,
        space_id: str | None = None,
        kind: str | None = None,
        node_id: str | None = None,
    ) -> Any:
        """The account's nodes (one space's, one kind's, one id) as a subquery."""
        spaces = _account_spaces(account)
        branches = {
            NodeKind.PHONE_NUMBER.value: (_phones(), PhoneNumberRow.id),
            NodeKind.MESSAGE_TEMPLATE.value: (_templates(), TemplateRow.id),
            NodeKind.WABA.value: (_wabas(), WabaRow.id),
        }
        parts = []
        for branch_kind, (branch, id_column) in branches.items():
            if kind is not None and kind != branch_kind:
                continue
            # Each branch is filtered itself, so the database can use its own indexes.
            branch = branch.where(WabaRow.space_id.in_(spaces.scalar_subquery()))
            if space_id is not None:
                branch = branch.where(WabaRow.space_id == space_id)
            if node_id is not None:
                branch = branch.where(id_column == node_id)
            parts.append(branch)
        if not parts:  # an unknown kind: nothing matches
            parts.append(_wabas().where(literal(False)))
        return union_all(*parts).subquery("fleet")

    async def page(
        self,
        account: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        space_id: str | None = None,
        search: str | None = None,
        sort: FleetSort | str = FleetSort.STATUS,
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> FleetPage:
        """One page of the account's nodes matching the filters, and the counts per status.

        `status` is one of `STATUSES`; `search` matches a phone number (any punctuation),
        a name (number's verified name, template name, WABA name) or an id. The status
        sort puts the worst first; `descending` reverses any order.
        """
        nodes = self._nodes(account, space_id=space_id, kind=kind)
        status_of = func.coalesce(NodeHealthRow.can_send_message, UNKNOWN)
        conditions: list[ColumnElement[bool]] = []
        if search and search.strip():
            conditions.append(_matches(nodes, search.strip()))
        joined = nodes.outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)

        counting = select(status_of, func.count()).select_from(joined).group_by(status_of)
        if conditions:
            counting = counting.where(*conditions)
        listing = select(
            nodes,
            NodeHealthRow.can_send_message,
            NodeHealthRow.error_codes,
            NodeHealthRow.fetched_at,
        ).select_from(joined)
        if status is not None:
            conditions.append(status_of == status)
        if conditions:
            listing = listing.where(*conditions)
        listing = listing.order_by(*_order(nodes, FleetSort(sort), descending))
        async with reading(self._sessions) as session:
            counts = {str(s): int(n) for s, n in (await session.execute(counting)).all()}
            rows = (await session.execute(listing.offset(offset).limit(limit))).all()
        total = counts.get(status, 0) if status is not None else sum(counts.values())
        return FleetPage([_fleet_node(row) for row in rows], total, counts)

    async def node(self, account: str, node_id: str) -> FleetNode | None:
        """One node of the account, with its names and last status; None if not the account's."""
        nodes = self._nodes(account, node_id=node_id)
        query = (
            select(
                nodes,
                NodeHealthRow.can_send_message,
                NodeHealthRow.error_codes,
                NodeHealthRow.fetched_at,
            )
            .select_from(nodes)
            .outerjoin(NodeHealthRow, NodeHealthRow.node_id == nodes.c.node_id)
            .limit(1)
        )
        async with reading(self._sessions) as session:
            row = (await session.execute(query)).first()
        return None if row is None else _fleet_node(row)

    async def status_changes(
        self, node_id: str, since: datetime
    ) -> tuple[str | None, list[StatusChange]]:
        """The node's status just before `since` (None if unknown) and its changes after it,
        oldest first."""
        prior = (
            select(TransitionRow.after)
            .where(TransitionRow.node_id == node_id, TransitionRow.occurred_at < since)
            .order_by(TransitionRow.occurred_at.desc(), TransitionRow.id.desc())
            .limit(1)
        )
        newest = (
            select(TransitionRow.occurred_at, TransitionRow.before, TransitionRow.after)
            .where(TransitionRow.node_id == node_id, TransitionRow.occurred_at >= since)
            .order_by(TransitionRow.occurred_at.desc(), TransitionRow.id.desc())
            .limit(MAX_UPTIME_TRANSITIONS)
        )
        async with reading(self._sessions) as session:
            before: str | None = await session.scalar(prior)
            rows = (await session.execute(newest)).all()
        changes = [StatusChange(at, was, now) for at, was, now in reversed(rows)]
        if len(rows) == MAX_UPTIME_TRANSITIONS:
            before = changes[0].before  # the oldest were left out: start from what we have
        return before, changes


def _matches(nodes: Any, search: str) -> ColumnElement[bool]:
    pattern = f"%{_escape_like(search)}%"
    found: list[ColumnElement[bool]] = [
        nodes.c.node_id == search,
        nodes.c.label.ilike(pattern, escape="\\"),
        nodes.c.verified_name.ilike(pattern, escape="\\"),
        nodes.c.waba_name.ilike(pattern, escape="\\"),
    ]
    digits = normalize_phone_number(search)
    if digits and len(digits) >= 3 and not any(ch.isalpha() for ch in search):
        found.append(nodes.c.digits.like(f"%{digits}%"))
        found.append(nodes.c.node_id.like(f"{digits}%"))
    return or_(*found)


def _order(nodes: Any, sort: FleetSort, descending: bool) -> list[Any]:
    severity = case(
        {"BLOCKED": 0, "LIMITED": 1, "AVAILABLE": 3},
        value=NodeHealthRow.can_send_message,
        else_=2,
    )
    kinds = case(
        {NodeKind.PHONE_NUMBER.value: 0, NodeKind.MESSAGE_TEMPLATE.value: 1},
        value=nodes.c.kind,
        else_=2,
    )
    keys: dict[FleetSort, list[Any]] = {
        FleetSort.STATUS: [severity, nodes.c.label],
        FleetSort.NAME: [nodes.c.label],
        FleetSort.KIND: [kinds, nodes.c.label],
        # Oldest data first; never fetched before everything.
        FleetSort.AGE: [
            case((NodeHealthRow.fetched_at.is_(None), 0), else_=1),
            NodeHealthRow.fetched_at,
        ],
        FleetSort.ID: [],
    }
    columns = [*keys[sort], nodes.c.node_id]
    return [column.desc() if descending else column.asc() for column in columns]


def _fleet_node(row: Sequence[Any]) -> FleetNode:
    m = row._mapping  # type: ignore[attr-defined]
    return FleetNode(
        node_id=m["node_id"],
        kind=m["kind"],
        space_id=m["space_id"],
        waba_id=m["waba_id"],
        waba_name=m["waba_name"],
        display_phone_number=m["display_phone_number"],
        verified_name=m["verified_name"],
        template_name=m["template_name"],
        template_language=m["template_language"],
        quality=m["quality"],
        limit_tier=m["limit_tier"],
        template_status=m["template_status"],
        status=m["can_send_message"] or UNKNOWN,
        error_codes=tuple(m["error_codes"] or ()),
        fetched_at=m["fetched_at"],
    )
