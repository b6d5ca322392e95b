"""Meta webhooks signed by a connection's app: each connection's app secret verifies them,
beside `meta_webhooks.app_secret`; any other signature is refused, nothing recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from tests.connections._scenario import ACME_SECRET, ACME_WABA, two_business_settings

from wahealth.testing import running_app

GLOBAL_SECRET = "the-deployment-app-secret"


def _signed(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def _notification(time: int) -> bytes:
    value = {"event": "FLAGGED", "ban_info": {}}
    entry = {
        "id": ACME_WABA,
        "time": time,
        "changes": [{"field": "account_update", "value": value}],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


async def test_a_connections_app_secret_verifies_its_webhooks(tmp_path: Path) -> None:
    settings = two_business_settings(
        tmp_path,
        meta_webhooks={"app_secret": GLOBAL_SECRET, "verify_token": "verify"},
        upstream={
            **two_business_settings(tmp_path).upstream.model_dump(),
            "emulator_webhooks": False,
        },
    )
    async with running_app(settings) as running:
        by_acme = _notification(1780304401)
        by_global = _notification(1780304402)
        by_stranger = _notification(1780304403)
        answers = [
            await running.client.post("/webhooks/meta", content=body, headers=_signed(body, secret))
            for body, secret in (
                (by_acme, ACME_SECRET),
                (by_global, GLOBAL_SECRET),
                (by_stranger, "someone-elses-secret"),
            )
        ]
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert "does not match" in answers[2].json()["error"]
