"""Purging a deleted tenant through the admin API on a served gateway: what deletion kept
(history, node health, alerts, silences; an account's keys) is removed for good, the audit
log says so, and retention purges a tenant deleted longer ago than history is kept."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from tests.gateway._served import ServedGateway, serve_gateway

from wahealth.storage.purge import Purge
from wahealth.testing import DEMO

FREE_WABA = "299399000000001"  # in the demo scenario; not placed in a space by this config
FREE_PHONE = "8613800000009"
ADMIN = "/api/v1/admin"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServedGateway]:
    spaces = [{"id": DEMO.space, "account": DEMO.account, "wabas": ["102290129340398"]}]
    with serve_gateway(
        tmp_path, qps=10_000, spaces=spaces, accounts=[{"name": DEMO.account, "qps": 5}]
    ) as served:
        yield served


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _client(gateway: ServedGateway, account: str | None = None) -> httpx.Client:
    _, token = gateway.run(gateway.components.admin_tokens.issue("ops", account))
    return gateway.http(headers={"Authorization": f"Bearer {token}"})


def _tenant_with_history(gateway: ServedGateway, admin: httpx.Client) -> None:
    """Account `acme`, space `acme-space` with the free WABA, one CAMS query (a transition)."""
    _ok(admin.post(f"{ADMIN}/accounts", json={"name": "acme"}), 201)
    _ok(admin.post(f"{ADMIN}/spaces", json={"id": "acme-space", "account": "acme"}), 201)
    _ok(admin.post(f"{ADMIN}/spaces/acme-space/wabas", json={"waba_id": FREE_WABA}))
    key = _ok(admin.post(f"{ADMIN}/keys", json={"account": "acme", "kind": "access-key"}), 201)
    answer = gateway.cams(key["access_key_id"], key["secret"]).get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(
            node_type="phone", phone_number=FREE_PHONE, cust_space_id="acme-space"
        )
    )
    assert answer.body.data.can_send_message == "BLOCKED"


def _wait_until(probe: Callable[[], bool], deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not probe():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)


def _rows(database: Path, query: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(query, args).fetchall()


def _count_of_space(database: Path, table: str, space: str) -> int:
    query = f"SELECT count(*) FROM {table} WHERE space_id = ?"  # noqa: S608 — a fixed table name
    return int(_rows(database, query, space)[0][0])


def test_purging_a_space_removes_its_history_and_health_and_audits_it(
    gateway: ServedGateway, tmp_path: Path
) -> None:
    database = tmp_path / "wahealth.db"
    with _client(gateway) as admin:
        _tenant_with_history(gateway, admin)
        # The transition may be written just after the answer: wait for it, bounded.
        _wait_until(lambda: _count_of_space(database, "transitions", "acme-space") > 0)
        assert _count_of_space(database, "node_health", "acme-space") > 0

        answer = _ok(admin.delete(f"{ADMIN}/spaces/acme-space", params={"purge": "true"}))
        assert answer["account"] == "acme"
        assert answer["wabas"] == [FREE_WABA]
        purged = answer["purged"]
        assert purged["transitions"] >= 1
        assert purged["nodes"] >= 1
        assert admin.get(f"{ADMIN}/spaces/acme-space").status_code == 404
        # Purged once: nothing is left to purge.
        gone = admin.delete(f"{ADMIN}/spaces/acme-space", params={"purge": "true"})
        assert gone.status_code == 404
        actions = [e["action"] for e in _ok(admin.get(f"{ADMIN}/audit?account=acme"))["entries"]]
        assert actions[:2] == ["space.purge", "space.delete"]
    assert _count_of_space(database, "transitions", "acme-space") == 0
    assert _count_of_space(database, "node_health", "acme-space") == 0
    assert _rows(database, "SELECT id FROM spaces WHERE id = 'acme-space'") == []


def test_an_account_deleted_before_is_purged_by_an_operator_only(
    gateway: ServedGateway, tmp_path: Path
) -> None:
    database = tmp_path / "wahealth.db"
    with _client(gateway) as admin:
        _tenant_with_history(gateway, admin)
        _wait_until(lambda: _count_of_space(database, "transitions", "acme-space") > 0)
        deleted = _ok(admin.delete(f"{ADMIN}/accounts/acme"))
        assert deleted["purged"] is None
        assert deleted["revoked_keys"] == 1
        # Deleting keeps: the history and the revoked key are still there.
        assert _count_of_space(database, "transitions", "acme-space") > 0
        assert admin.delete(f"{ADMIN}/accounts/acme").status_code == 404
        bad = admin.delete(f"{ADMIN}/accounts/acme", params={"purge": "yes"})
        assert bad.status_code == 422
        assert "true or false" in bad.json()["error"]

        with _client(gateway, DEMO.account) as tenant:
            refused = tenant.delete(f"{ADMIN}/spaces/acme-space", params={"purge": "true"})
            assert refused.status_code == 403

        purged = _ok(admin.delete(f"{ADMIN}/accounts/acme", params={"purge": "true"}))
        assert purged["spaces"] == ["acme-space"]
        assert purged["purged"]["keys"] == 1
        assert purged["purged"]["transitions"] >= 1
        assert admin.get(f"{ADMIN}/keys", params={"account": "acme"}).status_code == 404
    assert _rows(database, "SELECT name FROM accounts WHERE name = 'acme'") == []
    assert _count_of_space(database, "transitions", "acme-space") == 0


def test_retention_purges_only_what_was_deleted_before_the_history_cutoff(
    gateway: ServedGateway, tmp_path: Path
) -> None:
    database = tmp_path / "wahealth.db"
    with _client(gateway) as admin:
        _tenant_with_history(gateway, admin)
        _wait_until(lambda: _count_of_space(database, "transitions", "acme-space") > 0)
        _ok(admin.delete(f"{ADMIN}/spaces/acme-space"))
    purge = Purge(gateway.components.sessions)
    # Deleted just now: a cut-off in the past purges nothing.
    past = datetime.now(UTC) - timedelta(days=120)
    assert gateway.run(purge.purge_deleted_before(past)) == []
    assert _count_of_space(database, "transitions", "acme-space") > 0
    future = datetime.now(UTC) + timedelta(seconds=1)
    assert gateway.run(purge.purge_deleted_before(future)) == ["space acme-space"]
    assert _count_of_space(database, "transitions", "acme-space") == 0
    assert _rows(database, "SELECT count(*) FROM accounts WHERE name = 'acme'") == [(1,)]
