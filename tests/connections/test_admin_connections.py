"""Meta connections through the admin API, end to end through the app: create (checked with
Meta), point a space at it, check, delete; audited, never showing the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests._databases import database
from tests.connections._scenario import (
    ACME_SECRET,
    ACME_TOKEN,
    ACME_WABA,
    BETA_TOKEN,
    two_business_settings,
)

from wahealth.testing import running_app

ADMIN = "/api/v1/admin"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


async def test_connections_by_admin_api(tmp_path: Path, storage_url: str) -> None:
    settings = two_business_settings(
        tmp_path,
        storage={"url": storage_url},
        meta_connections=[{"name": "beta", "access_token": BETA_TOKEN}],
        spaces=[
            {"id": "acme-space", "account": "acme", "wabas": [ACME_WABA]},
            {"id": "beta-space", "account": "beta", "connection": "beta", "wabas": ["2001"]},
        ],
    )
    async with running_app(settings) as running:
        _, operator = await running.components.admin_tokens.issue("operator")
        _, tenant = await running.components.admin_tokens.issue("acme-admin", account="acme")
        client = running.client
        as_operator = {"Authorization": f"Bearer {operator}"}
        refresher = running.components.monitor.refresher

        # Without its own connection, the default token cannot see Acme's WABA.
        before = await refresher.refresh_all([ACME_WABA])
        assert set(before.failed) == {ACME_WABA}

        created = await client.post(
            f"{ADMIN}/connections",
            json={"name": "acme", "access_token": ACME_TOKEN, "app_secret": ACME_SECRET,
                  "meta_calls_per_minute": 42},
            headers=as_operator,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.json()["state"] == "ok"
        assert created.json()["meta_calls_per_minute"] == 42
        shown = await client.get(f"{ADMIN}/connections/acme", headers=as_operator)
        assert shown.json()["meta_calls_per_minute"] == 42
        assert created.json()["app_secret"] is True
        assert ACME_TOKEN not in created.text
        assert ACME_SECRET not in created.text

        refused = await client.get(
            f"{ADMIN}/connections", headers={"Authorization": f"Bearer {tenant}"}
        )
        assert refused.status_code == 403

        pointed = await client.put(
            f"{ADMIN}/spaces/acme-space/connection", json={"connection": "acme"},
            headers=as_operator,
        )  # fmt: skip
        assert pointed.json() == {"space": "acme-space", "connection": "acme"}
        after = await refresher.refresh_all([ACME_WABA])
        assert after.refreshed == 1

        emulator = running.components.emulator
        assert emulator is not None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emulator), base_url="http://emulator.test"
        ) as meta:
            await meta.put(f"/_emulator/tokens/{ACME_TOKEN}", json={"state": "expired"})
        checked = await client.post(f"{ADMIN}/connections/acme/check", headers=as_operator)
        assert checked.status_code == 200
        assert checked.json()["state"] == "refused"
        assert checked.json()["spaces"] == ["acme-space"]

        in_use = await client.delete(f"{ADMIN}/connections/acme", headers=as_operator)
        assert in_use.status_code == 409
        await client.put(
            f"{ADMIN}/spaces/acme-space/connection", json={"connection": None},
            headers=as_operator,
        )  # fmt: skip
        deleted = await client.delete(f"{ADMIN}/connections/acme", headers=as_operator)
        assert deleted.status_code == 200
        gone = await client.get(f"{ADMIN}/connections/acme", headers=as_operator)
        assert gone.status_code == 404
        listed = await client.get(f"{ADMIN}/connections", headers=as_operator)
        audit = await client.get(f"{ADMIN}/audit", headers=as_operator)
    assert [c["name"] for c in listed.json()] == ["beta"]
    actions = [entry["action"] for entry in audit.json()["entries"]]
    for action in (
        "connection.create",
        "space.connection",
        "connection.check",
        "connection.delete",
    ):
        assert action in actions
    assert ACME_TOKEN not in audit.text
    assert ACME_SECRET not in audit.text
