"""Emit the Meta webhook that matches each admin health change, signed as Meta signs it.

Register a target with `POST /_emulator/webhooks {"url", "app_secret"}`; from
then on every `PUT /_emulator/nodes/{id}/health` also POSTs, in the
background, what Meta would send about it:

- a phone number: `phone_number_quality_update`, event `FLAGGED` when worse
  (or still not AVAILABLE), else `UNFLAGGED`;
- a template: `message_template_status_update`, event `FLAGGED` when LIMITED, else
  the template's status, which moves with its health (AVAILABLE makes it `APPROVED`,
  BLOCKED makes an approved one `PAUSED`);
- a WABA, business or app: `account_update`, one entry per WABA concerned, event
  `ACCOUNT_VIOLATION` (BLOCKED), `ACCOUNT_RESTRICTION` (LIMITED) or
  `DISABLED_UPDATE` with `waba_ban_state: REINSTATE` (AVAILABLE).

Every `PATCH /_emulator/nodes/{id}` that changes a number's or template's fields
(quality, limits, statuses) sends the notifications listed in `field_webhooks`.

The body is `{"object": "whatsapp_business_account", "entry": [{"id": <WABA>,
"time": <unix>, "changes": [{"field", "value"}]}]}` with
`X-Hub-Signature-256: sha256=<HMAC-SHA256(body, app_secret)>`. Delivery never
blocks the admin call: each POST is a background task with a bounded timeout,
and failures are logged and listed in `GET /_emulator/webhooks`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wahealth.domain import EntityType
from wahealth.upstream.emulator.bodies import BadBody, json_body, validation_details
from wahealth.upstream.emulator.field_webhooks import field_notices
from wahealth.upstream.emulator.scenario import PhoneNumberSpec, TemplateSpec

if TYPE_CHECKING:
    from wahealth.upstream.emulator.state import EmulatorState, FieldChange, HealthChange

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SEVERITY = {"AVAILABLE": 0, "LIMITED": 1, "BLOCKED": 2}
_KEPT_DELIVERIES = 100


class WebhookTargetBody(BaseModel):
    """The body of `POST /_emulator/webhooks`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    app_secret: str = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        return url


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    app_secret: str


