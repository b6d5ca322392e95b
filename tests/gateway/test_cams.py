"""CAMS GetWhatsappHealthStatus through the official, unmodified SDK against the served gateway."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_cams20200606.client import Client
from alibabacloud_cams20200606.models import (
    GetWhatsappHealthStatusRequest,
    GetWhatsappHealthStatusResponse,
)
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from tests.gateway._served import ServedGateway
from tests.gateway._wire import (
    APP_ID,
    BUSINESS_ID,
    CAMS_ENTITY_EXTENSIONS,
    LIMITED_INFO,
    PAYMENT_ERROR,
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    SEED_000_DATA_KEYS,
    SEED_000_ENTITY_KEYS,
    SEED_000_ERROR_KEYS,
    SEED_000_KEYS,
    TEMPLATE_ERROR,
    TEMPLATE_ID,
    WABA_BLOCKED,
    WABA_OK,
    cams_error,
    raw_request,
)

from wahealth.testing import DEMO


def _query(client: Client, **fields: Any) -> GetWhatsappHealthStatusResponse:
    fields.setdefault("cust_space_id", DEMO.space)
    response: GetWhatsappHealthStatusResponse = client.get_whatsapp_health_status(
        GetWhatsappHealthStatusRequest(**fields)
    )
    return response


def _refused(client: Client, **fields: Any) -> ClientException:
    with pytest.raises(ClientException) as info:
        _query(client, **fields)
    return info.value


def _entity(entity_type: str, status: str, **fields: Any) -> dict[str, Any]:
    """An entity as the SDK's to_map() shows it (it always lists Errors)."""
    return {"EntityType": entity_type, "CanSendMessage": status, "Errors": [], **fields}


_WABA_OK = _entity("WABA", "AVAILABLE", WabaId=WABA_OK, BusinessId=BUSINESS_ID)
_WABA_BLOCKED = _entity(
    "WABA", "BLOCKED", WabaId=WABA_BLOCKED, BusinessId=BUSINESS_ID, Errors=[PAYMENT_ERROR]
)
_BUSINESS = _entity("BUSINESS", "AVAILABLE", BusinessId=BUSINESS_ID)
_APP = _entity("APP", "AVAILABLE")

# (request fields, overall status, entities as to_map() shows them, node id queried)
DEMO_QUERIES: dict[str, tuple[dict[str, str], str, list[dict[str, Any]], str]] = {
    "phone-available": (
        {"node_type": "phone", "phone_number": "8613800000001"},
        "AVAILABLE",
        [
            _entity(
                "PHONE_NUMBER",
                "AVAILABLE",
                PhoneNumber="8613800000001",
                WabaId=WABA_OK,
                BusinessId=BUSINESS_ID,
            ),
            _WABA_OK,
            _BUSINESS,
            _APP,
        ],
        PHONE_OK,
    ),
    "phone-limited": (
        {"node_type": "phone", "phone_number": "8613800000002"},
        "LIMITED",
        [
            _entity(
                "PHONE_NUMBER",
                "LIMITED",
                PhoneNumber="8613800000002",
                WabaId=WABA_OK,
                BusinessId=BUSINESS_ID,
            ),
            _WABA_OK,
            _BUSINESS,
            _APP,
        ],
        PHONE_LIMITED,
    ),
    "phone-on-blocked-waba": (
        {"node_type": "phone", "phone_number": "8613800000009"},
        "BLOCKED",
        [
            _entity(
                "PHONE_NUMBER",
                "AVAILABLE",
                PhoneNumber="8613800000009",
                WabaId=WABA_BLOCKED,
                BusinessId=BUSINESS_ID,
            ),
            _WABA_BLOCKED,
            _BUSINESS,
            _APP,
        ],
        PHONE_ON_BLOCKED_WABA,
    ),
    "template-blocked": (
        {"node_type": "template", "template_code": "order_update", "language": "en"},
        "BLOCKED",
        [
            _entity(
                "MESSAGE_TEMPLATE",
                "BLOCKED",
                TemplateCode="order_update",
                Language="en",
                WabaId=WABA_OK,
                BusinessId=BUSINESS_ID,
                Errors=[TEMPLATE_ERROR],
            ),
            _WABA_OK,
            _BUSINESS,
            _APP,
        ],
        TEMPLATE_ID,
    ),
    "waba-available": (
        {"node_type": "waba", "waba_id": WABA_OK},
        "AVAILABLE",
        [_WABA_OK, _BUSINESS, _APP],
        WABA_OK,
    ),
    "waba-blocked": (
        {"node_type": "waba", "waba_id": WABA_BLOCKED},
        "BLOCKED",
        [_WABA_BLOCKED, _BUSINESS, _APP],
        WABA_BLOCKED,
    ),
}


