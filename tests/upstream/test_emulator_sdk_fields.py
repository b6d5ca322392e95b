"""The emulator serves every field and edge the WhatsApp SDKs ask for, in Meta's shapes.

The field lists are the SDKs' own (pywa's `_api_fields()`), so a new pywa field the
emulator lacks fails here with the field named.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pywa.types.others import BusinessPhoneNumber, WhatsAppBusinessAccount
from pywa.types.templates import TemplateDetails
from tests.upstream.conftest import AUTH

PHONE = "106540352242922"
WABA = "102290129340398"
TEMPLATE = "2632273056924580"
ISSUE_PHONE_FIELDS = (
    "id",
    "health_status",
    "quality_rating",
    "messaging_limit_tier",
    "whatsapp_business_manager_messaging_limit",
    "throughput",
    "display_phone_number",
    "verified_name",
    "status",
    "name_status",
    "code_verification_status",
    "platform_type",
    "account_mode",
)
ISSUE_TEMPLATE_FIELDS = (
    "id",
    "name",
    "language",
    "status",
    "category",
    "quality_score",
    "rejected_reason",
    "health_status",
)


async def _get(http: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await http.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("node", "fields"),
    [
        (PHONE, BusinessPhoneNumber._api_fields()),
        (PHONE, ISSUE_PHONE_FIELDS),
        (WABA, WhatsAppBusinessAccount._api_fields()),
        (TEMPLATE, TemplateDetails._api_fields()),
        (TEMPLATE, ISSUE_TEMPLATE_FIELDS),
    ],
    ids=["pywa-phone", "phone", "pywa-waba", "pywa-template", "template"],
)
async def test_every_field_an_sdk_asks_for_exists(
    http: httpx.AsyncClient, node: str, fields: tuple[str, ...]
) -> None:
    body = await _get(http, f"/v21.0/{node}/", fields=",".join(fields))

    assert body["id"] == node
    assert set(body) <= set(fields) | {"id"}


async def test_phone_number_shapes(http: httpx.AsyncClient) -> None:
    body = await _get(http, f"/v21.0/{PHONE}", fields=",".join(ISSUE_PHONE_FIELDS))

    assert set(body) == set(ISSUE_PHONE_FIELDS)
    assert body["throughput"] == {"level": "STANDARD"}
    assert body["status"] == "CONNECTED"
    assert body["messaging_limit_tier"].startswith("TIER_")
    assert body["whatsapp_business_manager_messaging_limit"].startswith("TIER_")
    assert body["health_status"]["entities"][0]["id"] == PHONE


async def test_waba_shapes_pywa_needs(http: httpx.AsyncClient) -> None:
    body = await _get(
        http, f"/v21.0/{WABA}", fields=",".join(WhatsAppBusinessAccount._api_fields())
    )

    account = WhatsAppBusinessAccount.from_dict(body)
    assert account.timezone_id == body["timezone_id"]
    assert account.owner_business_info is not None
    assert account.owner_business_info.id == "506914307656634"


async def test_template_shapes(http: httpx.AsyncClient) -> None:
    body = await _get(
        http, f"/v21.0/{TEMPLATE}", fields="components,parameter_format,quality_score"
    )

    assert [c["type"] for c in body["components"]] == ["HEADER", "BODY", "FOOTER"]
    assert body["parameter_format"] == "POSITIONAL"
    assert set(body["quality_score"]) == {"score", "date"}


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("true", {"total_count": 1}),
        (
            "total_count,message_template_count,message_template_limit,are_translations_complete",
            {
                "total_count": 1,
                "message_template_count": 1,
                "message_template_limit": 6000,
                "are_translations_complete": True,
            },
        ),
    ],
)
async def test_template_summary(
    http: httpx.AsyncClient, summary: str, expected: dict[str, Any]
) -> None:
    body = await _get(http, f"/v21.0/{WABA}/message_templates", fields="id", summary=summary)

    assert body["summary"] == expected


async def test_an_unknown_summary_field_is_an_error(http: httpx.AsyncClient) -> None:
    response = await http.get(
        f"/v21.0/{WABA}/message_templates", params={"summary": "bogus"}, headers=AUTH
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


@pytest.mark.parametrize(
    ("status", "found"),
    [("PENDING", 1), ("APPROVED,PENDING", 1), ('["APPROVED"]', 0), ('["PAUSED","PENDING"]', 1)],
)
async def test_template_status_filter_takes_lists(
    http: httpx.AsyncClient, status: str, found: int
) -> None:
    body = await _get(http, f"/v21.0/{WABA}/message_templates", fields="id", status=status)

    assert len(body["data"]) == found


async def test_phone_numbers_summary(http: httpx.AsyncClient) -> None:
    body = await _get(http, f"/v21.0/{WABA}/phone_numbers", fields="id", summary="true")

    assert body["summary"] == {"total_count": 2}
