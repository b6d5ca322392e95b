"""The fleet page's reads: every filter, sort, direction and page against the same fleet
kept in Python, whichever index each slice is read through."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.storage import fleet_view
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.fleet_view import STATUSES, FleetSort, FleetView
from wahealth.storage.models import NodeHealthRow
from wahealth.storage.tenancy import TenancyRepository

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SEVERITY = {"BLOCKED": 0, "LIMITED": 1, "UNKNOWN": 2, "AVAILABLE": 3}
KIND_RANK = {"PHONE_NUMBER": 0, "MESSAGE_TEMPLATE": 1, "WABA": 2}
CYCLE = ["AVAILABLE", "LIMITED", None, "BLOCKED", "AVAILABLE", "no row", "AVAILABLE"]


@dataclass(frozen=True)
class Node:
    node_id: str
    kind: str
    space_id: str
    sort_a: str
    sort_b: str
    status: str
    fetched_at: datetime | None
    texts: tuple[str, ...]
    waba_name: str | None


async def _fleet(sessions: async_sessionmaker[AsyncSession]) -> list[Node]:
    """acme's nodes in two spaces (as the page should see them); other's nodes besides."""
    tenancy = TenancyRepository(sessions)
    catalog = CatalogRepository(sessions)
    nodes: list[Node] = []
    health: list[dict[str, Any]] = []
    counter = itertools.count()
    for account, spaces in (("acme", ("acme-a", "acme-b")), ("other", ("other-a",))):
        await tenancy.upsert_account(account)
        for s, space in enumerate(spaces):
            await tenancy.upsert_space(space, account)
            for w in range(2):
                waba_id = f"9{len(account)}{s}{w}00"
                name = None if w else f"brand{space[-1]}"
                await tenancy.upsert_waba(waba_id, space, name=name)
                phones = [
                    # Two numbers share a display number: their ids break the tie.
                    PhoneNumberRecord(
                        f"1{len(account)}{s}{w}{n:02d}",
                        f"+62 812 {n % 5:04d}",
                        f"shop{n}",
                    )
                    for n in range(6)
                ]
                templates = [
                    TemplateRecord(f"2{len(account)}{s}{w}{n:02d}", f"promo{n // 2}", lang)
                    for n, lang in zip(range(4), ("en", "id", "en", "zh"), strict=True)
                ]
                await catalog.replace_phone_numbers(waba_id, phones)
                await catalog.replace_templates(waba_id, templates)
                entries = [(waba_id, "WABA", name or waba_id, "", (name or "",))]
                entries += [
                    (p.id, "PHONE_NUMBER", p.display_phone_number, "", (p.verified_name or "",))
                    for p in phones
                ]
                entries += [
                    (t.id, "MESSAGE_TEMPLATE", t.name, t.language, (t.name,)) for t in templates
                ]
                for node_id, kind, sort_a, sort_b, texts in entries:
                    i = next(counter)
                    stored = CYCLE[i % len(CYCLE)]
                    fetched = (
                        T0 + timedelta(minutes=(i * 7) % 31)
                        if stored not in (None, "no row")
                        else None
                    )
                    if stored != "no row":
                        health.append(
                            {
                                "node_id": node_id,
                                "node_kind": kind,
                                "space_id": space,
                                "can_send_message": stored,
                                "payload": None if stored is None else {},
                                "error_codes": ["141006"] if stored == "BLOCKED" else [],
                                "fetched_at": fetched,
                            }
                        )
                    if account == "acme":
                        status = stored if stored in SEVERITY else "UNKNOWN"
                        nodes.append(
                            Node(node_id, kind, space, sort_a, sort_b, status, fetched, texts, name)
                        )
    async with sessions() as session, session.begin():
        await session.execute(insert(NodeHealthRow), health)
    return nodes


def _expected(nodes: list[Node], sort: FleetSort, descending: bool) -> list[str]:
    def name(n: Node) -> tuple[Any, ...]:
        return (n.sort_a, n.sort_b, n.node_id)

    keys = {
        FleetSort.STATUS: lambda n: (SEVERITY[n.status], *name(n)),
        FleetSort.NAME: name,
        FleetSort.KIND: lambda n: (KIND_RANK[n.kind], *name(n)),
        FleetSort.ID: lambda n: (n.node_id,),
        # Never fetched first (among them by id), then the oldest data.
        FleetSort.AGE: lambda n: (
            (1, n.fetched_at, n.node_id) if n.fetched_at else (0, T0, n.node_id)
        ),
    }
    return [n.node_id for n in sorted(nodes, key=keys[sort], reverse=descending)]


@pytest.mark.parametrize(("small_fleet", "sparse_status"), [(10**9, 10**9), (0, 0), (0, 10**9)])
async def test_every_sort_filter_and_page_matches_the_fleet(
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    small_fleet: int,
    sparse_status: int,
) -> None:
    # Whichever way each slice is read (by the space, by an order's index, by the status
    # index), the page is the same.
    monkeypatch.setattr(fleet_view, "SMALL_FLEET", small_fleet)
    monkeypatch.setattr(fleet_view, "SPARSE_STATUS", sparse_status)
    nodes = await _fleet(sessions)
    view = FleetView(sessions, counts_ttl_seconds=0)
    page_size = 16
    for sort, descending in itertools.product(FleetSort, (False, True)):
        for status in (None, *STATUSES):
            matching = [n for n in nodes if status in (None, n.status)]
            expected = _expected(matching, sort, descending)
            # Paged through in full without a status filter; with one, a slice across the
            # boundary of two of the status sort's parts.
            windows = (
                [(offset, page_size) for offset in range(0, len(expected) + 1, page_size)]
                if status is None
                else [(0, 3), (3, 100)]
            )
            seen: list[str] = []
            for offset, limit in windows:
                page = await view.page(
                    "acme",
                    status=status,
                    sort=sort,
                    descending=descending,
                    offset=offset,
                    limit=limit,
                )
                assert page.total == len(expected)
                seen += [node.node_id for node in page.nodes]
            assert seen == expected, (sort, descending, status)
    every = await view.page("acme", limit=1)
    assert every.counts == {
        s: sum(1 for n in nodes if n.status == s)
        for s in STATUSES
        if any(n.status == s for n in nodes)
    }
    assert sum(every.counts.values()) == len(nodes) == 2 * 2 * (1 + 6 + 4)


async def test_filters_and_search_stay_inside_the_account(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    nodes = await _fleet(sessions)
    view = FleetView(sessions, counts_ttl_seconds=0)

    async def ids(**filters: Any) -> set[str]:
        page = await view.page("acme", limit=200, **filters)
        assert page.total == len(page.nodes)
        return {node.node_id for node in page.nodes}

    assert await ids(space_id="acme-b") == {n.node_id for n in nodes if n.space_id == "acme-b"}
    assert await ids(space_id="other-a") == set()  # another account's space: nothing
    assert await ids(kind="MESSAGE_TEMPLATE") == {
        n.node_id for n in nodes if n.kind == "MESSAGE_TEMPLATE"
    }
    assert await ids(kind="nonsense") == set()
    # By name (verified name, template name, WABA name), case-insensitively.
    assert await ids(search="SHOP3") == {
        n.node_id for n in nodes if n.kind == "PHONE_NUMBER" and n.texts == ("shop3",)
    }
    assert await ids(search="promo1") == {n.node_id for n in nodes if n.sort_a == "promo1"}
    # A WABA's name finds the WABA and its numbers and templates.
    assert await ids(search="branda") == {n.node_id for n in nodes if n.waba_name == "branda"}
    # By number, written any way; by id.
    assert await ids(search="812-0003") == {n.node_id for n in nodes if n.sort_a == "+62 812 0003"}
    one = nodes[5].node_id
    assert await ids(search=one) == {one}
    # The start of an id, from digits.
    prefix = one[:-2]
    assert await ids(search=prefix) == {n.node_id for n in nodes if n.node_id.startswith(prefix)}
    # The counts per status of a search (one grouped pass) are those of its nodes.
    shops = [n for n in nodes if any("shop" in t for t in n.texts) or "shop" in (n.waba_name or "")]
    found = await view.page("acme", search="Shop", limit=1)
    assert found.counts == Counter(n.status for n in shops)
    assert found.total == len(shops) > 0
    # LIKE's wildcards are plain characters in a search.
    assert await ids(search="%") == set()
    assert await ids(search="promo_") == set()
    other = await view.page("other", limit=200)
    assert {n.node_id for n in other.nodes}.isdisjoint({n.node_id for n in nodes})
    assert await view.node("acme", one) is not None
    assert await view.node("other", one) is None
