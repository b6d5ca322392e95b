"""The SQL behind the fleet page: one branch per kind of node, each on its own indexes.

A fleet page is a union of the account's phone numbers, templates and WABAs, each left
joined to its stored health. Each branch is filtered, ordered and limited by itself
(`ORDER BY … LIMIT offset + limit` on the branch's own index: numbers by
`(display_phone_number, id)`, templates by `(name, language, id)`, health by
`(can_send_message, node_id)` or `fetched_at`), and only the few rows each hands up are
merged and cut to the page. So the first page costs a few index range scans however
large the fleet; counting per status is the one query that reads every matching node,
and it reads only ids and statuses.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Executable,
    FromClause,
    Select,
    String,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from wahealth.domain.model import NodeKind
from wahealth.domain.nodes import normalize_phone_number
from wahealth.storage.fleet_sql import in_subquery, unindexed
from wahealth.storage.models import (
    AccountRow,
    NodeHealthRow,
    PhoneNumberRow,
    SpaceRow,
    TemplateRow,
    WabaRow,
)

UNKNOWN = "UNKNOWN"  # a node never fetched successfully

# The columns every branch hands up, by name (a union takes its names from its first part).
COLUMNS = (
    "node_id",
    "kind",
    "space_id",
    "waba_id",
    "waba_name",
    "display_phone_number",
    "verified_name",
    "template_name",
    "template_language",
    "quality",
    "limit_tier",
    "meta_status",
)


class Order(enum.StrEnum):
    """How rows are ordered inside one part of a page (see `FleetView.page`)."""

    NAME = "name"
    ID = "id"
    KIND = "kind"
    AGE = "age"


class Health(enum.Enum):
    """Which stored statuses one part of a page reads."""

    ANY = "any"
    UNKNOWN = "unknown"  # never fetched: no stored report
    KNOWN = "known"  # fetched at least once


@dataclass(frozen=True, slots=True)
class StatusFilter:
    """Rows of one status (`status`), or of a `Health` class; `sparse` picks the index."""

    health: Health = Health.ANY
    status: str | None = None
    sparse: bool = False


def _none() -> ColumnElement[Any]:
    # Typed, so that PostgreSQL can unite it with the other branches' text columns.
    return literal(None, String)


@dataclass(frozen=True)
class _Kind:
    kind: str
    rank: int
    node_id: Any
    source: FromClause
    values: dict[str, Any]  # every name in COLUMNS but node_id, kind, space_id, waba_id
    name_keys: tuple[Any, ...]  # the branch's own name order (on an index), without the id
    sort_a: Any
    sort_b: Any
    texts: tuple[Any, ...]  # what a name search matches in the branch's own table
    digits: Any | None  # what a number search matches
    waba_id: Any | None  # the node's WABA, whose name a search matches too (None: a WABA)


def _kinds() -> dict[str, _Kind]:
    none = dict.fromkeys(COLUMNS[4:])
    phone = PhoneNumberRow
    template = TemplateRow
    return {
        NodeKind.PHONE_NUMBER.value: _Kind(
            NodeKind.PHONE_NUMBER.value,
            0,
            phone.id,
            phone.__table__.join(WabaRow, WabaRow.id == phone.waba_id),
            {
                **none,
                "waba_name": WabaRow.name,
                "display_phone_number": phone.display_phone_number,
                "verified_name": phone.verified_name,
                "quality": phone.quality_rating,
                "limit_tier": phone.messaging_limit_tier,
                "meta_status": phone.status,
            },
            (phone.display_phone_number,),
            phone.display_phone_number,
            literal("", String),
            (phone.verified_name,),
            phone.digits,
            phone.waba_id,
        ),
        NodeKind.MESSAGE_TEMPLATE.value: _Kind(
            NodeKind.MESSAGE_TEMPLATE.value,
            1,
            template.id,
            template.__table__.join(WabaRow, WabaRow.id == template.waba_id),
            {
                **none,
                "waba_name": WabaRow.name,
                "template_name": template.name,
                "template_language": template.language,
                "quality": template.quality_score,
                "meta_status": template.status,
            },
            (template.name, template.language),
            template.name,
            template.language,
            (template.name,),
            None,
            template.waba_id,
        ),
        NodeKind.WABA.value: _Kind(
            NodeKind.WABA.value,
            2,
            WabaRow.id,
            WabaRow.__table__,
            {**none, "waba_name": WabaRow.name},
            (func.coalesce(WabaRow.name, WabaRow.id),),
            func.coalesce(WabaRow.name, WabaRow.id),
            literal("", String),
            (WabaRow.name,),
            None,
            None,
        ),
    }


KINDS = _kinds()


def _spaces_of(account: str) -> Any:
    return (
        select(SpaceRow.id)
        .join(AccountRow, AccountRow.id == SpaceRow.account_id)
        .where(AccountRow.name == account)
        .scalar_subquery()
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search(kind: _Kind, search: str) -> ColumnElement[bool]:
    pattern = f"%{_escape_like(search)}%"
    found: list[ColumnElement[bool]] = [kind.node_id == search]
    found += [text.ilike(pattern, escape="\\") for text in kind.texts]
    if kind.waba_id is not None:  # the WABA's name, looked up once (see `fleet_sql`)
        named = select(WabaRow.id).where(WabaRow.name.ilike(pattern, escape="\\"))
        found.append(in_subquery(kind.waba_id, named))
    digits = normalize_phone_number(search)
    if len(digits) >= 3 and not any(ch.isalpha() for ch in search):
        if kind.digits is not None:
            found.append(kind.digits.like(f"%{digits}%"))
        found.append(kind.node_id.like(f"{digits}%"))
    return or_(*found)


def _health_condition(kind: _Kind, health: StatusFilter) -> list[ColumnElement[bool]]:
    h = NodeHealthRow
    if health.status is not None:
        if health.sparse:
            return [h.can_send_message == health.status]  # found through its index
        # Written so that no index on the status applies: the name order's index drives.
        return [func.coalesce(h.can_send_message, UNKNOWN) == health.status]
    if health.health is Health.UNKNOWN:
        # The status looked up node by node, not `IS NULL` after the outer join: from that
        # PostgreSQL would expect no row at all and join every node before sorting; this
        # way it walks the order's index and stops at the page's end (as SQLite does).
        known = aliased(NodeHealthRow)
        status = select(known.can_send_message).where(known.node_id == kind.node_id)
        return [status.scalar_subquery().is_(None)]
    if health.health is Health.KNOWN:
        return [h.can_send_message.is_not(None)]
    return []


def _where(
    kind: _Kind,
    account: str,
    space_id: str | None,
    search: str | None,
    node_id: str | None,
    *,
    by_space: bool = True,
) -> list[ColumnElement[bool]]:
    # `by_space=False` writes the space test so that SQLite applies no index to it: it
    # then walks the order's index and stops at the page's end, instead of sorting every
    # node of the space. PostgreSQL weighs both from its statistics (see `fleet_sql`).
    space = WabaRow.space_id if by_space else unindexed(WabaRow.space_id)
    conditions: list[ColumnElement[bool]] = [space.in_(_spaces_of(account))]
    if space_id is not None:
        conditions.append(space == space_id)
    if node_id is not None:
        conditions.append(kind.node_id == node_id)
    if search:
        conditions.append(_search(kind, search))
    return conditions


def kinds_of(kind: str | None) -> list[_Kind]:
    """The branches a page of `kind` (None: every kind) reads; none for an unknown kind."""
    return list(KINDS.values()) if kind is None else [KINDS[kind]] if kind in KINDS else []


def _branch_keys(kind: _Kind, order: Order) -> list[Any]:
    if order is Order.ID:
        return [kind.node_id]
    if order is Order.AGE:
        return [NodeHealthRow.fetched_at, kind.node_id]
    return [*kind.name_keys, kind.node_id]


def _outer_keys(fleet: Any, order: Order) -> list[Any]:
    if order is Order.ID:
        return [fleet.c.node_id]
    if order is Order.AGE:
        return [fleet.c.fetched_at, fleet.c.node_id]
    names = [fleet.c.sort_a, fleet.c.sort_b, fleet.c.node_id]
    return [fleet.c.kind_rank, *names] if order is Order.KIND else names


def _directed(keys: Sequence[Any], descending: bool) -> list[Any]:
    return [key.desc() if descending else key.asc() for key in keys]


def listing(
    account: str,
    *,
    kind: str | None,
    space_id: str | None,
    search: str | None,
    health: StatusFilter,
    order: Order,
    descending: bool,
    offset: int,
    limit: int,
    node_id: str | None = None,
    by_space: bool = True,
) -> Select[Any] | None:
    """One ordered slice of the account's nodes with their health; None when no kind
    matches. `by_space=False` when many nodes match (see `_where`): each branch is then
    read in the order of its index, up to the slice's end."""
    h = NodeHealthRow
    # Only a slice that may hold never-fetched nodes needs the outer join; an inner one
    # lets the planner start from the health table's indexes.
    outer = health.status is None and health.health is not Health.KNOWN
    branches = []
    for branch in kinds_of(kind):
        columns = [
            branch.node_id.label("node_id"),
            literal(branch.kind, String).label("kind"),
            WabaRow.space_id.label("space_id"),
            WabaRow.id.label("waba_id"),
            *(
                (_none() if branch.values[name] is None else branch.values[name]).label(name)
                for name in COLUMNS[4:]
            ),
            h.can_send_message.label("status"),
            h.error_codes.label("error_codes"),
            h.fetched_at.label("fetched_at"),
            branch.sort_a.label("sort_a"),
            branch.sort_b.label("sort_b"),
            literal(branch.rank).label("kind_rank"),
        ]
        query = (
            select(*columns)
            .select_from(branch.source.join(h, h.node_id == branch.node_id, isouter=outer))
            .where(
                *_where(branch, account, space_id, search, node_id, by_space=by_space),
                *_health_condition(branch, health),
            )
        )
        if by_space:
            # Few nodes match: all of them are read first (`OFFSET 0` keeps the planner
            # from walking the order's index past every node that does not), then sorted.
            found = query.offset(0).subquery()
            keys = _outer_keys(found, order)
            cut = select(found).order_by(*_directed(keys, descending)).limit(offset + limit)
            branches.append(select(cut.subquery()))
            continue
        query = query.order_by(*_directed(_branch_keys(branch, order), descending))
        branches.append(select(query.limit(offset + limit).subquery()))
    if not branches:
        return None
    fleet = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("fleet")
    return (
        select(fleet)
        .order_by(*_directed(_outer_keys(fleet, order), descending))
        .offset(offset)
        .limit(limit)
    )


