"""What the three dialects put on the wire: the seeds' examples, error shapes, a raw socket."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

# Seed 000 (Alibaba CAMS GetWhatsappHealthStatus), "Success response", verbatim.
SEED_000_SUCCESS: dict[str, Any] = {
    "AccessDeniedDetail": "None",
    "Message": "None",
    "RequestId": "DAC72B08-3327-33EF-BEDC-8EC3E83A6575",
    "Data": {
        "CanSendMessage": "AVAILABLE",
        "Entities": [
            {
                "EntityType": "PHONE_NUMBER",
                "TemplateCode": "939928****",
                "Errors": [
                    {
                        "ErrorDescription": "There is an error with the payment method.",
                        "PossibleSolution": "There was an error with your payment method. "
                        "Please add a new payment method to the account.",
                        "ErrorCode": "141006",
                    }
                ],
                "Language": "en",
                "CanSendMessage": "AVAILABLE",
                "PhoneNumber": "86138****",
                "WabaId": "39939***",
                "BusinessId": "3992****",
            }
        ],
    },
    "Code": "OK",
    "Success": True,
}
SEED_000_KEYS = frozenset(SEED_000_SUCCESS)
SEED_000_DATA_KEYS = frozenset(SEED_000_SUCCESS["Data"])
SEED_000_ENTITY_KEYS = frozenset(SEED_000_SUCCESS["Data"]["Entities"][0])
SEED_000_ERROR_KEYS = frozenset(SEED_000_SUCCESS["Data"]["Entities"][0]["Errors"][0])
# What wahealth adds to an entity beyond seed 000 (the SDK drops unknown keys):
# the entity's own id, and a LIMITED entity's reasons.
CAMS_ENTITY_EXTENSIONS = frozenset({"Id", "AdditionalInfo"})
CAMS_ERROR_KEYS = frozenset({"RequestId", "HostId", "Code", "Message", "Recommend"})

# Seed 003 (360dialog "Messaging Health Status"), the first "Example Response", verbatim.
SEED_003_AVAILABLE: dict[str, Any] = {
    "health_status": {
        "can_send_message": "AVAILABLE",
        "entities": [
            {
                "entity_type": "PHONE_NUMBER",
                "id": "106540352242922",
                "can_send_message": "AVAILABLE",
            },
            {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"},
            {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
            {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE"},
        ],
    },
    "id": "106540352242922",
}

LIMITED_INFO = (
    "Your display name has not been approved yet. Your message limit will increase "
    "after the display name is approved."
)
PAYMENT_ERROR = {
    "ErrorCode": "141006",
    "ErrorDescription": "There is an error with the payment method.",
    "PossibleSolution": "There was an error with your payment method. "
    "Please add a new payment method to the account.",
}
TEMPLATE_ERROR = {
    "ErrorCode": "141002",
    "ErrorDescription": "Message templates can only be sent out if they are approved.",
    "PossibleSolution": "Edit or appeal the message template review decision.",
}

BUSINESS_ID = "506914307656634"
APP_ID = "634974688087057"
WABA_OK = "102290129340398"
WABA_BLOCKED = "299399000000001"
PHONE_OK = "106540352242922"
PHONE_LIMITED = "105154286024403"
PHONE_ON_BLOCKED_WABA = "106540352242999"
TEMPLATE_ID = "2632273056924580"


def no_traceback(body: bytes) -> None:
    """Nothing of a Python error reaches the wire."""
    for marker in (b"Traceback", b'File "'):
        assert marker not in body, body[:500]


def cams_error(body: bytes, code: str, request_id: str | None) -> dict[str, Any]:
    """A CAMS gateway error body with this code, whose RequestId is the x-request-id."""
    no_traceback(body)
    parsed: dict[str, Any] = json.loads(body)
    assert set(parsed) >= CAMS_ERROR_KEYS, parsed
    assert parsed["Code"] == code, parsed
    assert parsed["RequestId"] == request_id
    assert isinstance(parsed["Message"], str)
    assert parsed["Message"]
    return parsed


def d360_error(body: bytes, status: int) -> dict[str, Any]:
    """360dialog's error body: `{"meta": {"httpCode", "developerMessage", "success": false}}`."""
    no_traceback(body)
    parsed: dict[str, Any] = json.loads(body)
    assert set(parsed) == {"meta"}, parsed
    assert parsed["meta"]["httpCode"] == status
    assert parsed["meta"]["success"] is False
    assert isinstance(parsed["meta"]["developerMessage"], str)
    return parsed


def graph_error(body: bytes, code: int) -> dict[str, Any]:
    """Meta's error envelope: `{"error": {"message", "type", "code", "fbtrace_id"}}`."""
    no_traceback(body)
    parsed: dict[str, Any] = json.loads(body)
    assert set(parsed) == {"error"}, parsed
    error: dict[str, Any] = parsed["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error), error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert isinstance(error["type"], str)
    return error


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An HTTP/1.1 response read off a socket."""

    status: int
    headers: dict[str, str]  # lower-case names; values decoded as latin-1
    body: bytes


def raw_request(host: str, port: int, request: bytes, timeout: float = 5.0) -> RawResponse:
    """Send bytes no HTTP client would send; read the answer until the server closes.

    `request` should carry `Connection: close`.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    length = headers.get("content-length")
    if length is not None:
        body = body[: int(length)]
    return RawResponse(int(status_line.split()[1]), headers, body)
