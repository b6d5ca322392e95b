"""Every core error has a rendering in every dialect's table, in that dialect's own shape.

The tables are resolved by class hierarchy, so a new core error type that no table
covers would fall through to the app's last-resort 500. This walks every core error
type there is (the CAMS signature errors included, which subclass `SignatureRejected`),
builds an instance of each, renders it through each table and checks the wire shape.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.responses import Response

import wahealth.auth.errors  # noqa: F401 — defines the CAMS subclasses of SignatureRejected
from wahealth.core.errors import CoreError, ServiceUnavailable, Throttled, UpstreamUnavailable
from wahealth.dialects.cams.errors import ERRORS as CAMS_ERRORS
from wahealth.dialects.cams.errors import CamsError, error_response
from wahealth.dialects.d360.routes import ERRORS as D360_ERRORS
from wahealth.dialects.graph.routes import ERRORS as GRAPH_ERRORS
from wahealth.httputil import ErrorTable, core_error_types
from wahealth.web.history import ERRORS as HISTORY_ERRORS

NODE_ID = "106540352242922"
REQUEST_ID = "0F5E1B7A-6C1D-4E55-9C8B-2A1D3B4C5D6E"

ERROR_TYPES = sorted(
    (t for t in core_error_types() if t is not CoreError), key=lambda t: t.__qualname__
)
TABLES: dict[str, ErrorTable[Any]] = {
    "cams": CAMS_ERRORS,
    "d360": D360_ERRORS,
    "graph": GRAPH_ERRORS,
    "history": HISTORY_ERRORS,
}


def instance_of(error_type: type[CoreError]) -> CoreError:
    """An instance of `error_type`, built from its constructor's required arguments."""
    parameters = [
        p for p in inspect.signature(error_type.__init__).parameters.values() if p.name != "self"
    ]
    required = [
        p
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    args: list[object] = [
        2.5 if p.name in ("retry_after", "seconds") else f"what went wrong ({p.name})"
        for p in required
    ]
    if not args and any(p.kind is p.VAR_POSITIONAL for p in parameters):
        args = [f"{error_type.__name__} raised by a use case"]  # Exception's own (*args)
    return error_type(*args)


def _body(response: Response) -> Any:
    return json.loads(bytes(response.body))


def test_there_are_core_errors_to_check() -> None:
    names = {t.__name__ for t in ERROR_TYPES}
    # The base types and the CAMS signature errors are all found.
    assert {"InvalidRequest", "Unauthenticated", "Throttled", "UpstreamUnavailable"} <= names
    assert {"SignatureRejected", "SignatureDoesNotMatch", "SignatureNonceUsed"} <= names


@pytest.mark.parametrize("dialect", sorted(TABLES))
@pytest.mark.parametrize("error_type", ERROR_TYPES, ids=lambda t: t.__name__)
def test_every_core_error_type_has_a_rendering(dialect: str, error_type: type[CoreError]) -> None:
    assert TABLES[dialect].renders(error_type), f"{dialect} cannot render {error_type.__name__}"


def _check_retry_after(response: Response) -> None:
    if response.status_code in (429, 503):
        value = response.headers.get("retry-after")
        assert value is not None, f"{response.status_code} without Retry-After"
        assert value.isdigit()
        assert int(value) >= 1


def _cams(exc: CoreError) -> Response:
    err = CAMS_ERRORS.render(exc)
    assert isinstance(err, CamsError)
    assert err.code
    assert err.code != "InternalError", err.code
    assert 400 <= err.status < 600
    response = error_response(REQUEST_ID, err)
    body = _body(response)
    assert {"RequestId", "Code", "Message", "HostId", "Recommend"} <= set(body), body
    assert body["Code"] == err.code
    assert body["RequestId"] == REQUEST_ID
    assert isinstance(body["Message"], str)
    assert body["Message"]
    assert response.status_code == err.status
    return response


def _d360(exc: CoreError) -> Response:
    response = D360_ERRORS.render(exc)
    assert isinstance(response, Response)
    assert response.status_code < 500 or response.status_code == 503, response.status_code
    body = _body(response)
    assert set(body) == {"meta"}, body
    assert body["meta"]["httpCode"] == response.status_code
    assert body["meta"]["success"] is False
    assert isinstance(body["meta"]["developerMessage"], str)
    return response


def _graph(exc: CoreError) -> Response:
    response = GRAPH_ERRORS.render(exc)(NODE_ID)
    assert isinstance(response, Response)
    assert 400 <= response.status_code < 600
    body = _body(response)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error), error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert isinstance(error["code"], int)
    assert isinstance(error["fbtrace_id"], str)
    assert response.headers["x-fb-trace-id"] == error["fbtrace_id"]
    return response


def _history(exc: CoreError) -> Response:
    response = HISTORY_ERRORS.render(exc)
    assert isinstance(response, Response)
    assert 400 <= response.status_code < 600
    body = _body(response)
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str)
    assert body["error"]
    return response


SHAPES: dict[str, Callable[[CoreError], Response]] = {
    "cams": _cams,
    "d360": _d360,
    "graph": _graph,
    "history": _history,
}


@pytest.mark.parametrize("dialect", sorted(SHAPES))
@pytest.mark.parametrize("error_type", ERROR_TYPES, ids=lambda t: t.__name__)
def test_each_rendering_has_the_dialects_shape(dialect: str, error_type: type[CoreError]) -> None:
    response = SHAPES[dialect](instance_of(error_type))
    _check_retry_after(response)


@pytest.mark.parametrize("dialect", sorted(SHAPES))
def test_retry_after_rounds_up_to_whole_seconds(dialect: str) -> None:
    for exc in (
        Throttled(0.2),
        UpstreamUnavailable("Meta failed", retry_after=2.1),
        ServiceUnavailable("Redis is down", retry_after=0.0),
    ):
        response = SHAPES[dialect](exc)
        if response.status_code in (429, 503):
            expected = max(1, int(exc.retry_after + 0.999))
            assert response.headers["retry-after"] == str(expected)
