"""`create_emulator`: the Meta Graph API stand-in as a Starlette app.

The HTTP layer only decodes requests, applies injected faults and encodes
answers; what a call means is decided in `graph_api` and `batch`, which batch
sub-requests share with plain requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wahealth.http_body import BodyTooLarge, NotJson, loads_bounded, read_bounded
from wahealth.upstream.emulator import envelopes
from wahealth.upstream.emulator.accounts import authorize
from wahealth.upstream.emulator.admin import admin_routes
from wahealth.upstream.emulator.batch import answer_batch
from wahealth.upstream.emulator.envelopes import JSON_CONTENT_TYPE, GraphAnswer
from wahealth.upstream.emulator.graph_api import GraphCall, GraphPath, answer_call
from wahealth.upstream.emulator.scenario import Scenario
from wahealth.upstream.emulator.state import EmulatorState, Fault

# Graph batches of 50 sub-requests are a few KiB; Meta refuses far smaller bodies than this.
GRAPH_BODY_LIMIT = 1024 * 1024


def create_emulator(
    scenario: Scenario,
    *,
    clock: Callable[[], float] = time.monotonic,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """An ASGI app serving `scenario` like Meta's Graph API; its state is `app.state.emulator`.

    `webhook_transport` routes the Meta webhooks it emits (default: the network).
    """
    app = Starlette(
        routes=[
            *admin_routes(),
            Route("/{path:path}", _graph_endpoint, methods=["GET", "POST", "DELETE"]),
        ]
    )
    app.state.emulator = state = EmulatorState(scenario, clock)
    state.webhooks.transport = webhook_transport
    state.on_health_change.append(state.webhooks.on_health_change)
    return app


def emulator_state(app: Starlette) -> EmulatorState:
    """The state of an app made by `create_emulator` (to add hooks, read counts, ...)."""
    state: EmulatorState = app.state.emulator
    return state


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in {"bearer", "oauth"} and value.strip():
        return value.strip()
    return None


async def _form(request: Request) -> dict[str, Any]:
    """The POST body: form-encoded as Meta expects, or JSON as some clients send.

    Raises BodyTooLarge past GRAPH_BODY_LIMIT; a body that is not JSON counts as empty.
    """
    body = await read_bounded(request, GRAPH_BODY_LIMIT)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            decoded = loads_bounded(body or b"{}")
        except NotJson:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _fault_answer(state: EmulatorState, fault: Fault, node_id: str | None) -> GraphAnswer | None:
    if fault.body is not None:
        return GraphAnswer(
            fault.status or 200, fault.body, {"Content-Type": "text/html; charset=utf-8"}
        )
    if fault.status is None and fault.code is None:
        return None  # latency only
    status = fault.status or (401 if fault.code == 190 else 400)
    code = fault.code if fault.code is not None else _default_code(status)
    if status == 429 or code in envelopes.RATE_LIMIT_MESSAGES:
        return envelopes.rate_limited(
            code,
            status=status,
            buc_id=_usage_scope(state, node_id),
            regain_minutes=fault.estimated_time_to_regain_access,
            retry_after=fault.retry_after,
        )
    answer = envelopes.generic_error(status, code)
    if fault.retry_after is not None:
        answer.headers["Retry-After"] = str(fault.retry_after)
    return answer


def _default_code(status: int) -> int:
    if status == 429:
        return 4
    if status in (401, 403):
        return 190
    if status == 503:
        return 2
    return 1 if status >= 500 else 100


def _usage_scope(state: EmulatorState, node_id: str | None) -> str:
    """Whose usage a throttling header reports: the node's WABA, else any business we know."""
    node = state.node(node_id) if node_id else None
    waba = state.waba_of(node) if node is not None else None
    if waba is not None:
        return waba.id
    if node is not None:
        return node.spec.id
    scenario = state.scenario
    return next((b.id for b in scenario.businesses), node_id or "0")


def _response(answer: GraphAnswer) -> Response:
    headers: Mapping[str, str] = {"x-fb-trace-id": envelopes.fbtrace_id(), **answer.headers}
    media_type = None if "Content-Type" in headers else JSON_CONTENT_TYPE
    return Response(answer.body_bytes(), answer.status, headers=headers, media_type=media_type)


async def _graph_endpoint(request: Request) -> Response:
    state = emulator_state(request.app)
    path = GraphPath.parse(request.url.path)
    params = dict(request.query_params)
    try:
        form = await _form(request) if request.method == "POST" else {}
    except BodyTooLarge as exc:
        return _response(envelopes.graph_error(413, f"(#100) {exc}", 100))
    token = _bearer(request) or params.get("access_token") or form.get("access_token")
    is_batch = request.method == "POST" and not path.segments
    fault = state.faults.take()
    if fault is not None:
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        faulted = _fault_answer(state, fault, path.node_id)
        if faulted is not None:
            state.calls.record("/" if is_batch else path.plain, path.node_id)
            return _response(faulted)
    refusal = authorize(state, token, params.get("appsecret_proof") or form.get("appsecret_proof"))
    if refusal is not None and token in state.tokens:
        state.calls.record("/" if is_batch else path.plain, path.node_id)
        return _response(refusal)
    base_url = str(request.base_url).rstrip("/")
    if is_batch:
        include_headers = str(form.get("include_headers", "true")).lower() != "false"
        answer = answer_batch(
            state,
            form.get("batch"),
            token=token,
            include_headers=include_headers,
            base_url=base_url,
        )
    else:
        call = GraphCall(request.method, request.url.path, params, token, base_url)
        answer = answer_call(state, call)
    return _response(answer)
