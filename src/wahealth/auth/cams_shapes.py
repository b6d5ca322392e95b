"""What a signed Alibaba Cloud request is made of, as the signature checks read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# The header names an SDK sends, decoded once (ASGI servers hand them over lower-cased).
_HEADER_NAMES = {
    name.encode("latin-1"): name
    for name in (
        "host",
        "authorization",
        "content-type",
        "content-length",
        "accept",
        "accept-encoding",
        "user-agent",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
        "x-acs-accesskey-id",
        "x-acs-security-token",
        "x-request-id",
    )
}


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request a signature covers, as received on the wire."""

    method: str
    path: str
    raw_query: bytes
    headers: Mapping[str, str]  # lowercase names
    body: bytes = b""
    # Parsed parameters, computed once: several steps of verification need them.
    _parsed: dict[str, dict[str, str]] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_asgi(cls, scope: Mapping[str, Any], body: bytes) -> SignedRequest:
        """Build from an ASGI HTTP scope; repeated headers are joined with ','."""
        headers: dict[str, str] = {}
        names = _HEADER_NAMES
        for raw_name, raw_value in scope["headers"]:
            # HTTP header bytes are latin-1, which is also how the SDK's HTTP
            # library encodes the str values it signed.
            name = names.get(raw_name)
            if name is None:
                name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        return cls(scope["method"], path, scope.get("query_string", b""), headers, body)


@dataclass(frozen=True, slots=True)
class CamsCredentials:
    """What a request claims about its signer; trusted only after `verify`."""

    access_key_id: str
    algorithm: str
    signed_headers: tuple[str, ...]  # empty for v1, where parameters are signed
    signature: str
    style: Literal["v3", "v1"]
    nonce: str
    timestamp: datetime
