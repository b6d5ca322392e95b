"""E-mail alerts end to end: a status change is mailed to a local SMTP server (aiosmtpd).

The gateway runs with its lifespan on real SQLite; the SMTP server listens on 127.0.0.1,
plain or with STARTTLS (a self-signed certificate made for the test).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.monitor import test_end_to_end as e2e

from wahealth.domain.records import AlertState
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app

PHONE = "106540352242922"
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}
TO = ["ops@example.com", "oncall@example.com"]


class Mailbox:
    """An aiosmtpd handler that keeps what it receives; refuses `gone@` with a 550."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.changed = threading.Condition()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        with self.changed:
            self.messages.append((envelope, message_from_bytes(envelope.content)))
            self.changed.notify_all()
        return "250 Message accepted"

    async def wait(self, count: int = 1) -> list[tuple[Envelope, Message]]:
        def wait() -> list[tuple[Envelope, Message]]:
            with self.changed:
                self.changed.wait_for(lambda: len(self.messages) >= count, timeout=10)
                return list(self.messages)

        found = await asyncio.to_thread(wait)
        assert len(found) >= count, f"only {len(found)} messages arrived"
        return found


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture(params=["none", "starttls"])
def smtp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Mailbox, int, str]]:
    mailbox = Mailbox()
    security: str = request.param
    extra: dict[str, Any] = {}
    if security == "starttls":
        extra = {"tls_context": self_signed(tmp_path), "require_starttls": True}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield mailbox, port, security
    finally:
        controller.stop()


def settings_for(tmp_path: Path, port: int, security: str, to: list[str]) -> Any:
    return demo_settings(
        tmp_path,
        upstream={"emulator_webhooks": False},
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        monitor={"enabled": True, "interval_seconds": 3600},
        alerts={
            "flap_window_seconds": 0,
            "max_attempts": 2,
            "subscriptions": [{"space": DEMO.space, "email": to, "on": ["BLOCKED"]}],
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": security,
                "validate_certs": False,  # the test's self-signed certificate
                "from_address": "wahealth@example.com",
            },
        },
    )


async def block_phone(running: RunningApp) -> None:
    await e2e.baseline(running, PHONE)
    await e2e.set_health(running, PHONE, e2e.BLOCKED_131)
    answer = await running.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
    assert answer.json()["health_status"]["can_send_message"] == "BLOCKED"


async def test_a_blocked_number_is_mailed_with_its_subject_and_body(
    tmp_path: Path, smtp: tuple[Mailbox, int, str]
) -> None:
    mailbox, port, security = smtp
    async with running_app(settings_for(tmp_path, port, security, TO)) as running:
        await block_phone(running)
        outbox = running.components.monitor.outbox

        async def mailed() -> bool:
            return any(
                m["Subject"].endswith(f"Phone number {PHONE} is BLOCKED")
                for _, m in mailbox.messages
            )

        await e2e.eventually(mailed, "the e-mail of the BLOCKED number")
        [(envelope, mail)] = [
            (e, m) for e, m in mailbox.messages if m["Subject"].endswith(f"{PHONE} is BLOCKED")
        ]
        [item] = [
            a
            for a in await outbox.list_alerts(limit=100)
            if a.payload.get("node_id") == PHONE and a.event == "BLOCKED"
        ]

        async def delivered() -> bool:
            stored = await outbox.get(item.id)
            return stored is not None and stored.state is AlertState.DELIVERED

        await e2e.eventually(delivered, "the alert marked delivered")

    assert (envelope.mail_from, sorted(envelope.rcpt_tos)) == ("wahealth@example.com", sorted(TO))
    assert mail["Subject"] == f"[wahealth] BLOCKED: Phone number {PHONE} is BLOCKED"
    assert (mail["From"], mail["To"]) == ("wahealth@example.com", ", ".join(TO))
    assert mail["X-Wahealth-Alert-Id"] == item.id
    assert mail["Message-ID"] == f"<{item.id}@wahealth>"
    assert mail["X-Wahealth-Event"] == "BLOCKED"
    raw = mail.get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode("utf-8").replace("\r\n", "\n")  # SMTP lines end in CRLF
    assert body.splitlines()[:6] == [
        f"BLOCKED: Phone number {PHONE} is BLOCKED",
        "",
        "Status: AVAILABLE -> BLOCKED",
        f"Node: Phone number {PHONE}",
        f"Space: {DEMO.space}",
        "Seen by: query",
    ]
    assert f"Error 141010 on PHONE_NUMBER {PHONE}\n  The phone number is restricted.\n" in body
    assert "  Fix: Contact support.\n" in body
    assert body.endswith(f"Alert id: {item.id}\n")


async def test_a_mailbox_refused_for_good_parks_the_alert_as_dead(
    tmp_path: Path, smtp: tuple[Mailbox, int, str]
) -> None:
    mailbox, port, security = smtp
    if security != "none":
        pytest.skip("the refusal does not depend on TLS")
    settings = settings_for(tmp_path, port, security, ["gone@example.com"])
    async with running_app(settings) as running:
        await block_phone(running)
        outbox = running.components.monitor.outbox

        async def dead() -> bool:
            return any(
                a.payload.get("node_id") == PHONE
                for a in await outbox.list_alerts(AlertState.DEAD, limit=100)
            )

        await e2e.eventually(dead, "the refused alert parked as dead")
        [item] = [
            a
            for a in await outbox.list_alerts(AlertState.DEAD, limit=100)
            if a.payload.get("node_id") == PHONE
        ]
    assert item.attempts == 1
    assert "550" in (item.last_error or "")
    assert mailbox.messages == []
