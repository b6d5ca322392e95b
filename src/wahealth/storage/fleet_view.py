"""What the dashboard's fleet and node pages read: every node of an account, paged in SQL.

A fleet is the union of an account's WABAs, phone numbers and templates, each with its
last known health (`node_health`, joined by primary key). Filtering, searching, sorting
and paging happen in the database (`LIMIT`/`OFFSET` on indexed orders, see
`fleet_query`), so a page reads a few index ranges however many nodes there are; the
counts per status come from one grouped pass over the same filters, reused for a few
seconds while someone pages through them. The account is part of every query: another
account's nodes are not found, never merely hidden.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select

from wahealth.core.directory import TtlCache
from wahealth.domain.model import NodeKind
from wahealth.domain.properties import fields_of
from wahealth.storage._session import Factory, reading
from wahealth.storage.fleet_query import (
    UNKNOWN,
    Health,
    Order,
    StatusFilter,
    counting,
    kinds_of,
    listing,
)
from wahealth.storage.models import PhoneNumberRow, TemplateRow, TransitionRow

STATUSES = ("BLOCKED", "LIMITED", UNKNOWN, "AVAILABLE")  # worst first
MAX_UPTIME_TRANSITIONS = 50_000  # per node and window: beyond it the oldest are left out
# A status held by at most this many matching nodes is read through the status index;
# a more common one in name order (the first rows of that order are likely to have it).
SPARSE_STATUS = 2_000
# Up to this many matching nodes, sorting them all is cheap: the planner may start from
# the account's spaces; beyond it, every slice is read in the order of an index.
SMALL_FLEET = 5_000
# Counting per status is the one read of every matching node; paging through the same
# filters within this time reuses the counts (the rows themselves are always read anew).
COUNTS_TTL_SECONDS = 5.0
COUNTS_CACHED = 1_000


_KEPT: dict[str, type[PhoneNumberRow] | type[TemplateRow]] = {
    NodeKind.PHONE_NUMBER.value: PhoneNumberRow,
    NodeKind.MESSAGE_TEMPLATE.value: TemplateRow,
}
_SHOWN_AS_NAME = frozenset({"display_phone_number", "verified_name"})


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
    meta_status: str | None
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


@dataclass(frozen=True, slots=True)
class Part:
    """One slice of a page: rows of one health class, in one order, from `offset`."""

    health: StatusFilter
    order: Order
    offset: int
    limit: int


def plan(
    sort: FleetSort,
    descending: bool,
    status: str | None,
    counts: Mapping[str, int],
    offset: int,
    limit: int,
) -> list[Part]:
    """The slices a page is made of, from the counts per status.

    Sorting by status (or by age, where never-fetched nodes come first) is sorting by a
    column of another table than the names; so the page is cut into one slice per status
    (per fetched-or-not for age), each ordered on its own indexes. A status held by few
    nodes is read through the status index, a common one in name order.
    """

    def health(of: str) -> StatusFilter:
        if of == UNKNOWN:
            return StatusFilter(Health.UNKNOWN)
        return StatusFilter(status=of, sparse=counts.get(of, 0) <= SPARSE_STATUS)

    if sort is FleetSort.STATUS:
        groups = [
            (health(s), Order.NAME, counts.get(s, 0)) for s in STATUSES if status in (None, s)
        ]
    elif sort is FleetSort.AGE:
        known = sum(n for s, n in counts.items() if s != UNKNOWN and status in (None, s))
        unknown = counts.get(UNKNOWN, 0) if status in (None, UNKNOWN) else 0
        fetched = health(status) if status not in (None, UNKNOWN) else StatusFilter(Health.KNOWN)
        groups = [(StatusFilter(Health.UNKNOWN), Order.ID, unknown), (fetched, Order.AGE, known)]
    else:
        only = health(status) if status is not None else StatusFilter()
        order = {FleetSort.NAME: Order.NAME, FleetSort.KIND: Order.KIND, FleetSort.ID: Order.ID}
        return [Part(only, order[sort], offset, limit)]
    if descending:
        groups.reverse()
    parts = []
    for filter_, order_, size in groups:
        if limit <= 0:
            break
        if offset >= size:
            offset -= size
            continue
        take = min(limit, size - offset)
        parts.append(Part(filter_, order_, offset, take))
        offset, limit = 0, limit - take
    return parts


class FleetView:
    """The fleet and node pages' reads over the catalog, node health and transitions."""

    def __init__(
        self, sessions: Factory, *, counts_ttl_seconds: float = COUNTS_TTL_SECONDS
    ) -> None:
        self._sessions = sessions
        self._counts: TtlCache[tuple[str | None, ...], dict[str, int]] | None = (
            TtlCache(counts_ttl_seconds, max_entries=COUNTS_CACHED)
            if counts_ttl_seconds > 0
            else None
        )

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

        `status` is one of `STATUSES`; `kind` a `NodeKind` value; `search` matches a phone
        number (any punctuation), a name (number's verified name, template name, WABA
        name) or an id. The status sort puts the worst first, the age sort the oldest data
        first (never fetched before all); `descending` reverses any order.
        """
        search = search.strip() if search and search.strip() else None
        if not kinds_of(kind):
            return FleetPage([], 0, {})

        async def count() -> dict[str, int]:
            async with reading(self._sessions) as session:
                # One grouped pass, but on SQLite without a search (see `counting`).
                grouped = search is not None or session.get_bind().dialect.name != "sqlite"
                query = counting(
                    account, kind=kind, space_id=space_id, search=search, grouped=grouped
                )
                assert query is not None  # a kind matches
                rows = (await session.execute(query)).all()
            counts: dict[str, int] = {}
            for of, nodes in rows:
                name = UNKNOWN if of is None else str(of)
                counts[name] = counts.get(name, 0) + int(nodes)
            if not grouped:  # status None counted every node, the fetched ones once more
                counts[UNKNOWN] = counts.get(UNKNOWN, 0) - sum(
                    n for of, n in counts.items() if of != UNKNOWN
                )
            return {of: n for of, n in counts.items() if n}

        key = (account, kind, space_id, search)
        counts = await (self._counts.get(key, count) if self._counts is not None else count())
        async with reading(self._sessions) as session:
            rows: list[Any] = []
            for part in plan(FleetSort(sort), descending, status, counts, offset, limit):
                query = listing(
                    account,
                    kind=kind,
                    space_id=space_id,
                    search=search,
                    health=part.health,
                    order=part.order,
                    descending=descending,
                    offset=part.offset,
                    limit=part.limit,
                    by_space=sum(counts.values()) <= SMALL_FLEET,
                )
                if query is not None:
                    rows += (await session.execute(query)).all()
        total = counts.get(status, 0) if status is not None else sum(counts.values())
        return FleetPage([_fleet_node(row) for row in rows], total, counts)

    async def node(self, account: str, node_id: str) -> FleetNode | None:
        """One node of the account, with its names and last status; None if not the account's."""
        query = listing(
            account,
            kind=None,
            space_id=None,
            search=None,
            health=StatusFilter(),
            order=Order.ID,
            descending=False,
            offset=0,
            limit=1,
            node_id=node_id,
        )
        assert query is not None  # every kind is asked
        async with reading(self._sessions) as session:
            row = (await session.execute(query)).first()
        return None if row is None else _fleet_node(row)

    async def kept_fields(self, node_id: str, kind: str) -> dict[str, str | None]:
        """The catalog fields kept for a number or template (Meta's names and values)."""
        model = _KEPT.get(kind)
        if model is None:
            return {}
        names = [name for name in fields_of(kind) if name not in _SHOWN_AS_NAME]
        query = select(*(model.__table__.c[name] for name in names)).where(
            model.__table__.c.id == node_id
        )
        async with reading(self._sessions) as session:
            row = (await session.execute(query)).first()
        return {} if row is None else dict(zip(names, row, strict=True))

    async def status_changes(
        self, node_id: str, since: datetime
    ) -> tuple[str | None, list[StatusChange]]:
        """The node's status just before `since` (None if unknown) and its changes after it,
        oldest first."""
        prior = (
            select(TransitionRow.after)
            .where(
                TransitionRow.node_id == node_id,
                TransitionRow.field.is_(None),  # changes of health, not of a kept field
                TransitionRow.occurred_at < since,
            )
            .order_by(TransitionRow.occurred_at.desc(), TransitionRow.id.desc())
            .limit(1)
        )
        newest = (
            select(TransitionRow.occurred_at, TransitionRow.before, TransitionRow.after)
            .where(
                TransitionRow.node_id == node_id,
                TransitionRow.field.is_(None),
                TransitionRow.occurred_at >= since,
            )
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


def _fleet_node(row: Row[Any]) -> FleetNode:
    m = row._mapping
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
        meta_status=m["meta_status"],
        status=m["status"] or UNKNOWN,
        error_codes=tuple(m["error_codes"] or ()),
        fetched_at=m["fetched_at"],
    )
