"""`/webhooks/meta`: Meta's verification handshake and signed change notifications.

Meta signs each POST with `X-Hub-Signature-256: sha256=<HMAC-SHA256(raw body, app
secret)>`; anything unsigned or wrongly signed is refused before its body is even
parsed, so a forged webhook cannot make us spend Meta calls or record anything. A
validly signed body is accepted once: its digest is remembered for
`replay_window_seconds`, and a repeat (Meta retries deliveries; an attacker may replay
one) is answered 200 without any work. Meta retries webhooks that are not answered 200
quickly, so the answer never waits: the notification is handed to the monitor, which
works in the background.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wahealth.core.errors import ServiceUnavailable
from wahealth.core.ports import NonceStore
from wahealth.httputil import BodyTooLarge, read_body, retry_after_header

log = structlog.get_logger(__name__)

PATH = "/webhooks/meta"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 256 * 1024
_MAX_CHALLENGE_CHARS = 512


class ChangeNotices(Protocol):
    """Takes a verified notification and acts on it in the background (the monitor)."""

    def notify(self, document: Mapping[str, Any]) -> None: ...


def expected_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class MetaWebhookEndpoint:
    """`GET`/`POST /webhooks/meta`."""

    def __init__(
        self,
        *,
        verify_token: str | None,
        app_secret: str | None,
        notices: ChangeNotices,
        seen: NonceStore,
        replay_window_seconds: float = 86400.0,
        connection_secrets: Callable[[], Awaitable[Sequence[str]]] | None = None,
    ) -> None:
        self._verify_token = verify_token or None
        self._app_secret = app_secret or None
        # The app secrets of the Meta connections: a BSP's apps each sign their own webhooks.
        self._connection_secrets = connection_secrets
        self._notices = notices
        self._seen = seen
        self._replay_window = replay_window_seconds

    def routes(self) -> list[Route]:
        return [
            Route(PATH, self.handshake, methods=["GET"]),
            Route(PATH, self.notification, methods=["POST"]),
        ]

    async def handshake(self, request: Request) -> Response:
        """Meta's subscription check: echo `hub.challenge` if the verify token matches."""
        if self._verify_token is None:
            return _error(404, "Meta webhooks are not configured (meta_webhooks.verify_token)")
        params = request.query_params
        token = params.get("hub.verify_token", "")
        challenge = params.get("hub.challenge", "")
        if (
            params.get("hub.mode") != "subscribe"
            or not hmac.compare_digest(token.encode("utf-8"), self._verify_token.encode("utf-8"))
            or not challenge
            or len(challenge) > _MAX_CHALLENGE_CHARS
        ):
            return PlainTextResponse("verification failed", status_code=403)
        return PlainTextResponse(challenge)

    async def _secrets(self) -> list[str]:
        """`meta_webhooks.app_secret` and every Meta connection's app secret."""
        secrets = [self._app_secret] if self._app_secret is not None else []
        if self._connection_secrets is not None:
            try:
                secrets += [s for s in await self._connection_secrets() if s]
            except Exception:
                log.exception("cannot read the Meta connections' app secrets")
        return list(dict.fromkeys(secrets))

    async def notification(self, request: Request) -> Response:
        """A signed change notification: 200 at once, the work in the background."""
        secrets = await self._secrets()
        if not secrets:
            return _error(404, "Meta webhooks are not configured (meta_webhooks.app_secret)")
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        except ClientDisconnect:
            return _error(400, "client disconnected")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return _error(401, f"missing {SIGNATURE_HEADER}")
        given = signature.strip().encode("utf-8")
        # Every secret is compared (in constant time each): which app signed is not told.
        matches = [
            hmac.compare_digest(expected_signature(secret, body).encode("ascii"), given)
            for secret in secrets
        ]
        if not any(matches):
            log.warning("meta webhook with a bad signature refused")
            return _error(403, f"{SIGNATURE_HEADER} does not match")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "body is not JSON")
        if not isinstance(document, dict):
            return _error(400, "body is not a JSON object")
        try:
            first = await self._seen.claim(
                "metawh:" + hashlib.sha256(body).hexdigest(), self._replay_window
            )
        except ServiceUnavailable as exc:
            # Meta retries until it gets a 200: refusing now loses nothing.
            return _error(503, str(exc), {"Retry-After": retry_after_header(exc.retry_after)})
        if not first:
            log.info("meta webhook seen before; acknowledged without work")
            return PlainTextResponse("EVENT_RECEIVED")
        if document.get("object") == "whatsapp_business_account":
            self._notices.notify(document)
        else:
            log.info("meta webhook for another object ignored", object=document.get("object"))
        return PlainTextResponse("EVENT_RECEIVED")
