"""The emulator's admin API under `/_emulator/`: change healths and fields, count calls,
inject faults.

`PATCH /_emulator/nodes/{id}` changes a phone number's or template's fields, named as
Meta names them (`{"quality_rating": "RED", "status": "FLAGGED"}`, `{"status": "PAUSED"}`),
checked as a scenario's are; the Graph answers show them at once, and the matching
Meta webhooks go out (see `field_webhooks`).

No token is needed: the admin API is for tests and demos, and answers plain
JSON (`{"error": ...}` on failure), not Graph envelopes. Bodies are read up to
`ADMIN_BODY_LIMIT` bytes (413 beyond); a body that is not JSON, nests too deep or
does not have the expected shape is a 400 saying why.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wahealth.upstream.emulator.accounts import TOKEN_TROUBLES
from wahealth.upstream.emulator.bodies import BadBody, invalid, json_body, validation_details
from wahealth.upstream.emulator.scenario import HealthSpec, HealthValue
from wahealth.upstream.emulator.state import (
    CHANGEABLE_FIELDS,
    EmulatorState,
    Fault,
    UnchangeableField,
    UnknownNode,
)
from wahealth.upstream.emulator.webhooks import webhook_routes


class HealthUpdate(HealthSpec):
    """The body of `PUT /_emulator/nodes/{id}/health`: like a scenario's health, status required."""

    can_send_message: HealthValue


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def put_health(request: Request) -> JSONResponse:
    state = _state(request)
    node_id = request.path_params["node_id"]
    if state.node(node_id) is None:
        return JSONResponse({"error": f"unknown node {node_id!r}"}, status_code=404)
    try:
        body = await json_body(request)
    except BadBody as exc:
        return exc.response
    try:
        update = HealthUpdate.model_validate(body)
    except ValidationError as exc:
        return invalid("invalid health", validation_details(exc))
    health = HealthSpec.model_validate(update.model_dump())
    try:
        change = await state.set_health(node_id, health)
    except UnknownNode:
        return JSONResponse({"error": f"unknown node {node_id!r}"}, status_code=404)
    return JSONResponse(
        {
            "id": node_id,
            "entity_type": change.entity_type.value,
            "health": change.after.model_dump(mode="json", exclude_none=True),
        }
    )


async def patch_node(request: Request) -> JSONResponse:
    state = _state(request)
    node_id = request.path_params["node_id"]
    node = state.node(node_id)
    if node is None:
        return JSONResponse({"error": f"unknown node {node_id!r}"}, status_code=404)
    try:
        body = await json_body(request)
    except BadBody as exc:
        return exc.response
    if not isinstance(body, dict):
        return invalid("the body must be a JSON object of field values")
    try:
        change = await state.set_fields(node_id, body)
    except UnchangeableField as exc:
        allowed = sorted(CHANGEABLE_FIELDS.get(node.type, ()))
        return invalid(str(exc), {"changeable": allowed})
    except ValidationError as exc:
        return invalid("invalid field values", validation_details(exc))
    spec = change.node.spec
    fields = {name: getattr(spec, name) for name in sorted(CHANGEABLE_FIELDS[change.node.type])}
    return JSONResponse(
        {"id": node_id, "fields": fields, "changed": sorted(change.after)},
    )


async def get_calls(request: Request) -> JSONResponse:
    calls = _state(request).calls
    snapshot = calls.snapshot()
    if request.query_params.get("times") == "true":
        snapshot["times"] = list(calls.times)
    return JSONResponse(snapshot)


async def get_node_calls(request: Request) -> JSONResponse:
    return JSONResponse({"nodes": _state(request).calls.nodes_snapshot()})


async def delete_calls(request: Request) -> JSONResponse:
    state = _state(request)
    state.calls.reset()
    return JSONResponse(state.calls.snapshot())


async def post_fault(request: Request) -> JSONResponse:
    state = _state(request)
    try:
        body = await json_body(request)
    except BadBody as exc:
        return exc.response
    try:
        fault = Fault.model_validate(body)
    except ValidationError as exc:
        return invalid("invalid fault", validation_details(exc))
    state.faults.add(fault)
    return JSONResponse({"pending": state.faults.pending()}, status_code=201)


async def get_faults(request: Request) -> JSONResponse:
    return JSONResponse({"pending": _state(request).faults.pending()})


async def delete_faults(request: Request) -> JSONResponse:
    state = _state(request)
    state.faults.clear()
    return JSONResponse({"pending": []})


async def get_scenario(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).current_scenario().model_dump(mode="json"))


async def delete_rate_limits(request: Request) -> JSONResponse:
    _state(request).budget.reset()
    return JSONResponse({"reset": True})


async def put_token(request: Request) -> JSONResponse:
    """`{"state": "valid" | "revoked" | "expired" | "permission"}`: make a token fail as Meta's
    do (190 revoked or expired, 200 a permission taken away), or work again."""
    state = _state(request)
    token = request.path_params["token"]
    if token not in state.tokens:
        return JSONResponse({"error": "unknown token"}, status_code=404)
    try:
        body = await json_body(request)
    except BadBody as exc:
        return exc.response
    wanted = body.get("state") if isinstance(body, dict) else None
    if wanted == "valid":
        state.token_trouble.pop(token, None)
    elif wanted in TOKEN_TROUBLES:
        state.token_trouble[token] = wanted
    else:
        return invalid('state must be "valid", "revoked", "expired" or "permission"')
    return JSONResponse({"state": wanted})


async def unknown_admin_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(
        {"error": f"no admin endpoint {request.method} {request.url.path}"}, status_code=404
    )


_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def admin_routes() -> list[Route]:
    return [
        Route("/_emulator/nodes/{node_id}/health", put_health, methods=["PUT"]),
        Route("/_emulator/nodes/{node_id}", patch_node, methods=["PATCH"]),
        Route("/_emulator/calls", get_calls, methods=["GET"]),
        Route("/_emulator/calls", delete_calls, methods=["DELETE"]),
        Route("/_emulator/calls/nodes", get_node_calls, methods=["GET"]),
        Route("/_emulator/faults", post_fault, methods=["POST"]),
        Route("/_emulator/faults", get_faults, methods=["GET"]),
        Route("/_emulator/faults", delete_faults, methods=["DELETE"]),
        Route("/_emulator/scenario", get_scenario, methods=["GET"]),
        Route("/_emulator/rate-limits", delete_rate_limits, methods=["DELETE"]),
        Route("/_emulator/tokens/{token}", put_token, methods=["PUT"]),
        *webhook_routes(),
        Route("/_emulator/{rest:path}", unknown_admin_endpoint, methods=_ANY_METHOD),
        Route("/_emulator", unknown_admin_endpoint, methods=_ANY_METHOD),
    ]