def counting(
    account: str,
    *,
    kind: str | None,
    space_id: str | None,
    search: str | None,
    grouped: bool = True,
) -> Executable | None:
    """(status, how many) of the account's matching nodes (sum the rows of a status); None
    when no kind matches.

    `grouped`: one outer join of the matching nodes with their health, grouped by status
    (None: never fetched); each node is read once, and a search tested once. Otherwise
    two passes per kind, where status None counts every matching node (known or not) and
    the nodes never fetched are that total less the others: the totals are read from the
    catalog's indexes alone, the statuses by an inner join on the health table's primary
    key (cheaper on SQLite when there is no search to test twice).
    """
    h = NodeHealthRow
    parts: list[Any] = []
    for branch in kinds_of(kind):
        where = _where(branch, account, space_id, search, None)
        if grouped:
            parts.append(
                select(branch.node_id.label("node_id")).select_from(branch.source).where(*where)
            )
            continue
        parts.append(
            select(_none().label("status"), func.count().label("nodes"))
            .select_from(branch.source)
            .where(*where)
        )
        parts.append(
            select(h.can_send_message.label("status"), func.count().label("nodes"))
            .select_from(branch.source.join(h, h.node_id == branch.node_id))
            .where(*where, h.can_send_message.is_not(None))
            .group_by(h.can_send_message)
        )
    if not parts:
        return None
    if not grouped:
        return union_all(*parts)
    matching: Select[Any] | CompoundSelect[Any] = parts[0]
    if len(parts) > 1:
        matching = union_all(*parts)
    nodes = matching.subquery("nodes")
    return (
        select(h.can_send_message.label("status"), func.count().label("nodes"))
        .select_from(nodes.outerjoin(h, h.node_id == nodes.c.node_id))
        .group_by(h.can_send_message)
    )
