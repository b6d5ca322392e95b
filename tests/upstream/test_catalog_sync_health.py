"""The catalog sync brings each phone number's health with its page: one pass over a fleet.

A `phone_numbers` page is asked `health_status` beside the kept fields, so syncing a WABA
also stores, caches and records every number's report (cause `sync`), and the refresh
finds those numbers scheduled, not due. No number is asked about on its own.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from tests._recording import Recording

from wahealth.components import Overrides
from wahealth.domain import Status
from wahealth.settings import Settings
from wahealth.storage.columns import utcnow
from wahealth.testing import DEMO, demo_settings, running_app
from wahealth.upstream.emulator import emulator_state, synthetic_scenario
from wahealth.upstream.emulator.synthetic import synthetic_phone_number_id, synthetic_waba_id
from wahealth.upstream.records import phone_number_from_graph

WABAS = 3
NUMBERS = 250  # more than a page (100) in every WABA
INTERVAL = 600


def _settings(tmp_path: Path, sync_on_start: bool, sync_health: bool = True) -> Settings:
    scenario_file = tmp_path / "fleet.yaml"
    scenario = synthetic_scenario(NUMBERS * WABAS, wabas=WABAS, limited_every=50)
    scenario_file.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), "utf-8")
    return demo_settings(
        tmp_path,
        upstream={"scenario": str(scenario_file)},
        catalog={"sync_on_start": sync_on_start, "sync_health": sync_health},
        monitor={"enabled": False, "interval_seconds": INTERVAL},
        spaces=[
            {
                "id": DEMO.space,
                "account": DEMO.account,
                "wabas": [synthetic_waba_id(i) for i in range(WABAS)],
            }
        ],
    )


async def test_a_sync_stores_every_numbers_health_from_its_pages_alone(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path, sync_on_start=False)) as running:
        services = running.components
        emulator = services.emulator
        assert emulator is not None
        calls = emulator_state(emulator).calls
        calls.reset()
        before = utcnow()
        await services.catalog_sync.sync_all([synthetic_waba_id(i) for i in range(WABAS)])
        snapshot = calls.snapshot()
        # Only the edges were called: three pages of numbers and one of templates per WABA.
        assert snapshot["batches"] == 0
        wabas = {synthetic_waba_id(i) for i in range(WABAS)}
        assert set(snapshot["by_node"]) == wabas  # each WABA's edges; no number on its own
        assert sum(snapshot["by_path"].values()) == WABAS * 4
        history = services.history
        ids = [synthetic_phone_number_id(j) for j in range(NUMBERS * WABAS)]
        for j in [*range(5), 49, *range(NUMBERS * WABAS - 5, NUMBERS * WABAS)]:
            node_id = ids[j]
            stored = await history.get(node_id)
            assert stored is not None, node_id
            assert stored.fetched_at is not None
            assert stored.fetched_at >= before
            expected = Status.LIMITED if (j + 1) % 50 == 0 else Status.AVAILABLE
            assert stored.can_send_message == expected.value
            [transition] = await history.history(node_id)
            assert transition.cause.value == "sync"
            assert transition.before is None
        # Scheduled an interval on: the refresh's due nodes are the WABAs, not these numbers.
        due = await history.due_nodes(utcnow(), limit=10_000)
        assert {node.node_id for node in due} == {synthetic_waba_id(i) for i in range(WABAS)}
        later = await history.due_nodes(utcnow() + timedelta(seconds=INTERVAL + 1), limit=10_000)
        assert len(later) == NUMBERS * WABAS + WABAS
        # A query is answered from the cache the sync filled: no call to Meta.
        calls.reset()
        number = ids[49]
        graph = await running.client.get(
            f"/v21.0/{number}",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        assert graph.status_code == 200, graph.text
        assert graph.headers["x-wahealth-source"] == "cache"
        assert graph.json()["health_status"]["can_send_message"] == "LIMITED"
        assert calls.snapshot()["total"] == 0


@pytest.mark.parametrize("sync_health", [True, False])
async def test_the_edge_is_asked_health_status_with_the_kept_fields(
    tmp_path: Path, sync_health: bool
) -> None:
    recorders: list[Recording] = []

    def wrap(inner: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
        recorders.append(Recording(inner))
        return recorders[-1]

    settings = _settings(tmp_path, sync_on_start=False, sync_health=sync_health)
    async with running_app(settings, overrides=Overrides(graph_transport=wrap)) as running:
        await running.components.catalog_sync.sync_waba(synthetic_waba_id(0))
        stored = await running.components.history.get(synthetic_phone_number_id(0))
    [recorder] = recorders
    pages = [url for url in recorder.urls if url.path.endswith("/phone_numbers")]
    assert pages
    for url in pages:
        fields = parse_qs(urlsplit(str(url)).query)["fields"][0].split(",")
        assert fields[0] == "id"
        # Turned off, the pages are not asked health and the sync stores none.
        assert ("health_status" in fields) is sync_health
        assert "quality_rating" in fields
    fetched_at = stored.fetched_at if stored is not None else None
    assert (fetched_at is not None) is sync_health


def test_an_edge_item_whose_health_is_not_an_answer_gives_a_record_without_health() -> None:
    item = {"id": "123", "display_phone_number": "+1 555-000-0001", "health_status": [1, 2]}
    record = phone_number_from_graph(item)
    assert record.id == "123"
    assert record.health is None
    # A well-formed answer gives the report, and records compare without it.
    entity = {"entity_type": "PHONE_NUMBER", "id": "123", "can_send_message": "BLOCKED"}
    good = {**item, "health_status": {"can_send_message": "BLOCKED", "entities": [entity]}}
    with_health = phone_number_from_graph(good)
    assert with_health.health is not None
    assert with_health.health.can_send_message is Status.BLOCKED
    assert with_health == record


async def test_a_started_server_knows_every_numbers_health(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path, sync_on_start=True)) as running:
        fetched = await running.components.history.get(synthetic_phone_number_id(NUMBERS))
        assert fetched is not None
        assert fetched.fetched_at is not None
