"""Admin API refusals as clients see them: 401 without a good token, 403 outside its account,
400/422 for bad input with a message that names the problem; never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wahealth.storage.models import AdminTokenRow
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

ADMIN = "/api/v1/admin"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with running_app(demo_settings(tmp_path)) as app:
        yield app


async def _token(running: RunningApp, name: str, account: str | None = None) -> dict[str, str]:
    _, token = await running.components.admin_tokens.issue(name, account)
    return {"Authorization": f"Bearer {token}"}


def _problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: str = response.json()["error"]
    return error


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        "Bearer whadm_1_short",
        "Bearer whadm_999_" + "a" * 40,
        "Bearer graph-demo-token",
    ],
)
async def test_no_or_a_bad_token_is_401_with_a_bearer_challenge(
    running: RunningApp, authorization: str | None
) -> None:
    await _token(running, "ops")
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = await running.client.get(f"{ADMIN}/accounts", headers=headers)
    assert "admin token" in _problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_with_the_right_id_and_a_wrong_secret_is_401(running: RunningApp) -> None:
    token_id, token = await running.components.admin_tokens.issue("ops")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    answer = await running.client.get(
        f"{ADMIN}/accounts", headers={"Authorization": f"Bearer {forged}"}
    )
    assert _problem(answer, 401) == "unknown admin token"
    # Only a keyed hash is stored, never the token.
    async with running.components.sessions() as session:
        row = await session.get(AdminTokenRow, token_id)
    assert row is not None
    assert token not in row.token_hash
    assert len(row.token_hash) == 64


async def test_a_revoked_token_is_401(running: RunningApp) -> None:
    headers = await _token(running, "ops")
    assert (await running.client.get(f"{ADMIN}/accounts", headers=headers)).status_code == 200
    token_id = int(headers["Authorization"].split("_")[1])
    assert await running.components.admin_tokens.revoke(token_id)
    answer = await running.client.get(f"{ADMIN}/accounts", headers=headers)
    assert _problem(answer, 401) == "this admin token is revoked"


async def test_a_token_scoped_to_an_account_manages_only_that_account(running: RunningApp) -> None:
    tenant = await _token(running, "demo-portal", DEMO.account)
    client = running.client
    listed = (await client.get(f"{ADMIN}/accounts", headers=tenant)).json()
    assert [account["name"] for account in listed] == [DEMO.account]
    forbidden = await client.post(f"{ADMIN}/accounts", json={"name": "new"}, headers=tenant)
    assert "operator token" in _problem(forbidden, 403)
    raised = await client.patch(
        f"{ADMIN}/accounts/{DEMO.account}", json={"qps": 50}, headers=tenant
    )
    assert "operator token" in _problem(raised, 403)
    other = {"account": DEMO.other_account, "kind": "graph"}
    assert "manages account 'demo' only" in _problem(
        await client.post(f"{ADMIN}/keys", json=other, headers=tenant), 403
    )
    assert _problem(await client.get(f"{ADMIN}/audit?account=other", headers=tenant), 403)
    # Another account's space and keys are not there for this token.
    assert (
        await client.get(f"{ADMIN}/spaces/{DEMO.other_space}", headers=tenant)
    ).status_code == 404
    keys = (await client.get(f"{ADMIN}/keys", headers=tenant)).json()
    assert {key["account"] for key in keys} == {DEMO.account}
    other_key = f"ak:{DEMO.other_access_key_id}"
    assert (await client.get(f"{ADMIN}/keys/{other_key}", headers=tenant)).status_code == 404
    # Its own account it manages: a Graph token, audited under its name.
    own = {"account": DEMO.account, "kind": "graph", "label": "portal"}
    created = await client.post(f"{ADMIN}/keys", json=own, headers=tenant)
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whgr_")
    audit = (await client.get(f"{ADMIN}/audit", headers=tenant)).json()["entries"]
    assert [(e["actor"], e["action"]) for e in audit] == [
        ("admin-token:1 (demo-portal)", "key.create")
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/accounts", b"{not json", 400, "the body is not valid JSON"),
        ("POST", "/accounts", b"[]", 422, "invalid request body"),
        ("POST", "/accounts", b'{"name": ""}', 422, "name: String should match pattern"),
        ("POST", "/accounts", b'{"name": "a", "qps": 0}', 422, "qps: Input should be greater"),
        ("POST", "/accounts", b'{"name": "a", "qps": "5"}', 422, "qps: Input should be a valid"),
        ("POST", "/accounts", b'{"name": "a", "qpss": 5}', 422, "qpss: Extra inputs"),
        ("PATCH", "/accounts/demo", b"{}", 422, "nothing to change"),
        ("PATCH", "/accounts/demo", b'{"qps": null}', 422, "qps must not be null"),
        ("POST", "/spaces", b'{"id": "s", "account": "demo", "connection": "acme"}', 422,
         "connection: Extra inputs are not permitted"),
        ("POST", "/spaces", b'{"id": "s", "account": "demo", "upstream": "cams"}', 422,
         "upstream: Extra inputs are not permitted"),
        ("POST", "/spaces", b'{"id": "s", "account": "demo", "wabas": ["x"]}', 422,
         "wabas.0: String should match pattern"),
        ("POST", "/keys", b'{"account": "demo", "kind": "ssh"}', 422, "does not match any of"),
        ("POST", "/keys", b'{"account": "demo", "kind": "d360"}', 422,
         "d360.phone_number_id: Field required"),
        ("POST", "/keys", b'{"account": "demo", "kind": "access-key", "label": "x"}', 422,
         "access-key.label: Extra inputs"),
        ("POST", "/keys/ak:LTAI5tDemoKeyId/rotate", b'{"overlap_seconds": -1}', 422,
         "overlap_seconds: Input should be greater than or equal to 0"),
        ("POST", "/keys/ak:LTAI5tDemoKeyId/rotate", b'{"overlap_seconds": 1.5}', 422,
         "overlap_seconds: Input should be a valid integer"),
        ("GET", "/audit?limit=0", b"", 422, "limit must be within 1..1000"),
        ("GET", "/audit?limit=x", b"", 422, "limit must be an integer"),
        ("GET", "/keys?acount=demo", b"", 422, "unknown query parameter 'acount'"),
        ("GET", "/keys/nonsense", b"", 404, "no key 'nonsense'"),
        ("GET", "/keys/d360:abc", b"", 404, "no 360dialog key 'abc'"),
        ("POST", "/keys", b'{"account": "demo", "kind": "d360", "phone_number_id": "1"}', 404,
         "synced phone number of account 'demo'"),
        ("POST", "/accounts", b'{"name": "demo"}', 409, "account 'demo' already exists"),
        ("POST", "/spaces", b'{"id": "other-space", "account": "demo"}', 409,
         "space 'other-space' belongs to 'other', not 'demo'"),
        ("DELETE", "/spaces/demo-space/wabas/123", b"", 404, "no WABA '123'"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_4xx_that_says_what_is_wrong(
    running: RunningApp, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    headers = {**await _token(running, "ops"), "Content-Type": "application/json"}
    answer = await running.client.request(method, ADMIN + path, content=body, headers=headers)
    assert message in _problem(answer, status)
    if status == 422 and answer.json().get("details"):
        assert all({"loc", "msg"} == set(d) for d in answer.json()["details"])


async def test_the_openapi_document_lists_every_operation_and_needs_no_token(
    running: RunningApp,
) -> None:
    answer = await running.client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert ("POST", f"{ADMIN}/keys/{{key_id}}/rotate") in operations
    assert ("PATCH", f"{ADMIN}/accounts/{{name}}") in operations
    assert ("POST", f"{ADMIN}/connections/{{connection}}/check") in operations
    assert ("PUT", f"{ADMIN}/spaces/{{space_id}}/upstream") in operations
    assert len(operations) == 29
    create = document["paths"][f"{ADMIN}/keys"]["post"]["requestBody"]["content"]
    assert create["application/json"]["schema"]["discriminator"]["propertyName"] == "kind"
    assert {"NewKey", "Rotation", "Problem", "AuditPage"} <= set(document["components"]["schemas"])
