"""Raw HTTP/1.1 requests for the load generator, CAMS ones pre-signed like the official SDK.

A CAMS request cannot be replayed: each carries its own nonce, which the server claims. So
the benchmark signs one request per request it will send, before the run, into a file that
`replay.lua` hands to wrk one at a time. The requests are byte for byte what
`alibabacloud-cams20200606` sends (a V3 `ACS3-HMAC-SHA256` POST, parameters in the query,
empty body, the SDK's headers in its order), and all share one `x-acs-date`: the server
accepts a date within 15 minutes of its clock, far longer than a run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from wahealth.auth.cams_signature import SignedRequest, v3_string_to_sign

# What the SDK (tea-openapi 0.4.6, credentials 1.0.12) signs: every header present at signing.
SDK_SIGNED = (
    "accept",
    "host",
    "user-agent",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-credentials-provider",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
SDK_USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SEPARATOR = b"\r\n\r\n"  # every request here ends with it and has no body


def plain_get(host: str, path: str, headers: dict[str, str]) -> bytes:
    """A GET that is the same bytes every time (bare, 360dialog, Graph)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class CamsPresigner:
    """Signs GetWhatsappHealthStatus calls the way the SDK does, one fresh nonce each."""

    def __init__(self, host: str, key_id: str, secret: str, params: dict[str, str]) -> None:
        self._host = host
        self._key_id = key_id
        self._secret = secret.encode()
        # The SDK builds the URL with urlencode (in its generated, alphabetical order) and
        # signs the RFC 3986 form of the sorted parameters.
        self._wire_query = urlencode(params)
        self._canonical_query = "&".join(
            f"{name}={quote(params[name], safe='~')}" for name in sorted(params)
        )

    def _headers(self, date: str, nonce: str) -> dict[str, str]:
        return {
            "host": self._host,
            "x-acs-version": "2020-06-06",
            "x-acs-action": "GetWhatsappHealthStatus",
            "user-agent": SDK_USER_AGENT,
            "x-acs-date": date,
            "x-acs-signature-nonce": nonce,
            "accept": "application/json",
            "x-acs-content-sha256": EMPTY_SHA256,
            "x-acs-credentials-provider": "static_ak",
        }

    def _string_to_sign(self, headers: dict[str, str]) -> str:
        canonical = "\n".join(
            (
                "POST",
                "/",
                self._canonical_query,
                "".join(f"{name}:{headers[name]}\n" for name in SDK_SIGNED),
                ";".join(SDK_SIGNED),
                EMPTY_SHA256,
            )
        )
        return "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()

    def check(self) -> None:
        """Our shortcut must sign exactly what the server verifies; fail loudly if not."""
        headers = self._headers("2026-01-01T00:00:00Z", "0" * 32)
        request = SignedRequest("POST", "/", self._wire_query.encode(), headers)
        expected = v3_string_to_sign(request, SDK_SIGNED, EMPTY_SHA256)
        if self._string_to_sign(headers) != expected:
            raise AssertionError("the pre-signer's string to sign differs from the server's")

    def requests(self, count: int, now: datetime | None = None) -> Iterator[bytes]:
        """`count` signed requests, each with its own nonce, all dated `now` (UTC)."""
        date = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        head = f"POST /?{self._wire_query} HTTP/1.1\r\nAccept-Encoding: identity\r\n"
        for _ in range(count):
            headers = self._headers(date, secrets.token_hex(16))
            to_sign = self._string_to_sign(headers).encode()
            signature = hmac.new(self._secret, to_sign, hashlib.sha256).hexdigest()
            headers["Authorization"] = (
                f"ACS3-HMAC-SHA256 Credential={self._key_id},"
                f"SignedHeaders={';'.join(SDK_SIGNED)},Signature={signature}"
            )
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            yield (head + lines + "Content-Length: 0\r\n\r\n").encode("latin-1")


def write_requests(path: Path, requests: Iterator[bytes] | list[bytes]) -> int:
    """Write requests back to back for `replay.lua`; how many were written."""
    count = 0
    with path.open("wb") as out:
        for raw in requests:
            if not raw.endswith(SEPARATOR) or raw.count(SEPARATOR) != 1:
                raise ValueError(
                    "replay.lua splits on the blank line: requests without a body only"
                )
            out.write(raw)
            count += 1
    return count
