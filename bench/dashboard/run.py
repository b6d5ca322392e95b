"""Dashboard benchmark: the fleet page's queries over a fleet of 100,000 nodes.

    .venv/bin/python bench/dashboard/run.py [--nodes 100000] [--wabas 100] [--url URL]

Fills a fresh database (SQLite in a temporary directory, or the PostgreSQL `--url`, whose
tables are dropped first) with one account, one space, `--wabas` WABAs, their phone
numbers and templates (nine numbers to one template) and a stored report for nine nodes
in ten (statuses mixed), then times `FleetView.page` for the pages an operator opens:
the first page in each sort, a status filter, a search, a deep page, the next page
while the counts are reused, and a node page's reads. Each figure is the median of
`--repeat` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.storage import create_engine, session_factory, upgrade
from wahealth.storage.alerts_view import AlertsView
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.fleet_query import Order, StatusFilter, counting, listing
from wahealth.storage.fleet_view import FleetView
from wahealth.storage.health import HealthRepository
from wahealth.storage.models import Base, NodeHealthRow
from wahealth.storage.tenancy import TenancyRepository

ACCOUNT = "bench"
SPACE = "bench-space"
STATUSES = ("AVAILABLE", "AVAILABLE", "AVAILABLE", "AVAILABLE", "AVAILABLE", "LIMITED", "BLOCKED")


async def _fill(sessions: Any, nodes: int, wabas: int) -> list[str]:
    tenancy = TenancyRepository(sessions)
    catalog = CatalogRepository(sessions)
    await tenancy.upsert_account(ACCOUNT)
    await tenancy.upsert_space(SPACE, ACCOUNT)
    per_waba = max(1, nodes // wabas - 1)
    node_ids: list[str] = []
    for w in range(wabas):
        waba_id = f"7{w:08d}"
        await tenancy.upsert_waba(waba_id, SPACE, name=f"Brand {w}")
        node_ids.append(waba_id)
        phones = [
            PhoneNumberRecord(
                f"1{w:05d}{n:06d}", f"+62 812 {w:04d} {n:05d}", f"Shop {w}-{n}", "GREEN"
            )
            for n in range(per_waba * 9 // 10)
        ]
        templates = [
            TemplateRecord(f"2{w:05d}{n:06d}", f"promo_{n}", "en", "APPROVED", "MARKETING")
            for n in range(per_waba - len(phones))
        ]
        await catalog.replace_phone_numbers(waba_id, phones)
        await catalog.replace_templates(waba_id, templates)
        node_ids += [p.id for p in phones] + [t.id for t in templates]
    now = datetime.now(UTC)
    rows = [
        {
            "node_id": node_id,
            "node_kind": "PHONE_NUMBER",
            "space_id": SPACE,
            "can_send_message": STATUSES[i % len(STATUSES)],
            "payload": {"health_status": {"can_send_message": "AVAILABLE", "entities": []}},
            "error_codes": ["141006"] if STATUSES[i % len(STATUSES)] == "BLOCKED" else [],
            "fetched_at": now - timedelta(seconds=i % 3600),
            "checked_at": now,
            "next_due_at": now,
        }
        for i, node_id in enumerate(node_ids)
        if i % 10
    ]
    async with sessions() as session, session.begin():
        for start in range(0, len(rows), 5000):
            await session.execute(insert(NodeHealthRow), rows[start : start + 5000])
    return node_ids


async def _execute(sessions: Any, query: Any) -> object:
    async with sessions() as session:
        return (await session.execute(query)).all()


async def _median_ms(repeat: int, call: Callable[[], Awaitable[object]]) -> float:
    await call()  # warm the caches once
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--wabas", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="a postgresql+asyncpg:// URL (its tables are dropped)")
    parser.add_argument("--keep", type=Path, help="fill this SQLite file and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        url = args.url or f"sqlite+aiosqlite:///{path}"
        engine = create_engine(url)
        if args.url:
            async with engine.begin() as connection:
                await connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                await connection.run_sync(Base.metadata.drop_all)
        await upgrade(engine)
        sessions = session_factory(engine)
        started = time.perf_counter()
        node_ids = await _fill(sessions, args.nodes, args.wabas)
        print(
            f"filled {len(node_ids)} nodes in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})"
        )
        fleet = FleetView(sessions, counts_ttl_seconds=0)  # every figure counts anew
        paging = FleetView(sessions)
        alerts = AlertsView(sessions)
        history = HealthRepository(sessions)
        probe = node_ids[len(node_ids) // 2]
        cases: dict[str, Callable[[], Awaitable[object]]] = {
            "first page, worst first (default)": lambda: fleet.page(ACCOUNT),
            "first page by name": lambda: fleet.page(ACCOUNT, sort="name"),
            "first page by age of data": lambda: fleet.page(ACCOUNT, sort="age"),
            "first page by id, descending": lambda: fleet.page(ACCOUNT, sort="id", descending=True),
            "BLOCKED only": lambda: fleet.page(ACCOUNT, status="BLOCKED"),
            "templates only": lambda: fleet.page(ACCOUNT, kind="MESSAGE_TEMPLATE"),
            "search a number": lambda: fleet.page(ACCOUNT, search="812 0042 00017"),
            "search a name": lambda: fleet.page(ACCOUNT, search="Shop 42-"),
            "page 1000 (offset 49,950)": lambda: fleet.page(ACCOUNT, offset=49_950),
            "page 2, counts reused (paging on)": lambda: paging.page(ACCOUNT, offset=50),
            "counts per status alone": lambda: _execute(
                sessions, counting(ACCOUNT, kind=None, space_id=None, search=None)
            ),
            "first page's rows alone (BLOCKED, name order)": lambda: _execute(
                sessions,
                listing(
                    ACCOUNT,
                    kind=None,
                    space_id=None,
                    search=None,
                    health=StatusFilter(status="BLOCKED"),
                    order=Order.NAME,
                    descending=False,
                    offset=0,
                    limit=50,
                    by_space=False,
                ),
            ),
            "node page reads": lambda: asyncio.gather(
                fleet.node(ACCOUNT, probe),
                history.get(probe),
                history.history(probe, 51),
                fleet.status_changes(probe, datetime.now(UTC) - timedelta(days=30)),
                alerts.alerts_of_node(ACCOUNT, probe),
            ),
        }
        for name, call in cases.items():
            print(f"{name:48s} {await _median_ms(args.repeat, call):8.1f} ms")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
