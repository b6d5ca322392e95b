"""Texts Meta left out, and CAMS notices, through the whole app after a change at Meta.

The emulator's admin API changes a node (as Meta would) and posts the webhook; the app
refreshes, and each dialect answers the new state. Meta's raw report is what storage keeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.faults._matrix import STALE_MESSAGE, add_fault
from tests.fuzz._cams import encode, signed_v1
from tests.fuzz._wire import cams_answer, d360_answer, graph_answer
from tests.gateway._wire import LIMITED_INFO, PHONE_LIMITED, PHONE_OK

from wahealth.domain.catalog import describe, notice, texts
from wahealth.domain.languages import Language
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.upstream.emulator.app import emulator_state


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningApp]:
    settings = demo_settings(tmp_path)
    for account in settings.accounts:
        account.qps = 1_000_000
    async with running_app(settings) as app:
        yield app


async def _settle(running: RunningApp) -> None:
    """Wait for the emulator's webhook, the refresh it causes and the recording."""
    emulator = running.components.emulator
    assert emulator is not None
    await emulator_state(emulator).webhooks.drain()
    await running.components.monitor.webhooks.drain()
    await running.components.health.drain()


async def _change(running: RunningApp, node_id: str, health: dict[str, Any]) -> None:
    changed = await running.client.put(f"/_emulator/nodes/{node_id}/health", json=health)
    assert changed.status_code == 200, changed.text
    await _settle(running)


def _language(accept_language: str | None) -> dict[str, str]:
    return {} if accept_language is None else {"Accept-Language": accept_language}


async def _cams(
    client: httpx.AsyncClient, phone_number: str, accept_language: str | None = None
) -> dict[str, Any]:
    business = {"NodeType": "phone", "PhoneNumber": phone_number, "CustSpaceId": DEMO.space}
    response = await client.get(
        "/?" + encode(signed_v1("GET", business)), headers=_language(accept_language)
    )
    return cams_answer(response)


async def _graph(
    client: httpx.AsyncClient, node_id: str, accept_language: str | None = None
) -> dict[str, Any]:
    response = await client.get(
        f"/v21.0/{node_id}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}", **_language(accept_language)},
    )
    return graph_answer(response)


async def _d360(client: httpx.AsyncClient, accept_language: str | None = None) -> dict[str, Any]:
    response = await client.get(
        "/health_status", headers={"D360-API-KEY": DEMO.d360_key, **_language(accept_language)}
    )
    return d360_answer(response)


@pytest.mark.parametrize(
    ("accept_language", "language"), [(None, Language.EN), ("id", Language.ID), ("zh", Language.ZH)]
)
async def test_texts_meta_left_out_are_filled_in_every_dialect(
    running: RunningApp, accept_language: str | None, language: Language
) -> None:
    await _change(
        running, PHONE_OK, {"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]}
    )
    found = describe(141006, language)
    assert found is not None
    description, solution = found
    client = running.client

    for answer in (
        await _graph(client, PHONE_OK, accept_language),
        await _d360(client, accept_language),
    ):
        phone = answer["health_status"]["entities"][0]
        assert (phone["id"], phone["can_send_message"]) == (PHONE_OK, "BLOCKED")
        assert phone["errors"] == [
            {"error_code": 141006, "error_description": description, "possible_solution": solution}
        ]
    cams = await _cams(client, "8613800000001", accept_language)
    assert cams["Data"]["Entities"][0]["Errors"] == [
        {"ErrorCode": "141006", "ErrorDescription": description, "PossibleSolution": solution}
    ]
    # Storage keeps what Meta sent: the code alone.
    stored = await running.components.history.get(PHONE_OK)
    assert stored is not None
    assert stored.payload is not None
    assert stored.payload["health_status"]["entities"][0]["errors"] == [{"error_code": 141006}]


async def test_an_unknown_code_keeps_meta_text_in_every_language(running: RunningApp) -> None:
    error = {"error_code": 141003, "error_description": "Something new at Meta."}
    await _change(running, PHONE_OK, {"can_send_message": "BLOCKED", "errors": [error]})
    for accept_language in (None, "id", "zh"):
        answer = await _graph(running.client, PHONE_OK, accept_language)
        assert answer["health_status"]["entities"][0]["errors"] == [error]


@pytest.mark.parametrize("language", [Language.EN, Language.ID])
async def test_a_stale_limited_answer_says_both_in_cams_message(
    running: RunningApp, language: Language
) -> None:
    client = running.client
    fresh = await _cams(client, "8613800000002", language.tag)
    reason = texts(language).info["display_name_pending"]
    assert fresh["Message"] == f"LIMITED: {reason}"

    # Meta fails from now on, then the number changes: its refresh fails, the old report is stale.
    await add_fault(client, status=500, count=1000)
    await _change(running, PHONE_LIMITED, {"can_send_message": "AVAILABLE"})
    stale = await _cams(client, "8613800000002", language.tag)

    notices = stale["Message"].split(" | ")
    assert len(notices) == 2, stale["Message"]
    assert notices[0].startswith(notice("stale", language, fetched_at=""))
    assert notices[1] == f"LIMITED: {reason}"
    assert stale["Data"]["CanSendMessage"] == "LIMITED"
    if language is Language.EN:
        assert notices[0].startswith(STALE_MESSAGE)
        assert reason == LIMITED_INFO
