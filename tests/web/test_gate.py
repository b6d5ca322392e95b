"""`GET /api/v1/gate` end to end: verdicts for every demo node and the template, errors, limits."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from wahealth.core.gate import GateAnswer
from wahealth.domain import Status
from wahealth.domain.gate import Reason, Verdict
from wahealth.settings import Settings
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.web.gate import GateRenderer, gate_json

GATE = "/api/v1/gate"
AUTH = {"Authorization": f"Bearer {DEMO.graph_token}"}
SPACE = DEMO.space
TEMPLATE_ID = "2632273056924580"
DISPLAY_NAME = (
    "Your display name has not been approved yet. Your message limit will increase after "
    "the display name is approved."
)
PAYMENT = {
    "entity_type": "WABA",
    "entity_id": "299399000000001",
    "error_code": "141006",
    "description": "There is an error with the payment method.",
    "solution": "There was an error with your payment method. "
    "Please add a new payment method to the account.",
}
TEMPLATE_BLOCKED = {
    "entity_type": "MESSAGE_TEMPLATE",
    "entity_id": TEMPLATE_ID,
    "error_code": "141002",
    "description": "Message templates can only be sent out if they are approved.",
    "solution": "Edit or appeal the message template review decision.",
}
TEMPLATE_PENDING = {
    "entity_type": "MESSAGE_TEMPLATE",
    "entity_id": TEMPLATE_ID,
    "error_code": "TEMPLATE_NOT_APPROVED",
    "description": "The message template's status is PENDING: only APPROVED templates can be sent.",
    "solution": "Wait for Meta's review of the template to finish; only approved templates send.",
}
LIMITED = {
    "entity_type": "PHONE_NUMBER",
    "entity_id": "105154286024403",
    "error_code": None,
    "description": DISPLAY_NAME,
    "solution": None,
}
# number → (phone number id, health, reasons) in the demo scenario
PHONES: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    "8613800000001": ("106540352242922", "AVAILABLE", []),
    "8613800000002": ("105154286024403", "LIMITED", [LIMITED]),
    "8613800000009": ("106540352242999", "BLOCKED", [PAYMENT]),
}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def gate_settings(tmp_path: Path, qps: int = 10_000, **sections: Any) -> Settings:
    """The demo settings, the demo account at `qps`."""
    accounts = [
        {"name": DEMO.account, "qps": qps, "graph_tokens": [{"token": DEMO.graph_token}]},
        {"name": DEMO.other_account, "qps": 5, "graph_tokens": [{"token": DEMO.other_graph_token}]},
    ]
    return demo_settings(tmp_path, accounts=accounts, **sections)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with running_app(gate_settings(tmp_path)) as app:
        yield app


async def gate(running: RunningApp, **params: str) -> httpx.Response:
    return await running.client.get(GATE, params={"space": SPACE, **params}, headers=AUTH)


def verdict_of(answer: httpx.Response) -> dict[str, Any]:
    """The body, its moment and age checked for shape and then left out."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert set(body) == {
        "allow", "status", "reasons", "nodes", "fetched_at", "age_seconds", "stale",
    }  # fmt: skip
    assert ISO_UTC.fullmatch(body.pop("fetched_at"))
    age = body.pop("age_seconds")
    assert isinstance(age, float | int)
    assert 0 <= age < 60
    return body


@pytest.mark.parametrize("number", sorted(PHONES))
@pytest.mark.parametrize("by_id", [False, True], ids=["by-number", "by-id"])
async def test_every_demo_number_alone_and_strict(
    running: RunningApp, number: str, by_id: bool
) -> None:
    phone_id, status, reasons = PHONES[number]
    asked = {"phone_number_id": phone_id} if by_id else {"phone_number": number}
    expected = {"status": status, "reasons": reasons, "nodes": [phone_id], "stale": False}
    lenient, strict = (
        verdict_of(await gate(running, **asked)),
        verdict_of(await gate(running, **asked, strict="true")),
    )
    assert lenient == {"allow": status != "BLOCKED", **expected}
    assert strict == {"allow": status == "AVAILABLE", **expected}


