"""The demo split over two spaces, for the public views: what each may show of the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wahealth.settings import Settings
from wahealth.testing import DEMO, RunningApp, demo_settings

# demo-space holds WABA 102290129340398 and its nodes; other-space holds WABA
# 299399000000001 (no payment method: BLOCKED) and its number.
DEMO_WABA = "102290129340398"
AVAILABLE_PHONE = "106540352242922"
LIMITED_PHONE = "105154286024403"
BLOCKED_TEMPLATE = "2632273056924580"
OTHER_WABA = "299399000000001"
OTHER_PHONE = "106540352242999"
DEMO_NODES = (AVAILABLE_PHONE, LIMITED_PHONE, BLOCKED_TEMPLATE)
BLOCKED = {
    "can_send_message": "BLOCKED",
    "errors": [
        {
            "error_code": 141006,
            "error_description": "Meta's own words, internal ref 7731",
            "possible_solution": "internal runbook 12",
        }
    ],
}


def split_settings(
    tmp_path: Path, demo: dict[str, Any] | None = None, other: dict[str, Any] | None = None
) -> Settings:
    """Demo settings with each WABA in its own space; extra fields per space."""
    spaces = [
        {"id": DEMO.space, "account": DEMO.account, "wabas": [DEMO_WABA], **(demo or {})},
        {"id": DEMO.other_space, "account": DEMO.other_account, "wabas": [OTHER_WABA],
         **(other or {})},
    ]  # fmt: skip
    return demo_settings(tmp_path, spaces=spaces)


async def refresh(running: RunningApp, *node_ids: str) -> None:
    """Fetch the nodes from the emulator now and wait until their reports are stored."""
    for node_id in node_ids:
        await running.components.health.refresh(node_id, cause="manual")
    await running.components.health.drain()


async def set_health(running: RunningApp, node_id: str, health: dict[str, Any]) -> None:
    answer = await running.client.put(f"/_emulator/nodes/{node_id}/health", json=health)
    assert answer.status_code == 200, answer.text
