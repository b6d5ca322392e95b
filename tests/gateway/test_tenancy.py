"""Tenancy: a credential never reaches another account's nodes, whatever it is bound to."""

from __future__ import annotations

from pathlib import Path

from wahealth.testing import DEMO, demo_settings, running_app


async def test_d360_key_bound_to_another_accounts_number_gets_nothing(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path)
    accounts = [a.model_dump() for a in settings.accounts]
    # The other account's key claims the demo account's phone number.
    accounts[1]["d360_keys"] = [{"key": "stolen-binding", "phone_number_id": "106540352242922"}]
    settings = demo_settings(tmp_path, accounts=accounts)
    async with running_app(settings) as running:
        calls_before = (await running.client.get("/_emulator/calls")).json()["total"]
        refused = await running.client.get(
            "/health_status", headers={"D360-API-KEY": "stolen-binding"}
        )
        assert refused.status_code == 404
        assert refused.json()["meta"]["success"] is False
        assert "106540352242922" not in refused.text
        assert (await running.client.get("/_emulator/calls")).json()["total"] == calls_before

        owner = await running.client.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        assert owner.status_code == 200
        assert owner.json()["id"] == "106540352242922"
