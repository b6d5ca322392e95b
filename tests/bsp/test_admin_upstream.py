"""A space's upstream set through the admin API: 360dialog at a second wahealth on loopback.

B's space is created and pointed at A's 360dialog dialect by API (the key write-only,
stored encrypted); from B's next start, B's 360dialog answers for it come from A.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.bsp._pair import B_D360_KEY, BILLING_KEY, BILLING_PHONE, a_settings

from wahealth.app import create_app
from wahealth.settings import Settings
from wahealth.testing import running_app
from wahealth.testing_server import serve_in_thread

ADMIN = "/api/v1/admin"
SPACE = "d360-space"


def _b_settings(tmp_path: Path) -> Settings:
    """B: an account and its keys; its spaces are made by API (none in the file)."""
    (tmp_path / "b").mkdir(exist_ok=True)
    return Settings.model_validate(
        {
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'b' / 'wahealth.db'}"},
            "security": {"master_key_file": str(tmp_path / "b" / "wahealth.key")},
            "cache": {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
            "monitor": {"enabled": False},
            "accounts": [
                {
                    "name": "bee",
                    "qps": 1000,
                    "d360_keys": [{"key": B_D360_KEY, "phone_number_id": BILLING_PHONE}],
                }
            ],
        }
    )


async def test_a_space_set_to_360dialog_by_api_answers_from_it_after_the_next_start(
    tmp_path: Path,
) -> None:
    with serve_in_thread(create_app(a_settings(tmp_path)), startup_timeout=30) as a:
        settings = _b_settings(tmp_path)
        async with running_app(settings) as b:
            _, operator = await b.components.admin_tokens.issue("operator")
            _, tenant = await b.components.admin_tokens.issue("bee-admin", account="bee")
            as_operator = {"Authorization": f"Bearer {operator}"}
            created = await b.client.post(
                f"{ADMIN}/spaces", json={"id": SPACE, "account": "bee"}, headers=as_operator
            )
            assert created.status_code == 201, created.text
            body: dict[str, Any] = {
                "upstream": "d360",
                "d360_channels": [
                    {
                        "api_key": BILLING_KEY,
                        "base_url": a.base_url,
                        "phone_number": "8613800000009",
                    }
                ],
            }
            refused = await b.client.put(
                f"{ADMIN}/spaces/{SPACE}/upstream",
                json=body,
                headers={"Authorization": f"Bearer {tenant}"},
            )
            mismatched = await b.client.put(
                f"{ADMIN}/spaces/{SPACE}/upstream",
                json={"upstream": "cams", "d360_channels": body["d360_channels"]},
                headers=as_operator,
            )
            unknown = await b.client.put(
                f"{ADMIN}/spaces/nowhere/upstream", json=body, headers=as_operator
            )
            put = await b.client.put(
                f"{ADMIN}/spaces/{SPACE}/upstream", json=body, headers=as_operator
            )
            audit = await b.client.get(f"{ADMIN}/audit", headers=as_operator)
            stored = await b.components.space_upstreams.all()
            # Nothing was asked of the BSP: the router is configured at start.
            before_restart = await b.client.get(
                "/health_status", headers={"D360-API-KEY": B_D360_KEY}
            )
        assert refused.status_code == 403
        assert mismatched.status_code == 422
        assert BILLING_KEY not in mismatched.text
        assert unknown.status_code == 404
        assert put.status_code == 200, put.text
        assert put.json() == {
            "space": SPACE,
            "upstream": "d360",
            "d360_channels": [{"base_url": a.base_url, "phone_number": "8613800000009"}],
            "cams": None,
            "takes_effect": "at the next start",
        }
        assert BILLING_KEY not in audit.text
        [entry] = [e for e in audit.json()["entries"] if e["action"] == "space.upstream"]
        assert (entry["target"], entry["account"]) == (f"space:{SPACE}", "bee")
        assert entry["details"] == {"upstream": "d360", "d360_channels": 1}
        [row] = stored
        assert (row.space_id, row.kind) == (SPACE, "d360")
        assert BILLING_KEY not in repr(row.settings)
        assert BILLING_KEY not in row.secrets_encrypted
        assert before_restart.status_code != 200

        async with running_app(settings) as b:
            answer = await b.client.get("/health_status", headers={"D360-API-KEY": B_D360_KEY})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-wahealth-source"] == "upstream"
    assert answer.json()["id"] == BILLING_PHONE
    assert answer.json()["health_status"]["can_send_message"] == "BLOCKED"


async def test_a_cams_upstream_by_api_never_answers_its_secret(tmp_path: Path) -> None:
    async with running_app(_b_settings(tmp_path)) as b:
        _, operator = await b.components.admin_tokens.issue("operator")
        as_operator = {"Authorization": f"Bearer {operator}"}
        await b.client.post(
            f"{ADMIN}/spaces", json={"id": "cams-space", "account": "bee"}, headers=as_operator
        )
        cams = {
            "endpoint": "127.0.0.1:9",
            "protocol": "http",
            "access_key_id": "LTAI-id",
            "access_key_secret": "cams-secret-value",
            "cust_space_id": "cs-1",
            "phone_numbers": ["8613800000001"],
            "templates": [{"code": "order_update", "language": "en"}],
        }
        put = await b.client.put(
            f"{ADMIN}/spaces/cams-space/upstream",
            json={"upstream": "cams", "cams": cams},
            headers=as_operator,
        )
        back = await b.client.put(
            f"{ADMIN}/spaces/cams-space/upstream", json={"upstream": "meta"}, headers=as_operator
        )
        stored_after_meta = await b.components.space_upstreams.all()
    assert put.status_code == 200, put.text
    assert "cams-secret-value" not in put.text
    shown = put.json()["cams"]
    assert shown["templates"] == [{"code": "order_update", "language": "en"}]
    assert (shown["access_key_id"], shown["qps"]) == ("LTAI-id", 5)
    assert back.json()["upstream"] == "meta"
    assert stored_after_meta == []
