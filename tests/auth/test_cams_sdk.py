"""The official Alibaba Cloud SDK, unmodified, against our signature verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_cams20200606.client import Client
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.utils import Utils
from tests.auth.cams_stub import DISABLED_KEY_ID, SECRET, CamsStub, Captured

MakeClient = Callable[..., Client]

DEFAULT_FIELDS = {"cust_space_id": "C123", "node_type": "phone", "phone_number": "8613800000000"}
SPECIAL = {
    "cust_space_id": "space 1+2",
    "node_type": "template",
    "phone_number": "+86 138*~/é",
    "template_code": "订单 update~*/+",
    "language": "en_US",
    "waba_id": "W/1 2+3*~é",
    "owner_id": 42,
}
SPECIAL_PARAMS = {
    "CustSpaceId": "space 1+2",
    "NodeType": "template",
    "PhoneNumber": "+86 138*~/é",
    "TemplateCode": "订单 update~*/+",
    "Language": "en_US",
    "WabaId": "W/1 2+3*~é",
    "OwnerId": "42",
}
V1_PROTOCOL_PARAMS = {
    "Action",
    "Version",
    "Format",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
    "SignatureVersion",
    "AccessKeyId",
    "Signature",
}


def _call(client: Client, **fields: Any) -> dict[str, Any]:
    """Call GetWhatsappHealthStatus; return what the server saw (echoed in Message)."""
    fields = fields or DEFAULT_FIELDS
    response = client.get_whatsapp_health_status(GetWhatsappHealthStatusRequest(**fields))
    assert response.status_code == 200
    assert response.body.code == "OK"
    assert response.body.data.can_send_message == "AVAILABLE"
    echo: dict[str, Any] = json.loads(response.body.message)
    return echo


def _error(client: Client, **fields: Any) -> ClientException:
    with pytest.raises(ClientException) as info:
        _call(client, **fields)
    return info.value


def _record_one(stub: CamsStub, client: Client) -> Captured:
    """A signed SDK request the server recorded without authenticating (nonce unused)."""
    stub.record_only = True
    with pytest.raises(ServerException):
        _call(client)
    stub.record_only = False
    return stub.captured[-1]


def _json(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def _header_value(captured: Captured, name: bytes) -> bytes:
    return next(value for key, value in captured.headers if key.lower() == name)


def _replace_header(captured: Captured, name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, value if k.lower() == name else v) for k, v in captured.headers]


# --- V3 (ACS3-HMAC-SHA256), the SDK default -------------------------------------------------


def test_v3_request_with_special_characters_is_accepted(
    stub: CamsStub, make_client: MakeClient
) -> None:
    echo = _call(make_client(), **SPECIAL)

    assert echo == {
        "style": "v3",
        "action": "GetWhatsappHealthStatus",
        "version": "2020-06-06",
        "params": SPECIAL_PARAMS,
    }
    # The SDK put them on the wire with quote_plus, while it signed them with quote.
    raw_path = stub.captured[-1].raw_path
    assert b"PhoneNumber=%2B86+138%2A~%2F%C3%A9" in raw_path
    assert b"Authorization" not in raw_path


def test_v3_wrong_secret_is_signature_does_not_match(make_client: MakeClient) -> None:
    error = _error(make_client(secret="not-the-secret"))

    assert error.code == "SignatureDoesNotMatch"
    assert error.status_code == 400
    assert "Specified signature is not matched with our calculation." in error.message
    assert SECRET not in error.message


def test_unknown_access_key_is_not_found_404(make_client: MakeClient) -> None:
    error = _error(make_client(key_id="LTAInobodyhasthiskey0000"))

    assert error.code == "InvalidAccessKeyId.NotFound"
    assert error.status_code == 404
    assert "Specified access key is not found." in error.message


def test_disabled_access_key_is_inactive(make_client: MakeClient) -> None:
    error = _error(make_client(key_id=DISABLED_KEY_ID))

    assert error.code == "InvalidAccessKeyId.Inactive"
    assert error.status_code == 400


@pytest.mark.parametrize("date", ["2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"])
def test_v3_date_outside_window_is_expired(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, date: str
) -> None:
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: date))

    error = _error(make_client())

    assert error.code == "InvalidTimeStamp.Expired"
    assert error.status_code == 400


def test_forged_request_cannot_burn_a_nonce(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "f" * 32))

    assert _error(make_client(secret="forger")).code == "SignatureDoesNotMatch"
    assert _call(make_client())["style"] == "v3"  # the nonce was still free
    assert _error(make_client()).code == "SignatureNonceUsed"


# --- Captured SDK requests, replayed and tampered with ---------------------------------------


def test_captured_request_is_accepted_once_then_replay_is_refused(
    stub: CamsStub, make_client: MakeClient
) -> None:
    captured = _record_one(stub, make_client())

    first = stub.resend(captured)
    assert first.status_code == 200
    assert _json(first)["Code"] == "OK"

    replay = stub.resend(captured)
    assert replay.status_code == 400
    assert _json(replay)["Code"] == "SignatureNonceUsed"
    assert _json(replay)["Message"] == "Specified signature nonce was used already."


def _tampered_query(c: Captured) -> dict[str, Any]:
    return {"raw_path": c.raw_path.replace(b"8613800000000", b"8613800000009")}


def _added_query(c: Captured) -> dict[str, Any]:
    return {"raw_path": c.raw_path + b"&WabaId=1"}


def _tampered_action(c: Captured) -> dict[str, Any]:
    return {"headers": _replace_header(c, b"x-acs-action", b"SendChatappMessage")}


def _tampered_date(c: Captured) -> dict[str, Any]:
    date = _header_value(c, b"x-acs-date")
    later = date[:-2] + (b"1" if date[-2:-1] != b"1" else b"2") + b"Z"
    return {"headers": _replace_header(c, b"x-acs-date", later)}


def _tampered_host(c: Captured) -> dict[str, Any]:
    return {"headers": _replace_header(c, b"host", b"cams.ap-southeast-1.aliyuncs.com")}


def _body_added(c: Captured) -> dict[str, Any]:
    headers = [*_replace_header(c, b"content-length", b"13")]
    headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    return {"headers": headers, "body": b"WabaId=123456"}


def _body_added_with_its_hash(c: Captured) -> dict[str, Any]:
    body = b"WabaId=123456"
    headers = _replace_header(c, b"x-acs-content-sha256", hashlib.sha256(body).hexdigest().encode())
    headers = [(k, b"13" if k.lower() == b"content-length" else v) for k, v in headers]
    return {
        "headers": [*headers, (b"content-type", b"application/x-www-form-urlencoded")],
        "body": body,
    }


@pytest.mark.parametrize(
    "tamper",
    [
        _tampered_query,
        _added_query,
        _tampered_action,
        _tampered_date,
        _tampered_host,
        _body_added,
        _body_added_with_its_hash,
    ],
)
def test_tampered_request_is_signature_does_not_match(
    stub: CamsStub, make_client: MakeClient, tamper: Callable[[Captured], dict[str, Any]]
) -> None:
    captured = _record_one(stub, make_client())

    response = stub.resend(captured, **tamper(captured))

    assert response.status_code == 400
    assert _json(response)["Code"] == "SignatureDoesNotMatch"
    # The failed attempt did not spend the nonce: the genuine request still works.
    assert _json(stub.resend(captured))["Code"] == "OK"


def test_missing_authorization_is_incomplete_signature(
    stub: CamsStub, make_client: MakeClient
) -> None:
    captured = _record_one(stub, make_client())
    headers = [(k, v) for k, v in captured.headers if k.lower() != b"authorization"]

    response = stub.resend(captured, headers=headers)

    assert response.status_code == 400
    assert _json(response)["Code"] == "IncompleteSignature"
    assert _json(response)["Message"].startswith(
        "The request signature does not conform to Aliyun standards."
    )


def test_unsigning_a_required_header_is_incomplete_signature(
    stub: CamsStub, make_client: MakeClient
) -> None:
    captured = _record_one(stub, make_client())
    authorization = _header_value(captured, b"authorization")
    stripped = authorization.replace(b"x-acs-action;", b"")

    response = stub.resend(captured, headers=_replace_header(captured, b"authorization", stripped))

    assert response.status_code == 400
    assert _json(response)["Code"] == "IncompleteSignature"
    assert "x-acs-action" in _json(response)["Message"]


# --- Legacy RPC v1 (HMAC-SHA1): Config(signature_algorithm='v2') ----------------------------


def test_v1_request_with_special_characters_is_accepted(
    stub: CamsStub, make_client: MakeClient
) -> None:
    echo = _call(make_client(signature_algorithm="v2"), **SPECIAL)

    assert echo["style"] == "v1"
    assert (echo["action"], echo["version"]) == ("GetWhatsappHealthStatus", "2020-06-06")
    params = echo["params"]
    assert set(params) == set(SPECIAL_PARAMS) | V1_PROTOCOL_PARAMS
    assert {k: v for k, v in params.items() if k in SPECIAL_PARAMS} == SPECIAL_PARAMS
    assert params["SignatureMethod"] == "HMAC-SHA1"
    # No V3 pieces: the SDK really took the v1 path.
    names = {k.lower() for k, _ in stub.captured[-1].headers}
    assert b"authorization" not in names
    assert b"x-acs-signature-nonce" not in names


def test_v1_wrong_secret_is_signature_does_not_match(make_client: MakeClient) -> None:
    error = _error(make_client(secret="nope", signature_algorithm="v2"))

    assert error.code == "SignatureDoesNotMatch"


def test_v1_stale_timestamp_is_expired(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: "2020-01-01T00:00:00Z"))

    assert _error(make_client(signature_algorithm="v2")).code == "InvalidTimeStamp.Expired"


def test_v1_replay_is_refused_and_tampering_detected(
    stub: CamsStub, make_client: MakeClient
) -> None:
    captured = _record_one(stub, make_client(signature_algorithm="v2"))

    tampered = stub.resend(
        captured, raw_path=captured.raw_path.replace(b"NodeType=phone", b"WabaId=123456")
    )
    assert _json(tampered)["Code"] == "SignatureDoesNotMatch"
    # v1 signs parameters, not headers: an unsigned header changes nothing.
    headers = _replace_header(captured, b"x-acs-action", b"SendChatappMessage")
    assert _json(stub.resend(captured, headers=headers))["Code"] == "OK"
    assert _json(stub.resend(captured))["Code"] == "SignatureNonceUsed"
