"""Catalog sync of many WABAs against the emulator: every number stored, failures isolated."""

from __future__ import annotations

from pathlib import Path

import yaml

from wahealth.core.catalog_sync import SYNC_CONCURRENCY
from wahealth.testing import DEMO, demo_settings, running_app
from wahealth.upstream.emulator import synthetic_scenario
from wahealth.upstream.emulator.synthetic import synthetic_phone_number_id, synthetic_waba_id
from wahealth.upstream.errors import GraphError


async def test_sync_all_stores_every_waba_and_reports_each_outcome(tmp_path: Path) -> None:
    wabas = 2 * SYNC_CONCURRENCY + 3
    numbers = 40 * wabas + 7  # some WABAs hold more than a page
    scenario_file = tmp_path / "fleet.yaml"
    scenario = synthetic_scenario(numbers, wabas=wabas)
    scenario_file.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), "utf-8")
    ids = [synthetic_waba_id(i) for i in range(wabas)]
    unknown = "910000000099999"  # configured, but Meta does not know it
    settings = demo_settings(
        tmp_path,
        upstream={"scenario": str(scenario_file)},
        catalog={"sync_on_start": False},
        spaces=[
            {"id": "fleet-space", "account": DEMO.account, "wabas": [*ids[:3], unknown, *ids[3:]]}
        ],
    )
    async with running_app(settings) as running:
        services = running.components
        seen: list[str] = []
        outcome = await services.catalog_sync.sync_all([*ids[:3], unknown, *ids[3:]], seen.append)
        assert list(outcome) == [*ids[:3], unknown, *ids[3:]]
        assert isinstance(outcome[unknown], GraphError)
        assert sorted(seen) == sorted(outcome)
        per_waba = {
            waba: sum(1 for j in range(numbers) if j % wabas == i) for i, waba in enumerate(ids)
        }
        assert {waba: outcome[waba] for waba in ids} == {
            waba: (n, 0) for waba, n in per_waba.items()
        }
        stored = [n.id for waba in ids for n in await services.catalog.phone_numbers_of_waba(waba)]
        assert sorted(stored) == sorted(synthetic_phone_number_id(j) for j in range(numbers))
