"""Alert bodies (JSON and Slack) and the X-Wahealth-Signature scheme."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from wahealth.domain.records import AlertFormat, AlertState, OutboxItem
from wahealth.monitor import payloads
from wahealth.monitor.payloads import SignatureError, render, sign, slack_message, verify

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

DOCUMENT: dict[str, Any] = {
    "event": "BLOCKED",
    "node_id": "106540352242999",
    "node_kind": "PHONE_NUMBER",
    "space_id": "demo-space",
    "before": "AVAILABLE",
    "after": "BLOCKED",
    "error_codes": ["141006"],
    "errors": [
        {
            "entity_type": "WABA",
            "entity_id": "299399000000001",
            "error_code": "141006",
            "error_description": "There is an error with the payment method.",
            "possible_solution": "Add a payment method <here> & retry.",
        }
    ],
    "additional_info": [],
    "cause": "poll",
    "occurred_at": "2026-06-01T09:00:00+00:00",
    "transition_id": 7,
    "grouped": 1,
}


def item(document: dict[str, Any] | None = None, alert_id: str = "a1b2") -> OutboxItem:
    return OutboxItem(
        alert_id, 3, 7, "BLOCKED", document or DOCUMENT, AlertState.PENDING, 1, T0, None, T0, None
    )


def test_json_body_is_the_document_with_the_alert_id_first() -> None:
    body = json.loads(render(item(), AlertFormat.JSON))
    assert next(iter(body)) == "alert_id"
    assert body == {"alert_id": "a1b2", **DOCUMENT}


def test_slack_body_names_node_change_errors_and_fixes() -> None:
    body = json.loads(render(item(), "slack"))
    assert set(body) == {"text", "blocks"}
    assert "BLOCKED" in body["text"]
    assert "106540352242999" in body["text"]
    assert "141006" in body["text"]
    texts = json.dumps(body["blocks"], ensure_ascii=False)
    assert "AVAILABLE → BLOCKED" in texts
    assert "There is an error with the payment method." in texts
    # mrkdwn control characters are escaped, so a description cannot forge links
    assert "Add a payment method &lt;here&gt; &amp; retry." in texts
    assert "a1b2" in texts
    assert body["blocks"][0]["type"] == "header"
    assert all(block["type"] in {"header", "section", "context"} for block in body["blocks"])


def test_slack_recovery_and_additional_info() -> None:
    document = {
        **DOCUMENT,
        "event": "RECOVERED",
        "before": "LIMITED",
        "after": "AVAILABLE",
        "errors": [],
        "error_codes": [],
        "additional_info": ["Your display name has not been approved yet."],
        "grouped": 3,
    }
    message = slack_message({"alert_id": "x", **document})
    assert message["text"].startswith(":large_green_circle: RECOVERED")
    texts = json.dumps(message["blocks"])
    assert "Your display name has not been approved yet." in texts
    assert "3 changes grouped" in texts


def test_slack_stays_within_block_limits() -> None:
    errors = [{"error_code": str(141000 + n), "error_description": "x" * 5000} for n in range(80)]
    message = slack_message({**DOCUMENT, "alert_id": "x", "errors": errors})
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert "60 more errors" in json.dumps(message["blocks"])


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    body = b'{"alert_id":"a1b2"}'
    header = sign("s3cret", 1780304400, body)
    expected = hmac.new(b"s3cret", b"1780304400." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1780304400,v1={expected}"
    assert verify(header, body, "s3cret", now=1780304400 + 10) == 1780304400


@pytest.mark.parametrize(
    ("header", "body", "secret", "now"),
    [
        (None, b"{}", "s3cret", 100.0),
        ("v1=abc", b"{}", "s3cret", 100.0),
        (sign("s3cret", 100, b"{}"), b"{} ", "s3cret", 100.0),
        (sign("s3cret", 100, b"{}"), b"{}", "other", 100.0),
        (sign("s3cret", 100, b"{}"), b"{}", "s3cret", 100.0 + 301),
    ],
    ids=["missing", "malformed", "tampered", "wrong-secret", "replayed-late"],
)
def test_verify_refuses(header: str | None, body: bytes, secret: str, now: float) -> None:
    with pytest.raises(SignatureError):
        verify(header, body, secret, now=now)


def test_header_names() -> None:
    assert payloads.SIGNATURE_HEADER == "X-Wahealth-Signature"
    assert payloads.ALERT_ID_HEADER == "X-Wahealth-Alert-Id"
