"""Bodies of the emulator's admin API: bounded, JSON, and refused with a reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from wahealth.http_body import BodyTooLarge, NotJson, loads_bounded, read_bounded

ADMIN_BODY_LIMIT = 64 * 1024


class BadBody(Exception):
    """An admin body that cannot be used; `response` says why."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(bytes(response.body).decode("utf-8", errors="replace"))
        self.response = response


async def json_body(request: Request) -> Any:
    """The request's JSON body, bounded in size and depth; BadBody (413/400) otherwise."""
    try:
        raw = await read_bounded(request, ADMIN_BODY_LIMIT)
    except BodyTooLarge as exc:
        raise BadBody(JSONResponse({"error": str(exc)}, status_code=413)) from None
    try:
        return loads_bounded(raw)
    except NotJson as exc:
        raise BadBody(invalid(str(exc))) from None


def invalid(message: str, details: Any = None) -> JSONResponse:
    content: dict[str, Any] = {"error": message}
    if details is not None:
        content["details"] = details
    return JSONResponse(content, status_code=400)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the offending input (which may be large)."""
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
