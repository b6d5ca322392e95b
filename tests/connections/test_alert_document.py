"""The CONNECTION alert as receivers see it: JSON, Slack and e-mail."""

from __future__ import annotations

from datetime import UTC, datetime

from wahealth.monitor.connections import connection_alert
from wahealth.monitor.email import body, subject
from wahealth.monitor.payloads import slack_message

WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROBLEM = "(190) Error validating access token: Session has expired."


def test_a_refused_connection_reads_as_such_everywhere() -> None:
    document = connection_alert("beta", "beta-space", "ok", "refused", PROBLEM, 190, WHEN, 7)
    assert document["event"] == "CONNECTION"
    assert (document["before"], document["after"]) == ("OK", "REFUSED")
    assert document["errors"][0]["error_code"] == 190
    assert subject(document) == "[wahealth] CONNECTION: Meta connection beta token is REFUSED"
    text = body(document)
    assert "Space: beta-space" in text
    assert PROBLEM in text
    slack = slack_message({"alert_id": "a1", **document})
    assert "Meta connection" in slack["text"]
    assert any(PROBLEM in str(block) for block in slack["blocks"])


def test_a_resumed_connection_has_no_errors() -> None:
    document = connection_alert("beta", "beta-space", "refused", "ok", None, None, WHEN, 8)
    assert document["errors"] == []
    assert document["error_codes"] == []
    assert subject(document).endswith("token is OK")
