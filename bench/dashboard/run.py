"""Dashboard benchmark: the fleet page's queries over a fleet of 100,000 nodes, on SQLite
and PostgreSQL in one run.

    .venv/bin/python bench/dashboard/run.py [--nodes 100000] [--wabas 100]
        [--postgres URL] [--no-sqlite] [--repeat 5]

Fills a fresh database per backend (SQLite in a temporary directory; the PostgreSQL
`--postgres` URL, whose tables are dropped first, then vacuumed and analyzed as its
autovacuum would have done by the time anyone opens the page) with one account, one
space, `--wabas` WABAs, their phone numbers and templates (nine numbers to one template),
a stored report for nine nodes in ten (statuses mixed), an acknowledgement for one
node in a hundred and a few silences; then times `FleetView.page` for the pages an
operator opens: the first page in each sort, each filter, each kind of search, the
next page while the counts are reused, a deep page, the acknowledged/silenced marks of
a page, and a node page's reads. Each figure is the median of `--repeat` runs, in
milliseconds; the load average is printed before and after (the figures depend on it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from wahealth.domain.records import PhoneNumberRecord, SilenceScope, TemplateRecord
from wahealth.storage import create_engine, session_factory, upgrade
from wahealth.storage.alerts_view import AlertsView
from wahealth.storage.catalog import CatalogRepository
from wahealth.storage.fleet_query import Order, StatusFilter, counting, listing
from wahealth.storage.fleet_view import FleetView
from wahealth.storage.health import HealthRepository
from wahealth.storage.models import AcknowledgementRow, Base, NodeHealthRow
from wahealth.storage.silences import SilenceRepository
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
    acks = [
        {
            "node_id": row["node_id"],
            "status": row["can_send_message"],
            "acknowledged_by": "bench",
            "note": None,
            "acknowledged_at": now,
        }
        for row in rows[::100]
        if row["can_send_message"] != "AVAILABLE"
    ]
    async with sessions() as session, session.begin():
        for start in range(0, len(rows), 5000):
            await session.execute(insert(NodeHealthRow), rows[start : start + 5000])
        await session.execute(insert(AcknowledgementRow), acks)
    silences = SilenceRepository(sessions)
    for scope, scope_id in ((SilenceScope.WABA, "700000000"), (SilenceScope.NODE, node_ids[5])):
        await silences.add(
            SPACE,
            scope,
            scope_id,
            starts_at=now,
            ends_at=now + timedelta(hours=2),
            reason="bench",
            created_by="bench",
        )
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


def _cases(
    sessions: Any, node_ids: list[str], sqlite: bool
) -> dict[str, Callable[[], Awaitable[object]]]:
    fleet = FleetView(sessions, counts_ttl_seconds=0)  # every figure counts anew
    paging = FleetView(sessions)
    silences = SilenceRepository(sessions)
    alerts = AlertsView(sessions)
    history = HealthRepository(sessions)
    probe = node_ids[len(node_ids) // 2]

    async def marks() -> object:  # what the fleet page reads besides `FleetView.page`
        page = await paging.page(ACCOUNT)
        ids = [node.node_id for node in page.nodes]
        return await asyncio.gather(
            silences.acknowledgements_in_force(ids), silences.current(datetime.now(UTC), [SPACE])
        )

    return {
        "first page, worst first (default)": lambda: fleet.page(ACCOUNT),
        "first page by name": lambda: fleet.page(ACCOUNT, sort="name"),
        "first page by kind": lambda: fleet.page(ACCOUNT, sort="kind"),
        "first page by age of data": lambda: fleet.page(ACCOUNT, sort="age"),
        "first page by id, descending": lambda: fleet.page(ACCOUNT, sort="id", descending=True),
        "BLOCKED only": lambda: fleet.page(ACCOUNT, status="BLOCKED"),
        "LIMITED only, page 2": lambda: fleet.page(ACCOUNT, status="LIMITED", offset=50),
        "UNKNOWN only (never fetched)": lambda: fleet.page(ACCOUNT, status="UNKNOWN"),
        "AVAILABLE only": lambda: fleet.page(ACCOUNT, status="AVAILABLE"),
        "templates only": lambda: fleet.page(ACCOUNT, kind="MESSAGE_TEMPLATE"),
        "numbers only": lambda: fleet.page(ACCOUNT, kind="PHONE_NUMBER"),
        "WABAs only": lambda: fleet.page(ACCOUNT, kind="WABA"),
        "one space": lambda: fleet.page(ACCOUNT, space_id=SPACE),
        "search a number": lambda: fleet.page(ACCOUNT, search="812 0042 00017"),
        "search a name": lambda: fleet.page(ACCOUNT, search="Shop 42-"),
        "search a WABA name": lambda: fleet.page(ACCOUNT, search="Brand 42"),
        "search an id": lambda: fleet.page(ACCOUNT, search="100042000017"),
        "search a template name": lambda: fleet.page(ACCOUNT, search="promo_7"),
        "search matching most nodes": lambda: fleet.page(ACCOUNT, search="shop"),
        "page 2, counts reused (paging on)": lambda: paging.page(ACCOUNT, offset=50),
        "page 1000, counts reused (offset 49,950)": lambda: paging.page(ACCOUNT, offset=49_950),
        "acknowledged/silenced marks of page 1": marks,
        "counts per status alone (as the first page counts)": lambda: _execute(
            sessions,
            counting(ACCOUNT, kind=None, space_id=None, search=None, grouped=not sqlite),
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


async def _backend(url: str, args: argparse.Namespace) -> dict[str, float]:
    engine = create_engine(url)
    postgres = url.startswith("postgresql")
    if postgres:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
            await connection.run_sync(Base.metadata.drop_all)
    await upgrade(engine)
    sessions = session_factory(engine)
    started = time.perf_counter()
    node_ids = await _fill(sessions, args.nodes, args.wabas)
    if postgres:  # what autovacuum does after a bulk load
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("VACUUM ANALYZE")
    print(
        f"{url.split(':')[0]}: filled {len(node_ids)} nodes in {time.perf_counter() - started:.1f} s"
    )
    figures = {}
    for name, call in _cases(sessions, node_ids, not postgres).items():
        figures[name] = await _median_ms(args.repeat, call)
    await engine.dispose()
    return figures


def _load() -> str:
    return "load average " + ", ".join(f"{n:.2f}" for n in os.getloadavg())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--wabas", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--postgres", metavar="URL", help="a postgresql+asyncpg:// URL (its tables are dropped)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--keep", type=Path, help="fill this SQLite file and keep it")
    args = parser.parse_args()
    print(f"before: {_load()} ({os.cpu_count()} cores)")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            path = args.keep or Path(tmp) / "bench.db"
            results["sqlite"] = await _backend(f"sqlite+aiosqlite:///{path}", args)
        if args.postgres:
            results["postgresql"] = await _backend(args.postgres, args)
    names = list(next(iter(results.values()))) if results else []
    print(f"{'median ms of ' + str(args.repeat):48s}" + "".join(f"{b:>12s}" for b in results))
    for name in names:
        print(f"{name:48s}" + "".join(f"{r[name]:12.1f}" for r in results.values()))
    print(f"after: {_load()}")


if __name__ == "__main__":
    asyncio.run(main())
