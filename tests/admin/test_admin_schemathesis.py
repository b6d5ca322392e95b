"""Schemathesis against the admin API's OpenAPI document, on a served gateway.

Every operation gets a bounded number of generated requests, valid and invalid; each
answer must be documented (status, content type, schema) and never a server error; a
schema-valid request is not refused as invalid, and a schema-violating one is not accepted.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.applications import Starlette
from tests.gateway._served import ServedGateway, serve_gateway

from wahealth.admin.endpoints import OPENAPI_PATH
from wahealth.app import create_app
from wahealth.testing import demo_settings

MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    with serve_gateway(tmp_path_factory.mktemp("schemathesis"), qps=10_000) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def operator_token(served: ServedGateway) -> str:
    _, token = served.run(served.components.admin_tokens.issue("schemathesis"))
    return token


def _document() -> dict[str, Any]:
    """The document as the app serves it (building the app does no I/O; no server needed)."""

    async def fetch(app: Starlette) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wahealth.test") as c:
            return await c.get(OPENAPI_PATH)

    with tempfile.TemporaryDirectory() as where:
        response = asyncio.run(fetch(create_app(demo_settings(Path(where)))))
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same bounded set of requests on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: schemathesis.Case, served: ServedGateway, operator_token: str
) -> None:
    case.call_and_validate(
        base_url=served.base_url, headers={"Authorization": f"Bearer {operator_token}"}
    )
