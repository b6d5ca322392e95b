"""The admin API end to end on a served gateway: an account, space and AccessKey made by API
serve the official CAMS SDK; rotation keeps the old key until the overlap ends; deletion
revokes at once; every change is in the audit log."""

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
from alibabacloud_tea_openapi.exceptions import ClientException
from tests.gateway._served import ServedGateway, serve_gateway

from wahealth.app import Overrides
from wahealth.testing import DEMO

FREE_WABA = "299399000000001"  # in the demo scenario; not placed in a space by this config
FREE_PHONE = "8613800000009"  # its phone number (overall BLOCKED via the WABA)
ADMIN = "/api/v1/admin"


class Clock:
    """A wall clock the test moves: key expiry reads it, the CAMS signature check does not."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, clock: Clock) -> Iterator[ServedGateway]:
    spaces = [{"id": DEMO.space, "account": DEMO.account, "wabas": ["102290129340398"]}]
    accounts = [{"name": DEMO.account, "qps": 5}]
    with serve_gateway(
        tmp_path_factory.mktemp("admin"),
        qps=10_000,
        overrides=Overrides(clock=clock),
        spaces=spaces,
        accounts=accounts,
    ) as served:
        yield served


def _poll_until(probe: Callable[[], int], expected: int, deadline_s: float = 5.0) -> None:
    """Servers may answer a repeated request from a one-second memo: poll, bounded."""
    deadline = time.monotonic() + deadline_s
    while (answer := probe()) != expected:
        assert time.monotonic() < deadline, f"still {answer} instead of {expected}"
        time.sleep(0.05)


def _token(gateway: ServedGateway, name: str, account: str | None = None) -> str:
    _, token = gateway.run(gateway.components.admin_tokens.issue(name, account))
    return token


@pytest.fixture(scope="module")
def admin(gateway: ServedGateway) -> Iterator[httpx.Client]:
    token = _token(gateway, "ops")
    with gateway.http(headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _cams(gateway: ServedGateway, key_id: str, secret: str, space: str) -> str:
    """The SDK's answer for the free WABA's number in `space`: its status, or the error code."""
    try:
        answer = gateway.cams(key_id, secret).get_whatsapp_health_status(
            GetWhatsappHealthStatusRequest(
                node_type="phone", phone_number=FREE_PHONE, cust_space_id=space
            )
        )
    except ClientException as exc:
        return str(exc.code)
    return str(answer.body.data.can_send_message)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_a_tenant_made_by_api_is_served_to_the_cams_sdk_and_rotation_overlaps(
    gateway: ServedGateway, admin: httpx.Client, clock: Clock
) -> None:
    account = _ok(admin.post(f"{ADMIN}/accounts", json={"name": "acme", "qps": 7}), 201)
    assert (account["name"], account["qps"], account["disabled"]) == ("acme", 7, False)
    space = _ok(admin.post(f"{ADMIN}/spaces", json={"id": "acme-space", "account": "acme"}), 201)
    assert space["wabas"] == []
    space = _ok(admin.post(f"{ADMIN}/spaces/acme-space/wabas", json={"waba_id": FREE_WABA}))
    assert space["wabas"] == [FREE_WABA]
    key = _ok(admin.post(f"{ADMIN}/keys", json={"account": "acme", "kind": "access-key"}), 201)
    assert key["id"] == f"ak:{key['access_key_id']}"
    assert key["state"] == "live"
    old_id, old_secret = key["access_key_id"], key["secret"]

    assert _cams(gateway, old_id, old_secret, "acme-space") == "BLOCKED"
    # The new account sees its own space only.
    assert _cams(gateway, old_id, old_secret, DEMO.space) != "BLOCKED"

    one_hour = {"overlap_seconds": 3600}
    rotated = _ok(admin.post(f"{ADMIN}/keys/ak:{old_id}/rotate", json=one_hour), 201)
    new_id, new_secret = rotated["new"]["access_key_id"], rotated["new"]["secret"]
    assert rotated["old"]["state"] == "expiring"
    assert datetime.fromisoformat(rotated["old"]["expires_at"]) == clock.now + timedelta(hours=1)
    # Both keys work during the overlap, and the listing shows both with the old one's expiry.
    assert _cams(gateway, old_id, old_secret, "acme-space") == "BLOCKED"
    assert _cams(gateway, new_id, new_secret, "acme-space") == "BLOCKED"
    listed = {k["id"]: k for k in _ok(admin.get(f"{ADMIN}/keys", params={"account": "acme"}))}
    assert listed[f"ak:{old_id}"]["expires_at"] == rotated["old"]["expires_at"]
    assert listed[f"ak:{new_id}"]["expires_at"] is None
    assert "secret" not in listed[f"ak:{new_id}"]

    clock.now += timedelta(hours=1, seconds=1)
    assert _cams(gateway, old_id, old_secret, "acme-space") == "InvalidAccessKeyId.Inactive"
    assert _cams(gateway, new_id, new_secret, "acme-space") == "BLOCKED"
    assert _ok(admin.get(f"{ADMIN}/keys/ak:{old_id}"))["state"] == "expired"
    # An expired key cannot be rotated again.
    refused = admin.post(f"{ADMIN}/keys/ak:{old_id}/rotate", json={})
    assert refused.status_code == 409
    assert "expired" in refused.json()["error"]

    audit = _ok(admin.get(f"{ADMIN}/audit", params={"account": "acme"}))["entries"]
    assert [(e["action"], e["target"]) for e in reversed(audit)] == [
        ("account.create", "acme"),
        ("space.create", "acme-space"),
        ("space.add_waba", "acme-space"),
        ("key.create", f"ak:{old_id}"),
        ("key.rotate", f"ak:{old_id}"),
    ]
    assert {e["actor"] for e in audit} == {"admin-token:1 (ops)"}
    assert audit[0]["details"]["new"] == f"ak:{new_id}"
    stored = gateway.run(gateway.components.admin.audit.entries(account="acme"))
    assert next(entry.action for entry in stored) == "key.rotate"


def test_deleting_an_account_revokes_its_keys_at_once_and_keeps_its_history(
    gateway: ServedGateway, admin: httpx.Client
) -> None:
    _ok(admin.post(f"{ADMIN}/accounts", json={"name": "gone"}), 201)
    _ok(admin.post(f"{ADMIN}/spaces", json={"id": "gone-space", "account": "gone"}), 201)
    key = _ok(admin.post(f"{ADMIN}/keys", json={"account": "gone", "kind": "graph"}), 201)
    with gateway.http() as http:
        node = "/v21.0/106540352242922?fields=health_status"
        bearer = {"Authorization": f"Bearer {key['secret']}"}
        assert http.get(node, headers=bearer).status_code != 401

        deleted = _ok(admin.delete(f"{ADMIN}/accounts/gone"))
        assert deleted == {
            "name": "gone",
            "spaces": ["gone-space"],
            "revoked_keys": 1,
            "purged": None,
        }
        _poll_until(lambda: http.get(node, headers=bearer).status_code, 401)
    assert admin.get(f"{ADMIN}/accounts/gone").status_code == 404
    assert admin.get(f"{ADMIN}/spaces/gone-space").status_code == 404
    assert "gone" not in [a["name"] for a in _ok(admin.get(f"{ADMIN}/accounts"))]
    assert _ok(admin.get(f"{ADMIN}/keys/{key['id']}"))["state"] == "revoked"
    actions = [e["action"] for e in _ok(admin.get(f"{ADMIN}/audit?account=gone"))["entries"]]
    assert actions[0] == "account.delete"


def test_deleting_a_space_takes_its_wabas_out_and_revokes_its_numbers_keys(
    gateway: ServedGateway, admin: httpx.Client
) -> None:
    _ok(admin.post(f"{ADMIN}/accounts", json={"name": "brief"}), 201)
    body = {"id": "brief-space", "account": "brief", "wabas": ["102290129340398"]}
    # The WABA is the demo space's: placing it in a second space is refused.
    refused = admin.post(f"{ADMIN}/spaces", json=body)
    assert refused.status_code == 409
    assert "demo-space" in refused.json()["error"]
    assert admin.get(f"{ADMIN}/spaces/brief-space").status_code == 404
    body["wabas"] = []
    _ok(admin.post(f"{ADMIN}/spaces", json=body), 201)
    deleted = _ok(admin.delete(f"{ADMIN}/spaces/brief-space"))
    assert deleted == {
        "id": "brief-space",
        "account": "brief",
        "wabas": [],
        "revoked_keys": 0,
        "purged": None,
    }
    assert admin.delete(f"{ADMIN}/spaces/brief-space").status_code == 404


def test_the_demo_d360_key_is_refused_once_its_space_is_deleted(
    tmp_path: Path,
) -> None:
    with serve_gateway(tmp_path, qps=10_000) as gateway:
        token = _token(gateway, "ops")
        headers = {"Authorization": f"Bearer {token}"}
        with gateway.http(headers=headers) as http:
            d360 = {"D360-API-KEY": DEMO.d360_key}
            assert http.get("/health_status", headers=d360).status_code == 200
            deleted = _ok(http.delete(f"{ADMIN}/spaces/{DEMO.space}"))
            assert deleted["revoked_keys"] == 1
            assert sorted(deleted["wabas"]) == ["102290129340398", "299399000000001"]
            # A repeat of a request just answered is recognised for up to a second.
            _poll_until(lambda: http.get("/health_status", headers=d360).status_code, 401)
            keys = _ok(http.get(f"{ADMIN}/keys", params={"account": DEMO.account}))
            assert [k["state"] for k in keys if k["kind"] == "d360"] == ["revoked"]
        # Its history stays: the health stored for its number still names the space.
        with sqlite3.connect(tmp_path / "wahealth.db") as db:
            kept = db.execute(
                "SELECT node_id FROM node_health WHERE space_id = ?", (DEMO.space,)
            ).fetchall()
            space = db.execute(
                "SELECT deleted_at IS NOT NULL FROM spaces WHERE id = ?", (DEMO.space,)
            ).fetchall()
        assert ("106540352242922",) in kept
        assert space == [(1,)]


def test_rotated_360dialog_keys_and_graph_tokens_expire_after_the_overlap(
    gateway: ServedGateway, admin: httpx.Client, clock: Clock
) -> None:
    d360_body = {"account": DEMO.account, "kind": "d360", "phone_number_id": "106540352242922"}
    d360 = _ok(admin.post(f"{ADMIN}/keys", json=d360_body), 201)
    graph_body = {"account": DEMO.account, "kind": "graph", "label": "ci"}
    graph = _ok(admin.post(f"{ADMIN}/keys", json=graph_body), 201)
    d360_rotation = _ok(admin.post(f"{ADMIN}/keys/{d360['id']}/rotate"), 201)
    graph_rotation = _ok(
        admin.post(f"{ADMIN}/keys/{graph['id']}/rotate", json={"overlap_seconds": 60}), 201
    )
    assert d360_rotation["new"]["phone_number_id"] == "106540352242922"
    assert graph_rotation["new"]["label"] == "ci"
    # The default overlap is a day.
    old_d360_expiry = datetime.fromisoformat(d360_rotation["old"]["expires_at"])
    assert old_d360_expiry - datetime.fromisoformat(d360_rotation["new"]["created_at"]) == (
        timedelta(hours=24)
    )

    def d360_status(key: str) -> int:
        with gateway.http() as http:
            return http.get("/health_status", headers={"D360-API-KEY": key}).status_code

    def graph_status(token: str) -> int:
        with gateway.http() as http:
            return http.get(
                "/v21.0/106540352242922",
                params={"fields": "health_status"},
                headers={"Authorization": f"Bearer {token}"},
            ).status_code

    old_d360, new_d360 = d360["secret"], d360_rotation["new"]["secret"]
    old_graph, new_graph = graph["secret"], graph_rotation["new"]["secret"]
    assert [d360_status(old_d360), d360_status(new_d360)] == [200, 200]
    assert [graph_status(old_graph), graph_status(new_graph)] == [200, 200]

    clock.now += timedelta(seconds=61)
    _poll_until(lambda: graph_status(old_graph), 401)
    assert graph_status(new_graph) == 200
    assert d360_status(old_d360) == 200  # its overlap is a day

    clock.now += timedelta(hours=24)
    _poll_until(lambda: d360_status(old_d360), 401)
    assert d360_status(new_d360) == 200
    states = {k["id"]: k["state"] for k in _ok(admin.get(f"{ADMIN}/keys"))}
    assert states[d360["id"]] == states[graph["id"]] == "expired"
    assert states[d360_rotation["new"]["id"]] == states[graph_rotation["new"]["id"]] == "live"
