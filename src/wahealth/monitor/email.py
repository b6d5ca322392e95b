"""E-mail alerts: the message an alert becomes, and its delivery over SMTP (aiosmtplib).

An e-mail subscription's URL is `mailto:` and its addresses, comma-separated. The
message is plain text, UTF-8:

    Subject: [wahealth] BLOCKED: Phone number 106540352242922 is BLOCKED
    Message-ID: <alert id@wahealth>
    X-Wahealth-Alert-Id: <alert id>       (the same across retries: receivers may dedupe)
    X-Wahealth-Event: BLOCKED

and the body says the change, the space, what saw it and when, each error with its
description and fix, the LIMITED reasons, the nodes of a grouped or silence-ended alert,
the silence, and the alert id. SMTP answers 5xx are permanent (the alert is dead at
once); a 4xx, a timeout or a refused connection is retried like a webhook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib

from wahealth.domain.records import OutboxItem
from wahealth.monitor.payloads import (
    ALERT_ID_HEADER,
    EVENT_HEADER,
    alert_document,
    headline,
    kind_name,
    listed_nodes,
)
from wahealth.settings import SmtpSettings

SUBJECT_PREFIX = "[wahealth]"


class MailRefused(Exception):
    """The SMTP server refused the message for good (a 5xx answer)."""


class MailFailed(Exception):
    """This attempt failed (4xx, timeout, connection): try again later."""


def mailto(addresses: Sequence[str]) -> str:
    """The subscription URL of these addresses."""
    return "mailto:" + ",".join(addresses)


def recipients(url: str) -> list[str]:
    """The addresses of a `mailto:` subscription URL."""
    if not url.startswith("mailto:"):
        return []
    return [part.strip() for part in url.removeprefix("mailto:").split(",") if part.strip()]


def subject(document: Mapping[str, Any]) -> str:
    """`[wahealth] BLOCKED: Phone number 1065… is BLOCKED` (one line, at most 200 chars)."""
    _, title = headline(document)
    text = f"{SUBJECT_PREFIX} {document.get('event') or 'CHANGED'}: {title}"
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:199] + "…"


def body(document: Mapping[str, Any]) -> str:
    """The plain-text body of an alert."""
    _, title = headline(document)
    event = document.get("event") or "CHANGED"
    field = document.get("field")
    lines = [f"{event}: {title}", ""]
    if document.get("before") is not None or event != "SILENCE_ENDED":
        change = f"{document.get('before') or 'unknown'} -> {document.get('after')}"
        lines.append(f"{field or 'Status'}: {change}")
    lines.append(f"Node: {kind_name(document.get('node_kind'))} {document.get('node_id')}")
    for label, key in (("Space", "space_id"), ("Seen by", "cause"), ("At", "occurred_at")):
        if document.get(key):
            lines.append(f"{label}: {document[key]}")
    errors = [e for e in document.get("errors") or [] if isinstance(e, Mapping)]
    for error in errors:
        lines += [
            "",
            f"Error {error.get('error_code')} on {error.get('entity_type')} "
            f"{error.get('entity_id')}",
        ]
        if error.get("error_description"):
            lines.append(f"  {error['error_description']}")
        if error.get("possible_solution"):
            lines.append(f"  Fix: {error['possible_solution']}")
    if not errors and document.get("error_codes"):
        lines += ["", "Error codes: " + ", ".join(str(c) for c in document["error_codes"])]
    info = [str(line) for line in document.get("additional_info") or []]
    if info:
        lines += ["", *(f"- {line}" for line in info)]
    nodes = listed_nodes(document)
    if nodes:
        lines += ["", f"Nodes ({len(nodes)}):"]
        for node in nodes:
            codes = ", ".join(str(c) for c in node.get("error_codes") or [])
            status = node.get("status") or node.get("after")
            lines.append(
                f"- {kind_name(node.get('node_kind'))} {node.get('node_id')} {status}"
                + (f" ({codes})" if codes else "")
            )
    silence = document.get("silence")
    if isinstance(silence, Mapping):
        lines += [
            "",
            f"Silence {silence.get('id')} of {silence.get('scope')} {silence.get('scope_id')}"
            f" until {silence.get('ends_at')}",
        ]
        for label, key in (("Reason", "reason"), ("By", "created_by")):
            if silence.get(key):
                lines.append(f"{label}: {silence[key]}")
    grouped = document.get("grouped")
    if isinstance(grouped, int) and grouped > 1 and not nodes:
        lines += ["", f"{grouped} changes grouped"]
    lines += ["", f"Alert id: {document.get('alert_id')}"]
    return "\n".join(lines) + "\n"


def message(item: OutboxItem, to: Sequence[str], sender: str) -> EmailMessage:
    """The e-mail of an alert."""
    document = alert_document(item)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = subject(document)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{item.id}@wahealth>"
    mail[ALERT_ID_HEADER] = item.id
    mail[EVENT_HEADER] = item.event
    mail.set_content(body(document))
    return mail


async def send(item: OutboxItem, url: str, smtp: SmtpSettings) -> None:
    """Mail the alert to the subscription's addresses; MailRefused or MailFailed if not."""
    to = recipients(url)
    if not to:
        raise MailRefused(f"{url!r} names no e-mail address")
    password = smtp.password.get_secret_value() if smtp.password is not None else None
    try:
        await aiosmtplib.send(
            message(item, to, smtp.from_address),
            hostname=smtp.host,
            port=smtp.effective_port,
            username=smtp.username,
            password=password,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            validate_certs=smtp.validate_certs,
            timeout=smtp.timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = [r for r in exc.recipients if r.code >= 500]
        if len(refused) == len(exc.recipients):
            raise MailRefused(f"SMTP refused every recipient: {exc.recipients[0]}") from exc
        raise MailFailed(f"SMTP refused recipients for now: {exc}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        text = f"SMTP {exc.code}: {' '.join(exc.message.split())[:200]}"
        if 500 <= exc.code < 600:
            raise MailRefused(text) from exc
        raise MailFailed(text) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailFailed(f"{type(exc).__name__}: {exc}") from exc
