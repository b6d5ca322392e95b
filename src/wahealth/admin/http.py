"""How one admin operation meets HTTP: a declared operation, its parsing and its errors.

An `Operation` says its method, path, body and answer types; `serve` turns it into a
Starlette endpoint (authenticate, parse, one use-case call, render) and `openapi`
reads the same declarations, so the document cannot drift from what is served.
Errors are translated by one table; nothing a client sends can make a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from wahealth.admin.errors import AdminError, Invalid, Unauthorized
from wahealth.admin.schemas import FieldProblem, Problem
from wahealth.admin.tokens import AdminTokens, Caller
from wahealth.storage.errors import Conflict, NotFound, StorageUnavailable

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 64 * 1024
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    type: type[int] | type[str] | type[bool]
    description: str
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One admin request, parsed: who asks, the path and query parameters, the body."""

    caller: Caller
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Any


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    handler: Callable[[Call], Awaitable[Any]]
    answer: Any  # a model, or list[model]
    body: Any = None  # a model, or an annotated union of models
    status: int = 200
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = (401, 403, 404, 422)  # 422: an unknown query parameter
    _adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)
    _body_adapter: TypeAdapter[Any] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_adapter", TypeAdapter(self.answer))
        body = None if self.body is None else TypeAdapter(self.body)
        object.__setattr__(self, "_body_adapter", body)

    def parse(self, raw: bytes) -> Any:
        assert self._body_adapter is not None
        return self._body_adapter.validate_json(raw)

    def render(self, result: Any) -> Response:
        return Response(self._adapter.dump_json(result), self.status, media_type=_JSON)


def problem(status: int, error: str, details: list[FieldProblem] | None = None) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="wahealth admin"'} if status == 401 else None
    body = Problem(error=error, details=details).model_dump_json(exclude_none=True)
    return Response(body, status, headers=headers, media_type=_JSON)


def _status_of(exc: Exception) -> int | None:
    if isinstance(exc, AdminError):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, StorageUnavailable):
        return 503
    if isinstance(exc, ValueError):
        return 422
    return None


def _validation_problem(exc: ValidationError) -> Response:
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return problem(400, "the body is not valid JSON")
    details = [
        FieldProblem(loc=list(error["loc"]), msg=error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]
    shown = "; ".join(f"{'.'.join(map(str, d.loc)) or 'body'}: {d.msg}" for d in details[:5])
    return problem(422, f"invalid request body: {shown}", details)


def _query(op: Operation, request: Request) -> dict[str, Any]:
    known = {param.name for param in op.query}
    unknown = sorted(name for name in request.query_params if name not in known)
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0][:100]!r}")
    values: dict[str, Any] = {}
    for param in op.query:
        raw = request.query_params.get(param.name)
        if raw is None:
            values[param.name] = None
        elif param.type is bool:
            if raw not in ("true", "false"):
                raise Invalid(f"query parameter {param.name} must be true or false")
            values[param.name] = raw == "true"
        elif param.type is int:
            if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 30:
                raise Invalid(f"query parameter {param.name} must be an integer")
            value = int(raw)
            low, high = param.minimum, param.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                raise Invalid(f"query parameter {param.name} must be within {low}..{high}")
            values[param.name] = value
        else:
            values[param.name] = raw
    return values


async def _body(op: Operation, request: Request) -> Any:
    if op.body is None:
        return None
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Invalid(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raw = b"{}"
    return op.parse(raw)


def serve(op: Operation, tokens: AdminTokens) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for `op`."""

    async def endpoint(request: Request) -> Response:
        try:
            caller = await tokens.check(request.headers.get("authorization"))
            call = Call(caller, request.path_params, _query(op, request), await _body(op, request))
            return op.render(await op.handler(call))
        except ValidationError as exc:
            return _validation_problem(exc)
        except Exception as exc:
            status = _status_of(exc)
            if status is None:
                raise
            if isinstance(exc, Unauthorized):
                log.info("admin request refused", path=request.url.path, reason=str(exc))
            return problem(status, str(exc))

    return endpoint
