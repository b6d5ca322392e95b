"""Every core error has a rendering in the Graph read API's table, in Meta's envelope."""

from __future__ import annotations

import json

import pytest
from tests.core.test_error_tables import instance_of

import wahealth.auth.errors  # noqa: F401 — defines the CAMS subclasses of SignatureRejected
from wahealth.core.errors import CoreError
from wahealth.core.graph_fields import MetaRefused
from wahealth.dialects.graph.errors import ERRORS, render
from wahealth.httputil import core_error_types

ERROR_TYPES = sorted(
    (t for t in core_error_types() if t is not CoreError), key=lambda t: t.__qualname__
)


def test_the_read_api_errors_are_among_them() -> None:
    names = {t.__name__ for t in ERROR_TYPES}
    assert {"NonexistingField", "MetaRefused", "AliasesNotFound", "BadBatch"} <= names


@pytest.mark.parametrize("error_type", ERROR_TYPES, ids=lambda t: t.__name__)
def test_each_error_renders_in_metas_envelope(error_type: type[CoreError]) -> None:
    assert ERRORS.renders(error_type)

    response = render(instance_of(error_type), "106540352242922").response()

    assert 400 <= response.status_code < 600
    body = json.loads(bytes(response.body))
    assert set(body) == {"error"}
    error = body["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error)
    assert isinstance(error["code"], int)
    assert response.headers["x-fb-trace-id"] == error["fbtrace_id"]
    if response.status_code in (429, 503):
        assert int(response.headers["retry-after"]) >= 1


def test_metas_refusal_is_passed_on_as_meta_said_it() -> None:
    refused = MetaRefused("(#100) Param since is invalid", code=100, subcode=7, error_type="X")

    body = json.loads(bytes(render(refused).response().body))

    assert body["error"]["message"] == "(#100) Param since is invalid"
    assert (body["error"]["type"], body["error"]["code"]) == ("X", 100)
    assert body["error"]["error_subcode"] == 7