@pytest.mark.parametrize("case", DEMO_QUERIES)
def test_each_node_type_answers_through_the_sdk(gateway: ServedGateway, case: str) -> None:
    fields, overall, entities, _ = DEMO_QUERIES[case]

    response = _query(gateway.cams(), **fields)

    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert response.body.to_map() == {
        "RequestId": request_id,
        "Code": "OK",
        # A LIMITED node's reasons reach SDK users in Message (docs/languages.md).
        "Message": f"LIMITED: {LIMITED_INFO}" if overall == "LIMITED" else "None",
        "AccessDeniedDetail": "None",
        "Success": True,
        "Data": {"CanSendMessage": overall, "Entities": entities},
    }
    assert response.body.success is True
    assert response.body.data.can_send_message == overall
    assert response.headers["x-acs-request-id"] == request_id


@pytest.mark.parametrize("case", DEMO_QUERIES)
def test_wire_json_has_seed_000_shape(gateway: ServedGateway, case: str) -> None:
    fields, overall, _, node_id = DEMO_QUERIES[case]

    response = _query(gateway.cams(), **fields)
    exchange = gateway.exchange(response.headers["x-request-id"])

    assert exchange.response_header("content-type") == b"application/json;charset=utf-8"
    wire: dict[str, Any] = json.loads(exchange.response_body)
    assert set(wire) == SEED_000_KEYS
    assert set(wire["Data"]) == SEED_000_DATA_KEYS
    assert wire["Success"] is True
    assert wire["Code"] == "OK"
    assert wire["Data"]["CanSendMessage"] == overall
    for entity in wire["Data"]["Entities"]:
        assert {"EntityType", "CanSendMessage", "Id"} <= set(entity)
        assert set(entity) <= SEED_000_ENTITY_KEYS | CAMS_ENTITY_EXTENSIONS, entity
        lists = {"Errors", "AdditionalInfo"}
        assert all(isinstance(value, str) for key, value in entity.items() if key not in lists)
        for error in entity.get("Errors", []):
            assert set(error) == SEED_000_ERROR_KEYS
            assert all(isinstance(value, str) for value in error.values())
    # The queried node comes first, by its Meta id; the chain ends with the app.
    assert wire["Data"]["Entities"][0]["Id"] == node_id
    assert wire["Data"]["Entities"][-1] == {
        "EntityType": "APP",
        "Id": APP_ID,
        "CanSendMessage": "AVAILABLE",
    }


def test_limited_phone_number_carries_its_additional_info_on_the_wire(
    gateway: ServedGateway,
) -> None:
    response = _query(gateway.cams(), node_type="phone", phone_number="8613800000002")

    wire = json.loads(gateway.exchange(response.headers["x-request-id"]).response_body)
    phone = wire["Data"]["Entities"][0]
    assert phone["CanSendMessage"] == "LIMITED"
    assert phone["AdditionalInfo"] == [LIMITED_INFO]
    assert "Errors" not in phone


def test_legacy_v1_signature_of_the_sdk_is_accepted(gateway: ServedGateway) -> None:
    client = Client(
        Config(
            access_key_id=DEMO.access_key_id,
            access_key_secret=DEMO.access_key_secret,
            endpoint=gateway.endpoint,
            protocol="http",
            signature_algorithm="v2",
        )
    )

    response = _query(client, node_type="waba", waba_id=WABA_BLOCKED)

    assert response.body.code == "OK"
    assert response.body.data.can_send_message == "BLOCKED"


@pytest.mark.parametrize(
    ("key_id", "secret", "space"),
    [
        (DEMO.access_key_id, DEMO.access_key_secret, DEMO.other_space),
        (DEMO.other_access_key_id, DEMO.other_access_key_secret, DEMO.space),
    ],
    ids=["own-key-foreign-space", "foreign-key-own-space"],
)
def test_space_of_another_account_is_forbidden(
    gateway: ServedGateway, key_id: str, secret: str, space: str
) -> None:
    error = _refused(
        gateway.cams(key_id, secret),
        node_type="phone",
        phone_number="8613800000001",
        cust_space_id=space,
    )

    assert error.code == "Forbidden.NoPermission"
    assert error.status_code == 403
    assert error.access_denied_detail
    assert json.loads(error.access_denied_detail)["AuthAction"] == "cams:GetWhatsappHealthStatus"
    assert gateway.exchange(error.request_id).status == 403


def test_unknown_space_is_forbidden_too(gateway: ServedGateway) -> None:
    error = _refused(gateway.cams(), node_type="waba", waba_id=WABA_OK, cust_space_id="nobody")

    assert (error.code, error.status_code) == ("Forbidden.NoPermission", 403)


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [
        ({"phone_number": "8613800000001"}, "NodeType"),
        (
            {"node_type": "phone", "phone_number": "8613800000001", "cust_space_id": None},
            "CustSpaceId",
        ),
        ({"node_type": "phone"}, "PhoneNumber"),
        ({"node_type": "phone", "phone_number": "   "}, "PhoneNumber"),
        ({"node_type": "template", "language": "en"}, "TemplateCode"),
        ({"node_type": "template", "template_code": "order_update"}, "Language"),
        ({"node_type": "waba"}, "WabaId"),
    ],
)
def test_missing_parameter(gateway: ServedGateway, fields: dict[str, Any], parameter: str) -> None:
    error = _refused(gateway.cams(), **fields)

    assert error.code == "MissingParameter"
    assert error.status_code == 400
    assert f'"{parameter}"' in error.message