@pytest.mark.parametrize("number", sorted(PHONES))
@pytest.mark.parametrize("by_id", [False, True], ids=["by-name", "by-id"])
async def test_every_demo_number_with_the_pending_template_is_denied(
    running: RunningApp, number: str, by_id: bool
) -> None:
    phone_id, _, phone_reasons = PHONES[number]
    asked = (
        {"template_id": TEMPLATE_ID} if by_id else {"template": "order_update", "language": "en"}
    )
    for strict in ("false", "true"):
        body = verdict_of(await gate(running, phone_number=number, strict=strict, **asked))
        assert body == {
            "allow": False,
            "status": "BLOCKED",
            "reasons": [*phone_reasons, TEMPLATE_BLOCKED, TEMPLATE_PENDING],
            "nodes": [phone_id, TEMPLATE_ID],
            "stale": False,
        }


SCENARIO_TEMPLATES = """
[[templates]]
id = "2632273056924001"
waba = "102290129340398"
name = "shipping_notice"
language = "en"
status = "APPROVED"

[[templates]]
id = "2632273056924002"
waba = "102290129340398"
name = "spring_sale"
language = "en"
status = "PAUSED"
category = "MARKETING"
"""


@pytest.fixture
async def approved(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The demo scenario plus an approved, healthy template and a paused (healthy) one."""
    demo = Path(__file__).parents[2] / "src/wahealth/upstream/emulator/demo.toml"
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(demo.read_text(encoding="utf-8") + SCENARIO_TEMPLATES, encoding="utf-8")
    settings = gate_settings(tmp_path, upstream={"kind": "emulator", "scenario": str(scenario)})
    async with running_app(settings) as app:
        yield app


async def test_an_approved_healthy_template_is_let_through(approved: RunningApp) -> None:
    asked = {"template": "shipping_notice", "language": "en"}
    assert verdict_of(await gate(approved, phone_number="8613800000001", **asked)) == {
        "allow": True,
        "status": "AVAILABLE",
        "reasons": [],
        "nodes": ["106540352242922", "2632273056924001"],
        "stale": False,
    }
    # LIMITED passes with its reasons; strict refuses it.
    limited = verdict_of(await gate(approved, phone_number="8613800000002", **asked))
    assert (limited["allow"], limited["status"], limited["reasons"]) == (True, "LIMITED", [LIMITED])
    strict = verdict_of(await gate(approved, phone_number="8613800000002", strict="1", **asked))
    assert (strict["allow"], strict["status"]) == (False, "LIMITED")


async def test_a_paused_template_is_refused_though_meta_calls_it_available(
    approved: RunningApp,
) -> None:
    body = verdict_of(
        await gate(approved, phone_number="8613800000001", template_id="2632273056924002")
    )
    assert (body["allow"], body["status"]) == (False, "AVAILABLE")
    (reason,) = body["reasons"]
    assert reason["entity_id"] == "2632273056924002"
    assert reason["error_code"] == "TEMPLATE_NOT_APPROVED"
    assert "PAUSED" in reason["description"]
    assert "paused" in reason["solution"]


async def test_answers_come_from_the_cache_with_one_upstream_call_per_node(
    running: RunningApp,
) -> None:
    client = running.client
    await client.delete("/_emulator/calls")
    asked = {"phone_number": "8613800000002", "template": "order_update", "language": "en"}
    answers = await asyncio.gather(*(gate(running, **asked) for _ in range(20)))
    assert {answer.status_code for answer in answers} == {200}
    again = verdict_of(await gate(running, **asked))
    assert again["nodes"] == ["105154286024403", TEMPLATE_ID]
    calls = (await client.get("/_emulator/calls")).json()
    assert calls["by_node"] == {"105154286024403": 1, TEMPLATE_ID: 1}


async def test_each_gate_call_counts_once_against_the_accounts_limit(tmp_path: Path) -> None:
    async with running_app(gate_settings(tmp_path, qps=3)) as app:
        asked = {"phone_number": "8613800000001", "template": "order_update", "language": "en"}
        answers = [await gate(app, **asked) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        throttled = await gate(app, **asked)
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "1"
        assert throttled.json()["error"].startswith("rate limit exceeded")


async def test_bad_parameters_count_against_the_limit_too(tmp_path: Path) -> None:
    async with running_app(gate_settings(tmp_path, qps=2)) as app:
        assert (await gate(app)).status_code == 400
        assert (await gate(app, phone_number="x")).status_code == 400
        assert (await gate(app, phone_number="8613800000001")).status_code == 429


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give one of phone_number and phone_number_id"),
        (
            {"phone_number": "1", "phone_number_id": "1"},
            "give one of phone_number and phone_number_id",
        ),
        ({"phone_number": "no digits"}, "phone_number must be a phone number (at most 15 digits)"),
        ({"phone_number": "1" * 16}, "phone_number must be a phone number (at most 15 digits)"),
        ({"phone_number_id": "10654abc"}, "phone_number_id must be a Meta id (digits only)"),
        ({"phone_number_id": "1", "template": "order_update"}, "template and language go together"),
        ({"phone_number_id": "1", "language": "en"}, "template and language go together"),
        (
            {"phone_number_id": "1", "template_id": "2", "template": "a", "language": "en"},
            "give template with language, or template_id, not both",
        ),
        (
            {"phone_number_id": "1", "template_id": "x"},
            "template_id must be a Meta id (digits only)",
        ),
        (
            {"phone_number_id": "1", "template": "a", "language": "e n"},
            "language must be a language",
        ),
        ({"phone_number_id": "1", "strict": "maybe"}, "strict must be true or false"),
    ],
)
async def test_bad_input_is_a_400_that_says_why(
    running: RunningApp, params: dict[str, str], message: str
) -> None:
    answer = await gate(running, **params)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message)


async def test_missing_or_repeated_space_is_a_400(running: RunningApp) -> None:
    client = running.client
    missing = await client.get(GATE, params={"phone_number": "8613800000001"}, headers=AUTH)
    assert (missing.status_code, missing.json()) == (400, {"error": "space is required"})
    twice = await client.get(
        f"{GATE}?space={SPACE}&space={SPACE}&phone_number=8613800000001", headers=AUTH
    )
    assert (twice.status_code, twice.json()) == (400, {"error": "space is given more than once"})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"space": "no-such-space", "phone_number": "8613800000001"},
         "space 'no-such-space' is not known to this account"),
        ({"space": DEMO.other_space, "phone_number": "8613800000001"},
         "space 'other-space' is not known to this account"),
        ({"phone_number": "8613899999999"}, "phone number 8613899999999 is not in space demo-space"),
        ({"phone_number_id": "999999999"}, "phone number id 999999999 is not in space 'demo-space'"),
        ({"phone_number_id": TEMPLATE_ID},
         "node 2632273056924580 is not a phone number of space 'demo-space'"),
        ({"phone_number": "8613800000001", "template": "nope", "language": "en"},
         "template nope (en) is not in space demo-space"),
        ({"phone_number": "8613800000001", "template": "order_update", "language": "fr"},
         "template order_update (fr) is not in space demo-space"),
        ({"phone_number": "8613800000001", "template_id": "106540352242922"},
         "node 106540352242922 is not a template of space 'demo-space'"),
        ({"phone_number": "8613800000001", "template_id": "123"},
         "template id 123 is not in space 'demo-space'"),
    ],
)  # fmt: skip
async def test_unknown_space_number_or_template_is_a_404_that_names_it(
    running: RunningApp, params: dict[str, str], message: str
) -> None:
    answer = await running.client.get(GATE, params={"space": SPACE, **params}, headers=AUTH)
    assert (answer.status_code, answer.json()) == (404, {"error": message})


async def test_a_space_of_another_account_is_not_found_for_its_token(running: RunningApp) -> None:
    answer = await running.client.get(
        GATE,
        params={"space": SPACE, "phone_number_id": "106540352242922"},
        headers={"Authorization": f"Bearer {DEMO.other_graph_token}"},
    )
    assert answer.status_code == 404
    assert answer.json() == {"error": "space 'demo-space' is not known to this account"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic x"}]
)
async def test_without_a_valid_token_it_is_401_and_says_nothing_else(
    running: RunningApp, headers: dict[str, str]
) -> None:
    answer = await running.client.get(GATE, params={"space": "whatever"}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="wahealth"'
    assert set(answer.json()) == {"error"}


async def test_meta_down_with_nothing_cached_is_503_with_retry_after(running: RunningApp) -> None:
    await running.client.post("/_emulator/faults", json={"status": 500, "count": 50})
    answer = await gate(running, phone_number="8613800000001")
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) >= 1
    assert "106540352242922" in answer.json()["error"]


async def test_meta_down_serves_the_last_report_marked_stale(tmp_path: Path) -> None:
    settings = gate_settings(
        tmp_path, cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}
    )
    async with running_app(settings) as app:
        first = verdict_of(await gate(app, phone_number="8613800000002"))
        assert first["stale"] is False
        await app.client.post("/_emulator/faults", json={"status": 500, "count": 50})
        stale = verdict_of(await gate(app, phone_number="8613800000002"))
        assert stale == {**first, "stale": True}


async def test_a_change_at_meta_changes_the_verdict_once_the_report_is_refetched(
    tmp_path: Path,
) -> None:
    settings = gate_settings(
        tmp_path, cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}
    )
    async with running_app(settings) as app:
        asked = {"phone_number": "8613800000001"}
        assert verdict_of(await gate(app, **asked))["allow"] is True
        changed = await app.client.put(
            "/_emulator/nodes/106540352242922/health",
            json={"can_send_message": "BLOCKED", "errors": [{"error_code": 141006}]},
        )
        assert changed.status_code == 200
        after = verdict_of(await gate(app, **asked))
        assert (after["allow"], after["status"]) == (False, "BLOCKED")
        assert after["reasons"] == [
            {**PAYMENT, "entity_type": "PHONE_NUMBER", "entity_id": "106540352242922"}
        ]


async def test_the_same_question_from_another_account_is_still_refused(running: RunningApp) -> None:
    params = {"space": SPACE, "phone_number": "8613800000001"}
    assert (await running.client.get(GATE, params=params, headers=AUTH)).status_code == 200
    other = {"Authorization": f"Bearer {DEMO.other_graph_token}"}
    refused = await running.client.get(GATE, params=params, headers=other)
    assert refused.status_code == 404


async def test_only_get_is_served_and_answers_carry_a_request_id(running: RunningApp) -> None:
    answer = await gate(running, phone_number="8613800000001")
    assert answer.headers["x-request-id"]
    posted = await running.client.post(GATE, params={"space": SPACE}, headers=AUTH)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"
    assert posted.json() == {"error": "POST is not allowed here; use GET"}


async def test_a_revoked_token_stops_opening_the_gate_within_two_seconds(
    running: RunningApp,
) -> None:
    asked = {"phone_number": "8613800000001", "template_id": TEMPLATE_ID}
    assert (await gate(running, **asked)).status_code == 200  # remembered now
    credentials = running.components.credentials
    (token,) = [
        c for c in await credentials.list_credentials(DEMO.account) if c.kind == "graph_token"
    ]
    assert await credentials.revoke_graph_token(int(token.id))
    revoked_at = time.monotonic()
    while (answer := await gate(running, **asked)).status_code == 200:
        assert time.monotonic() - revoked_at < 2.0, "the revoked token still opens the gate"
        await asyncio.sleep(0.05)
    assert answer.status_code == 401
    assert (await gate(running, **asked)).status_code == 401


@pytest.mark.parametrize("age", [0.0, 0.0004, 1.23456, 59.9999, 12345.678])
def test_the_rendered_answer_is_the_json_of_the_answer(age: float) -> None:
    fetched = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    tricky = Reason("WABA", "1", "X", 'says "age_seconds": 5 and \\ more', None)
    verdict = Verdict(False, Status.BLOCKED, (tricky,), ("1", "2"), fetched, stale=True)
    render = GateRenderer()
    for _ in range(2):  # rendered, then from its remembered parts
        answer = GateAnswer(verdict, age)
        assert render(answer) == orjson.dumps(gate_json(answer))
    assert json.loads(render(GateAnswer(verdict, age)))["age_seconds"] == round(age, 3)


PAYMENT_ID = {
    **PAYMENT,
    "description": "Terjadi kesalahan pada metode pembayaran.",
    "solution": "Terjadi kesalahan pada metode pembayaran Anda. Tambahkan metode pembayaran baru ke akun.",
}
PAYMENT_ZH = {
    **PAYMENT,
    "description": "付款方式有误。",
    "solution": "您的付款方式出现错误。请为该账号添加新的付款方式。",
}


@pytest.mark.parametrize(
    ("params", "headers", "reason", "served"),
    [
        ({"lang": "id"}, {}, PAYMENT_ID, "id"),
        ({}, {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}, PAYMENT_ZH, "zh-Hans"),
        ({"lang": "id"}, {"Accept-Language": "zh"}, PAYMENT_ID, "id"),  # lang= wins
        ({"lang": "fr"}, {"Accept-Language": "zh"}, PAYMENT, "en"),  # not served: English
        ({}, {"Accept-Language": "zh-TW"}, PAYMENT, "en"),
    ],
)
async def test_reasons_come_in_the_language_asked_for(
    running: RunningApp,
    params: dict[str, str],
    headers: dict[str, str],
    reason: dict[str, Any],
    served: str,
) -> None:
    answer = await running.client.get(
        GATE,
        params={"space": SPACE, "phone_number": "8613800000009", **params},
        headers={**AUTH, **headers},
    )
    assert answer.headers["content-language"] == served
    body = verdict_of(answer)
    assert (body["allow"], body["reasons"]) == (False, [reason])


async def test_a_limited_notice_is_translated_and_the_gates_own_reasons_stay_english(
    running: RunningApp,
) -> None:
    answer = await gate(running, phone_number="8613800000002", template_id=TEMPLATE_ID, lang="zh")
    reasons = verdict_of(answer)["reasons"]
    assert [r["description"] for r in reasons] == [
        "您的显示名称尚未获得批准。显示名称获批后，您的消息限额将会提高。",  # noqa: RUF001
        "消息模板只有在审核通过后才能发送。",
        TEMPLATE_PENDING["description"],
    ]
    english = verdict_of(await gate(running, phone_number="8613800000002", template_id=TEMPLATE_ID))
    assert english["reasons"] == [LIMITED, TEMPLATE_BLOCKED, TEMPLATE_PENDING]


async def test_a_flagged_number_is_refused_once_metas_webhook_says_so(tmp_path: Path) -> None:
    """Emulator PATCH → signed webhook → catalog status FLAGGED → the gate denies the number."""
    settings = gate_settings(tmp_path, meta_webhooks={"min_refresh_interval_seconds": 0})
    async with running_app(settings) as app:
        asked = {"phone_number": "8613800000001"}
        assert verdict_of(await gate(app, **asked))["allow"] is True
        changed = await app.client.patch(
            "/_emulator/nodes/106540352242922", json={"status": "FLAGGED"}
        )
        assert changed.status_code == 200, changed.text
        deadline = time.monotonic() + 10
        while True:
            body = verdict_of(await gate(app, **asked))
            if body["allow"] is False or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert (body["allow"], body["status"]) == (False, "AVAILABLE")
    (reason,) = body["reasons"]
    assert reason["entity_id"] == "106540352242922"
    assert reason["error_code"] == "PHONE_NUMBER_NOT_CONNECTED"
    assert "FLAGGED" in reason["description"]