def sign(app_secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` for `body`."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def notification_for(state: EmulatorState, change: HealthChange, now: float) -> dict[str, Any]:
    """The webhook body Meta would send for `change` (entries may be empty)."""
    before = _SEVERITY[change.before.can_send_message]
    after_status = change.after.can_send_message
    after = _SEVERITY[after_status]
    node = state.node(change.entity_id)
    spec = node.spec if node is not None else None
    entries: list[dict[str, Any]] = []
    if change.entity_type is EntityType.PHONE_NUMBER and isinstance(spec, PhoneNumberSpec):
        worse = after > before or (after == before and after > 0)
        value: dict[str, Any] = {
            "display_phone_number": spec.display_phone_number,
            "event": "FLAGGED" if worse else "UNFLAGGED",
        }
        entries.append(_entry(spec.waba, now, "phone_number_quality_update", value))
    elif change.entity_type is EntityType.MESSAGE_TEMPLATE and isinstance(spec, TemplateSpec):
        event = "FLAGGED" if after_status == "LIMITED" else spec.status
        value = {
            "event": event,
            "message_template_id": int(spec.id) if spec.id.isdigit() else spec.id,
            "message_template_name": spec.name,
            "message_template_language": spec.language,
            "reason": None,
        }
        if event == "PAUSED":
            value["other_info"] = {
                "title": "FIRST_PAUSE",
                "description": _first_description(change)
                or "Your message template has been paused.",
            }
        entries.append(_entry(spec.waba, now, "message_template_status_update", value))
    else:
        for waba_id in change.waba_ids:
            entries.append(_entry(waba_id, now, "account_update", _account_value(change)))
    return {"object": "whatsapp_business_account", "entry": entries}


def _entry(waba_id: str, now: float, field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": waba_id, "time": int(now), "changes": [{"field": field, "value": value}]}


def _first_description(change: HealthChange) -> str | None:
    return next((e.error_description for e in change.after.errors if e.error_description), None)


def _account_value(change: HealthChange) -> dict[str, Any]:
    status = change.after.can_send_message
    if status == "BLOCKED":
        codes = ",".join(str(e.error_code) for e in change.after.errors)
        return {
            "event": "ACCOUNT_VIOLATION",
            "violation_info": {"violation_type": _first_description(change) or codes or "POLICY"},
        }
    if status == "LIMITED":
        return {
            "event": "ACCOUNT_RESTRICTION",
            "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}],
        }
    return {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "REINSTATE"}}


class WebhookEmitter:
    """Targets registered through the admin API, and the background POSTs to them.

    `transport` (settable) routes the POSTs, e.g. `httpx.ASGITransport(app=gateway)`
    to deliver in-process; by default they go over the network.
    """

    def __init__(
        self,
        state: EmulatorState,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self.transport = transport
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._targets: dict[str, WebhookTarget] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=_KEPT_DELIVERIES)

    @property
    def targets(self) -> list[WebhookTarget]:
        return list(self._targets.values())

    def register(self, url: str, app_secret: str) -> WebhookTarget:
        """Add a target (a URL registered again gets the new secret)."""
        target = WebhookTarget(url, app_secret)
        self._targets[url] = target
        return target

    def clear(self) -> None:
        self._targets.clear()

    async def on_health_change(self, change: HealthChange) -> None:
        """The `on_health_change` hook: schedule the webhook for every target."""
        if not self._targets:
            return
        self._send(notification_for(self._state, change, self._clock()))

    async def on_field_change(self, change: FieldChange) -> None:
        """The `on_field_change` hook: one webhook per Meta field concerned, for every target."""
        if not self._targets:
            return
        now = self._clock()
        for waba_id, field, value in field_notices(change):
            entry = _entry(waba_id, now, field, value)
            self._send({"object": "whatsapp_business_account", "entry": [entry]})

    def _send(self, notification: dict[str, Any]) -> None:
        if not notification["entry"]:
            return
        body = json.dumps(notification, separators=(",", ":")).encode("utf-8")
        field = notification["entry"][0]["changes"][0]["field"]
        for target in self._targets.values():
            task = asyncio.ensure_future(self._post(target, body, field))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every webhook scheduled so far was sent (or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _post(self, target: WebhookTarget, body: bytes, field: str) -> None:
        record: dict[str, Any] = {"url": target.url, "field": field}
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            SIGNATURE_HEADER: sign(target.app_secret, body),
        }
        try:
            async with (
                asyncio.timeout(self.timeout_seconds),
                httpx.AsyncClient(
                    transport=self.transport, timeout=self.timeout_seconds, trust_env=False
                ) as client,
            ):
                response = await client.post(target.url, content=body, headers=headers)
            record["status"] = response.status_code
            if response.status_code != 200:
                log.warning(
                    "emulator webhook answered", url=target.url, status=response.status_code
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("emulator webhook failed", url=target.url, error=record["error"])
        self.deliveries.append(record)


def _emitter(request: Request) -> WebhookEmitter:
    emitter: WebhookEmitter = request.app.state.emulator.webhooks
    return emitter


def _listing(emitter: WebhookEmitter) -> dict[str, Any]:
    return {
        "targets": [{"url": t.url} for t in emitter.targets],
        "deliveries": list(emitter.deliveries),
    }


async def post_webhook_target(request: Request) -> JSONResponse:
    try:
        body = WebhookTargetBody.model_validate(await json_body(request))
    except BadBody as exc:
        return exc.response
    except ValidationError as exc:
        details = validation_details(exc)
        return JSONResponse({"error": "invalid webhook target", "details": details}, 400)
    emitter = _emitter(request)
    emitter.register(body.url, body.app_secret)
    return JSONResponse(_listing(emitter), status_code=201)


async def get_webhook_targets(request: Request) -> JSONResponse:
    return JSONResponse(_listing(_emitter(request)))


async def delete_webhook_targets(request: Request) -> JSONResponse:
    emitter = _emitter(request)
    emitter.clear()
    return JSONResponse(_listing(emitter))


def webhook_routes() -> list[Route]:
    return [
        Route("/_emulator/webhooks", post_webhook_target, methods=["POST"]),
        Route("/_emulator/webhooks", get_webhook_targets, methods=["GET"]),
        Route("/_emulator/webhooks", delete_webhook_targets, methods=["DELETE"]),
    ]
