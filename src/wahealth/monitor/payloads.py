"""What an alert looks like on the wire: the JSON document or a Slack message, and its signature.

The outbox stores one format-neutral document per alert (see the monitor's
recorder); the format is chosen per subscription only when sending, so a
subscription can switch format without rewriting queued alerts.

Signature: `X-Wahealth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`"<t>." + body`, keyed with the subscription's secret. Signing the timestamp
with the body lets a receiver refuse a replayed request after a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from wahealth.domain.records import AlertFormat, OutboxItem

SIGNATURE_HEADER = "X-Wahealth-Signature"
ALERT_ID_HEADER = "X-Wahealth-Alert-Id"
EVENT_HEADER = "X-Wahealth-Event"

_ICONS = {"BLOCKED": ":red_circle:", "LIMITED": ":large_yellow_circle:"}
_RECOVERED_ICON = ":large_green_circle:"
# A kept field's new value (quality ratings and scores are colours already).
_FIELD_ICONS = {"RED": ":red_circle:", "YELLOW": ":large_yellow_circle:"}
_FIELD_ICONS["GREEN"] = _RECOVERED_ICON
# Slack refuses messages with more than 50 blocks or sections over 3000 characters.
_MAX_ERROR_BLOCKS = 20
_MAX_SECTION_CHARS = 2900
_MAX_HEADER_CHARS = 150
_MAX_NODE_LINES = 40


class SignatureError(Exception):
    """A signature header is missing, malformed, stale or does not match."""


def alert_document(item: OutboxItem) -> dict[str, Any]:
    """The JSON alert: `alert_id` first, then the stored document as it is."""
    return {"alert_id": item.id, **{k: v for k, v in item.payload.items() if k != "alert_id"}}


def render(item: OutboxItem, format: AlertFormat | str) -> bytes:
    """The request body for the subscription's format."""
    if AlertFormat(format) is AlertFormat.SLACK:
        return orjson.dumps(slack_message(alert_document(item)))
    return orjson.dumps(alert_document(item))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Wahealth-Signature` value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    header: str | None, body: bytes, secret: str, *, now: float, tolerance: float = 300
) -> int:
    """Check a signature header as a receiver should; returns its timestamp.

    Any `v1=` entry may match (senders may add more while rotating secrets).
    """
    if not header:
        raise SignatureError("no signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("signature timestamp outside the tolerance")
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match")
    return timestamp


def slack_message(document: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback `text` plus Block Kit `blocks`."""
    event = str(document.get("event") or "CHANGED")
    after = str(document.get("after") or "?")
    before = document.get("before")
    kind = _kind(document.get("node_kind"))
    node_id = str(document.get("node_id") or "?")
    field = document.get("field")
    nodes = [n for n in _sequence(document.get("nodes")) if isinstance(n, Mapping)]
    icon, title = headline(document)
    change = f"{before or 'unknown'} → {after}"
    fields = [
        f"*Node*\n{_escape(kind)} `{_escape(node_id)}`",
        f"*{_escape(str(field)) if field else 'Status'}*\n{_escape(change)}",
    ]
    if document.get("space_id"):
        fields.append(f"*Space*\n{_escape(str(document['space_id']))}")
    if document.get("cause"):
        fields.append(f"*Seen by*\n{_escape(str(document['cause']))}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"{event}: {title}", _MAX_HEADER_CHARS)},
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if listed_nodes(document):
        blocks.append(_section(_nodes_text(nodes)))
    silence = document.get("silence")
    if isinstance(silence, Mapping):
        blocks.append(_section(_silence_text(silence)))
    errors = _errors(document)
    for error in errors[:_MAX_ERROR_BLOCKS]:
        blocks.append(_section(_error_text(error)))
    if len(errors) > _MAX_ERROR_BLOCKS:
        blocks.append(_section(f"…and {len(errors) - _MAX_ERROR_BLOCKS} more errors"))
    info = [str(line) for line in _sequence(document.get("additional_info"))]
    if info:
        blocks.append(_section("\n".join(f"• {_escape(line)}" for line in info)))
    context = [f"alert `{_escape(str(document.get('alert_id', '?')))}`"]
    if document.get("occurred_at"):
        context.append(f"at {_escape(str(document['occurred_at']))}")
    grouped = document.get("grouped")
    if isinstance(grouped, int) and grouped > 1:
        context.append(f"{grouped} changes grouped")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
    )
    codes = ", ".join(str(c) for c in _sequence(document.get("error_codes")))
    text = f"{icon} {event}: {title} ({change})" + (f" — errors {codes}" if codes else "")
    return {"text": _escape(text), "blocks": blocks}


def headline(document: Mapping[str, Any]) -> tuple[str, str]:
    """(Slack icon, title) of an alert: `Phone number 1065… is BLOCKED`, and so on."""
    event = str(document.get("event") or "CHANGED")
    after = str(document.get("after") or "?")
    kind = _kind(document.get("node_kind"))
    node_id = str(document.get("node_id") or "?")
    field = document.get("field")
    nodes = [n for n in _sequence(document.get("nodes")) if isinstance(n, Mapping)]
    icon = _RECOVERED_ICON if event == "RECOVERED" else _ICONS.get(after, ":white_circle:")
    if document.get("node_kind") == "CONNECTION":  # a Meta connection's token (see connections)
        return icon, f"Meta connection {document.get('connection')} token is {after}"
    if field:  # a kept field (quality, limit, status) changed, not the health
        return _FIELD_ICONS.get(after, ":white_circle:"), f"{kind} {node_id} {field} is {after}"
    if event == "SILENCE_ENDED":
        return icon, f"silence ended, {len(nodes)} still not AVAILABLE"
    if len(nodes) > 1:
        return icon, f"WABA {document.get('waba_id')}: {len(nodes)} nodes are {after}"
    return icon, f"{kind} {node_id} is {after}"


def listed_nodes(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The nodes a grouped or silence-ended alert lists (empty for a single node's alert)."""
    nodes = [n for n in _sequence(document.get("nodes")) if isinstance(n, Mapping)]
    return nodes if len(nodes) > 1 or document.get("event") == "SILENCE_ENDED" else []


def _nodes_text(nodes: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for node in nodes[:_MAX_NODE_LINES]:
        status = node.get("status") or node.get("after") or "?"
        codes = ", ".join(str(c) for c in _sequence(node.get("error_codes")))
        line = f"• {_escape(_kind(node.get('node_kind')))} `{_escape(str(node.get('node_id')))}`"
        lines.append(line + f" {_escape(str(status))}" + (f" ({_escape(codes)})" if codes else ""))
    if len(nodes) > _MAX_NODE_LINES:
        lines.append(f"…and {len(nodes) - _MAX_NODE_LINES} more")
    return "\n".join(lines)


def _silence_text(silence: Mapping[str, Any]) -> str:
    scope = f"{silence.get('scope')} `{silence.get('scope_id')}`"
    text = f"*Silence {silence.get('id')}* of {_escape(scope)} until {silence.get('ends_at')}"
    if silence.get("reason"):
        text += f"\n_Reason:_ {_escape(str(silence['reason']))}"
    if silence.get("created_by"):
        text += f"\n_By:_ {_escape(str(silence['created_by']))}"
    return text


def kind_name(node_kind: Any) -> str:
    """`Phone number`, `Template`, `WABA`: a node kind in words."""
    return _kind(node_kind)


def _kind(node_kind: Any) -> str:
    names = {
        "PHONE_NUMBER": "Phone number",
        "MESSAGE_TEMPLATE": "Template",
        "WABA": "WABA",
        "CONNECTION": "Meta connection",
    }
    return names.get(str(node_kind), str(node_kind or "Node"))


def _errors(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    errors = [e for e in _sequence(document.get("errors")) if isinstance(e, Mapping)]
    if errors:
        return errors
    # A document without details still names its codes.
    return [{"error_code": code} for code in _sequence(document.get("error_codes"))]


def _error_text(error: Mapping[str, Any]) -> str:
    where = ""
    if error.get("entity_type"):
        where = f" on {_escape(str(error['entity_type']))} `{_escape(str(error.get('entity_id')))}`"
    lines = [f"*Error {_escape(str(error.get('error_code', '?')))}*{where}"]
    if error.get("error_description"):
        lines.append(_escape(str(error["error_description"])))
    if error.get("possible_solution"):
        lines.append(f"_Fix:_ {_escape(str(error['possible_solution']))}")
    return "\n".join(lines)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _MAX_SECTION_CHARS)}}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
