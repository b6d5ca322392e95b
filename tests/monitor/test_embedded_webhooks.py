"""The embedded default: the built-in emulator's Meta webhooks reach the gateway by themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wahealth.domain.records import TransitionCause
from wahealth.settings import Settings
from wahealth.storage.health import HealthRepository
from wahealth.testing import running_app


async def test_a_health_change_in_the_embedded_emulator_is_recorded_via_webhook(
    tmp_path: Path,
) -> None:
    settings = Settings.model_validate(
        {
            "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}"},
            "security": {"master_key_file": str(tmp_path / "wahealth.key")},
            "monitor": {"enabled": False},  # no polling: only the webhook can tell us
        }
    )
    assert settings.embedded
    async with running_app(settings) as running:
        history = HealthRepository(running.components.sessions)
        changed = await running.client.put(
            "/_emulator/nodes/106540352242922/health",
            json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
        )
        assert changed.status_code == 200
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            transitions = await history.history("106540352242922", limit=10)
            if transitions and transitions[0].cause is not TransitionCause.SYNC:
                break  # the start's sync saw it first; this is the webhook's change
            assert asyncio.get_running_loop().time() < deadline, "no transition recorded"
            await asyncio.sleep(0.05)
        assert transitions[0].cause is TransitionCause.WEBHOOK
        assert transitions[0].after == "BLOCKED"
        assert transitions[0].error_codes == ("141006",)
