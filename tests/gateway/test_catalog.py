"""Phone numbers as users write them resolve through the catalog; misses re-sync it sparingly.

The emulator cannot add a phone number while it runs, so "a number added at Meta after
start becomes known" is not exercised here; what is: a miss re-syncs the space's catalog
from Meta at most once per `catalog.min_sync_interval_seconds`.
"""

from __future__ import annotations

import json

import pytest
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from tests.gateway._served import ServedGateway
from tests.gateway._wire import PHONE_LIMITED, WABA_BLOCKED, WABA_OK

from wahealth.testing import DEMO


def _phone(gateway: ServedGateway, phone_number: str) -> tuple[str, str]:
    """(PhoneNumber echoed, node id answered) for a CAMS phone query."""
    response = gateway.cams().get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(
            node_type="phone", phone_number=phone_number, cust_space_id=DEMO.space
        )
    )
    wire = json.loads(gateway.exchange(response.headers["x-request-id"]).response_body)
    entity = wire["Data"]["Entities"][0]
    return entity["PhoneNumber"], entity["Id"]


@pytest.mark.parametrize(
    "written", ["8613800000002", "+86 138 0000 0002", "+8613800000002", "86-138-0000-0002"]
)
def test_phone_number_string_resolves_to_its_meta_id(gateway: ServedGateway, written: str) -> None:
    assert _phone(gateway, written) == (written, PHONE_LIMITED)


def _sync_calls(gateway: ServedGateway) -> dict[str, int]:
    by_path: dict[str, int] = gateway.emulator_calls()["by_path"]
    return {path: count for path, count in by_path.items() if path.count("/") == 2}


def test_unknown_numbers_resync_the_catalog_at_most_once_per_interval(
    gateway: ServedGateway,
) -> None:
    gateway.reset_emulator_calls()
    codes = []
    for unknown in ("8613899999991", "8613899999992", "8613899999993"):
        with pytest.raises(ClientException) as info:
            _phone(gateway, unknown)
        codes.append((info.value.code, info.value.status_code))

    assert codes == [("NotExists.PhoneNumber", 404)] * 3
    # The first miss re-read both WABAs of the space; the next ones, within the interval, did not.
    assert _sync_calls(gateway) == {
        f"/{WABA_OK}/phone_numbers": 1,
        f"/{WABA_OK}/message_templates": 1,
        f"/{WABA_BLOCKED}/phone_numbers": 1,
        f"/{WABA_BLOCKED}/message_templates": 1,
    }
    # Known numbers still resolve, without any further sync.
    assert _phone(gateway, "8613800000002") == ("8613800000002", PHONE_LIMITED)
    assert sum(_sync_calls(gateway).values()) == 4
