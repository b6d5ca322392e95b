"""Fixtures: the CAMS stub served on a real loopback port, and SDK clients for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi.models import Config
from tests.auth.cams_stub import KEY_ID, SECRET, CamsStub, build_app

_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(scope="module")
def cams_server() -> Iterator[CamsStub]:
    """Serve the stub with uvicorn in a background thread on a free loopback port."""
    stub = CamsStub()
    config = uvicorn.Config(
        build_app(stub),
        host="127.0.0.1",
        port=0,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cams-stub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the CAMS stub server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    stub.base_url = f"http://127.0.0.1:{port}"
    yield stub
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def stub(cams_server: CamsStub, monkeypatch: pytest.MonkeyPatch) -> Iterator[CamsStub]:
    """The running stub, reset for one test; the SDK must reach it directly, not via a proxy."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    cams_server.captured.clear()
    cams_server.record_only = False
    yield cams_server
    cams_server.record_only = False


@pytest.fixture
def make_client(stub: CamsStub) -> Callable[..., Client]:
    """Official SDK clients pointed at the stub: make_client(key_id, secret, **Config kwargs)."""

    def make(key_id: str = KEY_ID, secret: str = SECRET, **config: Any) -> Client:
        return Client(
            Config(
                access_key_id=key_id,
                access_key_secret=secret,
                endpoint=stub.host,
                protocol="http",
                **config,
            )
        )

    return make
