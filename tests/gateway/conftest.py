"""Fixtures: the gateway served on a real loopback socket, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway

_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK (requests) must reach the loopback server directly, never through a proxy."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The demo gateway, shared by one module's tests; its accounts are never throttled."""
    with serve_gateway(tmp_path_factory.mktemp("gateway"), qps=UNTHROTTLED_QPS) as served:
        yield served