@pytest.mark.parametrize("node_type", ["bogus", "PHONE", "phone,waba"])
def test_invalid_node_type(gateway: ServedGateway, node_type: str) -> None:
    error = _refused(gateway.cams(), node_type=node_type, waba_id=WABA_OK)

    assert (error.code, error.status_code) == ("InvalidParameter", 400)
    assert "NodeType" in error.message


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"node_type": "phone", "phone_number": "8613899999999"}, "NotExists.PhoneNumber"),
        ({"node_type": "phone", "phone_number": "no digits"}, "NotExists.PhoneNumber"),
        (
            {"node_type": "template", "template_code": "no_such_template", "language": "en"},
            "NotExists.Template",
        ),
        (
            {"node_type": "template", "template_code": "order_update", "language": "fr"},
            "NotExists.Template",
        ),
        ({"node_type": "waba", "waba_id": "123456789"}, "NotExists.WabaId"),
    ],
)
def test_unknown_node_is_not_found(
    gateway: ServedGateway, fields: dict[str, Any], code: str
) -> None:
    error = _refused(gateway.cams(), **fields)

    assert (error.code, error.status_code) == (code, 404)


def test_wabas_of_other_spaces_are_not_found_in_this_one(gateway: ServedGateway) -> None:
    client = gateway.cams(DEMO.other_access_key_id, DEMO.other_access_key_secret)

    error = _refused(client, node_type="waba", waba_id=WABA_OK, cust_space_id=DEMO.other_space)

    assert (error.code, error.status_code) == ("NotExists.WabaId", 404)


def test_wrong_secret_is_signature_does_not_match(gateway: ServedGateway) -> None:
    error = _refused(gateway.cams(secret="not-the-secret"), node_type="waba", waba_id=WABA_OK)

    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)
    assert "not-the-secret" not in error.message
    assert DEMO.access_key_secret not in str(error.data)


def test_unknown_access_key_is_not_found(gateway: ServedGateway) -> None:
    error = _refused(
        gateway.cams(key_id="LTAI5tNobodyHasThisKey"), node_type="waba", waba_id=WABA_OK
    )

    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)


def test_replayed_request_is_refused(gateway: ServedGateway) -> None:
    response = _query(gateway.cams(), node_type="waba", waba_id=WABA_OK)
    captured = gateway.exchange(response.headers["x-request-id"])
    assert captured.header("x-acs-signature-nonce")
    headers = b"".join(
        name + b": " + value + b"\r\n"
        for name, value in captured.headers
        if name.lower() != b"connection"
    )
    replay = (
        captured.method.encode()
        + b" "
        + captured.raw_path
        + b"?"
        + captured.query_string
        + b" HTTP/1.1\r\n"
        + headers
        + b"Connection: close\r\n\r\n"
    )

    answer = raw_request(gateway.server.host, gateway.server.port, replay)

    assert answer.status == 400
    cams_error(answer.body, "SignatureNonceUsed", answer.headers["x-request-id"])


def test_request_id_is_the_same_in_body_and_headers(gateway: ServedGateway) -> None:
    ok = _query(gateway.cams(), node_type="waba", waba_id=WABA_OK)
    refused = _refused(gateway.cams(), node_type="waba")

    assert ok.body.request_id == ok.headers["x-request-id"] == ok.headers["x-acs-request-id"]
    exchange = gateway.exchange(refused.request_id)
    assert exchange.response_header("x-acs-request-id") == refused.request_id.encode()
    assert ok.body.request_id != refused.request_id


def test_a_remembered_query_never_serves_another_account(gateway: ServedGateway) -> None:
    """The same query string from another account's key, right after the owner's answer,
    is still refused: what a call asks is remembered per verified principal only."""
    asked = {"node_type": "phone", "phone_number": "8613800000001", "cust_space_id": DEMO.space}
    owner = gateway.cams().get_whatsapp_health_status(GetWhatsappHealthStatusRequest(**asked))
    assert owner.body.code == "OK"

    error = _refused(gateway.cams(DEMO.other_access_key_id, DEMO.other_access_key_secret), **asked)
    assert (error.code, error.status_code) == ("Forbidden.NoPermission", 403)

    forged = _refused(gateway.cams(DEMO.access_key_id, "not-the-secret"), **asked)
    assert (forged.code, forged.status_code) == ("SignatureDoesNotMatch", 400)
