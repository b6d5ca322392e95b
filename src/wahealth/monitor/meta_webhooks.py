"""Meta webhooks in: verify, acknowledge at once, refresh the nodes they concern in the background.

Meta signs each POST with `X-Hub-Signature-256: sha256=<HMAC-SHA256(raw body,
app secret)>`; anything unsigned or wrongly signed is refused before its body
is even parsed, so a forged webhook cannot make us spend Meta calls or record
anything. Meta retries webhooks that are not answered 200 quickly, so the
answer never waits for the refreshes: they run as background tasks, each
through `refresh(node_id, "webhook")`, which records the transition and
enqueues its alerts like any other refresh.

Which nodes a change concerns:

| field | nodes refreshed |
|---|---|
| `account_update` | the WABA (`entry[].id`), its phone numbers and templates |
| `business_capability_update` | the WABA and its phone numbers |
| `phone_number_quality_update` | the number with that `display_phone_number` in the WABA |
| `message_template_status_update`, `message_template_quality_update` | `message_template_id` |

Other fields are acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import orjson
import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wahealth.domain import normalize_phone_number

log = structlog.get_logger(__name__)

PATH = "/webhooks/meta"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 256 * 1024
_MAX_CHALLENGE_CHARS = 512
_REFRESH_CONCURRENCY = 4
CAUSE = "webhook"

Refresh = Callable[[str, str], Awaitable[object]]


class WebhookCatalog(Protocol):
    """What the ingest needs of the catalog (`CatalogRepository` has it)."""

    async def phone_numbers_of_waba(self, waba_id: str) -> Iterable[Any]: ...

    async def templates_of_waba(self, waba_id: str) -> Iterable[Any]: ...


class _TooLarge(Exception):
    pass


def expected_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(body)


class MetaWebhookIngest:
    """`GET`/`POST /webhooks/meta`: Meta's verification handshake and signed notifications."""

    def __init__(
        self,
        *,
        verify_token: str | None,
        app_secret: str | None,
        catalog: WebhookCatalog,
        refresh: Refresh,
    ) -> None:
        self._verify_token = verify_token or None
        self._app_secret = app_secret or None
        self._catalog = catalog
        self._refresh = refresh
        self._tasks: set[asyncio.Task[None]] = set()

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

    async def notification(self, request: Request) -> Response:
        """A signed change notification: 200 at once, refreshes in the background."""
        if self._app_secret is None:
            return _error(404, "Meta webhooks are not configured (meta_webhooks.app_secret)")
        try:
            body = await _read_body(request)
        except _TooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        except ClientDisconnect:
            return _error(400, "client disconnected")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return _error(401, f"missing {SIGNATURE_HEADER}")
        expected = expected_signature(self._app_secret, body)
        if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
            log.warning("meta webhook with a bad signature refused")
            return _error(403, f"{SIGNATURE_HEADER} does not match")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "body is not JSON")
        if not isinstance(document, dict):
            return _error(400, "body is not a JSON object")
        if document.get("object") == "whatsapp_business_account":
            self._spawn(self._process(document))
        else:
            log.info("meta webhook for another object ignored", object=document.get("object"))
        return PlainTextResponse("EVENT_RECEIVED")

    async def drain(self) -> None:
        """Wait for every refresh scheduled so far (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel refreshes still running (Meta's answer is already given; the poller covers)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, document: Mapping[str, Any]) -> None:
        node_ids: dict[str, None] = {}
        for entry in _objects(document.get("entry")):
            waba_id = str(entry.get("id") or "")
            for change in _objects(entry.get("changes")):
                field = str(change.get("field") or "")
                value = change.get("value")
                value = value if isinstance(value, Mapping) else {}
                try:
                    found = await self._nodes_for(field, waba_id, value)
                except Exception:
                    log.exception(
                        "meta webhook: cannot resolve nodes", field=field, waba_id=waba_id
                    )
                    continue
                log.info("meta webhook", field=field, waba_id=waba_id, nodes=len(found))
                node_ids.update(dict.fromkeys(found))
        limit = asyncio.Semaphore(_REFRESH_CONCURRENCY)

        async def refresh(node_id: str) -> None:
            async with limit:
                try:
                    await self._refresh(node_id, CAUSE)
                except Exception as exc:  # noqa: BLE001 — logged; the poller covers it
                    # One node Meta cannot answer for must not stop the others.
                    log.warning(
                        "refresh after meta webhook failed",
                        node_id=node_id,
                        error=f"{type(exc).__name__}: {exc}",
                    )

        await asyncio.gather(*(refresh(node_id) for node_id in node_ids))

    async def _nodes_for(self, field: str, waba_id: str, value: Mapping[str, Any]) -> list[str]:
        if not waba_id.isdigit():
            return []
        if field == "account_update":
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            templates = await self._catalog.templates_of_waba(waba_id)
            return [waba_id, *(n.id for n in numbers), *(t.id for t in templates)]
        if field == "business_capability_update":
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            return [waba_id, *(n.id for n in numbers)]
        if field == "phone_number_quality_update":
            digits = normalize_phone_number(str(value.get("display_phone_number") or ""))
            numbers = await self._catalog.phone_numbers_of_waba(waba_id)
            matches = [n.id for n in numbers if digits and n.digits == digits]
            if not matches:
                log.info("meta webhook for a phone number not in the catalog", waba_id=waba_id)
            return matches
        if field in ("message_template_status_update", "message_template_quality_update"):
            template_id = str(value.get("message_template_id") or "")
            return [template_id] if template_id.isdigit() else []
        return []


def _objects(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]
