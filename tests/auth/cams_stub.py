"""A tiny signed CAMS endpoint for the official SDK to call, and what it records."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wahealth.auth.cams_signature import (
    SignedRequest,
    action_and_version,
    authenticate,
    rpc_params,
)
from wahealth.auth.errors import CamsAuthError
from wahealth.core.ports import AccessKey, Principal

KEY_ID = "LTAItestkeyid0000000001"
SECRET = "testsecret-Éé中/+ ~*"
DISABLED_KEY_ID = "LTAIdisabledkey00000001"


class DictNonceStore:
    """An in-memory NonceStore (ttl ignored: the tests are shorter than any ttl)."""

    def __init__(self) -> None:
        self.claimed: dict[str, float] = {}

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        if nonce in self.claimed:
            return False
        self.claimed[nonce] = ttl_seconds
        return True

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class Captured:
    """One request exactly as it reached the server."""

    method: str
    raw_path: bytes  # path and query, as on the request line
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class CamsStub:
    """The server's state, shared with the tests."""

    base_url: str = ""
    secrets: dict[str, str] = field(default_factory=lambda: {KEY_ID: SECRET})
    nonces: DictNonceStore = field(default_factory=DictNonceStore)
    captured: list[Captured] = field(default_factory=list)
    # While set, requests are recorded and answered 503 without authenticating,
    # so a test can hold a signed request whose nonce is still unused.
    record_only: bool = False

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    def resend(
        self, captured: Captured, *, headers: list[tuple[bytes, bytes]] | None = None, **kw: Any
    ) -> httpx.Response:
        """Send a captured request again, byte for byte unless told otherwise."""
        raw_path = kw.pop("raw_path", captured.raw_path)
        body = kw.pop("body", captured.body)
        host, port = self.host.split(":")
        url = httpx.URL(scheme="http", host=host, port=int(port), raw_path=raw_path)
        with httpx.Client(timeout=10, trust_env=False) as client:
            return client.send(
                client.build_request(
                    captured.method,
                    url,
                    headers=captured.headers if headers is None else headers,
                    content=body,
                )
            )


def build_app(stub: CamsStub) -> Starlette:
    request_ids = itertools.count(1)

    async def lookup_key(access_key_id: str) -> AccessKey | None:
        if access_key_id == DISABLED_KEY_ID:
            return AccessKey(Principal("stub", 5), "", revoked=True)
        secret = stub.secrets.get(access_key_id)
        return None if secret is None else AccessKey(Principal("stub", 5), secret, False)

    async def rpc(request: Request) -> Response:
        body = await request.body()
        query = request.scope["query_string"]
        raw_path = request.scope["raw_path"] + (b"?" + query if query else b"")
        stub.captured.append(
            Captured(request.method, raw_path, list(request.scope["headers"]), body)
        )
        request_id = f"REQ-{next(request_ids)}"
        if stub.record_only:
            return JSONResponse({"RequestId": request_id, "Code": "Recorded"}, status_code=503)
        signed = SignedRequest.from_asgi(request.scope, body)
        try:
            verified = await authenticate(
                signed, lookup_key=lookup_key, nonces=stub.nonces, now=datetime.now(UTC)
            )
            creds = verified.credentials
            action, version = action_and_version(signed)
            params = rpc_params(signed)
        except CamsAuthError as exc:
            return JSONResponse(
                {"RequestId": request_id, "Code": exc.code, "Message": exc.message},
                status_code=exc.http_status,
            )
        echo = {"style": creds.style, "action": action, "version": version, "params": params}
        return JSONResponse(
            {
                "RequestId": request_id,
                "Code": "OK",
                "Message": json.dumps(echo),
                "Success": True,
                "Data": {"CanSendMessage": "AVAILABLE", "Entities": []},
            }
        )

    return Starlette(routes=[Route("/", rpc, methods=["GET", "POST"])])
