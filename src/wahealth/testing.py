"""Helpers for testing wahealth and code that talks to it: settings, an app, clients.

`DEMO` holds the well-known credentials `demo_settings` configures, so tests
(ours and yours) can call every dialect without reading generated secrets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from wahealth.app import Components, Overrides, create_app
from wahealth.settings import Settings


@dataclass(frozen=True)
class DemoCredentials:
    account: str = "demo"
    space: str = "demo-space"
    access_key_id: str = "LTAI5tDemoKeyId"
    access_key_secret: str = "DemoKeySecret123"
    d360_key: str = "d360-demo-key"
    d360_phone_number_id: str = "106540352242922"
    graph_token: str = "graph-demo-token"
    other_account: str = "other"
    other_space: str = "other-space"
    other_access_key_id: str = "LTAI5tOtherKeyId"
    other_access_key_secret: str = "OtherKeySecret456"
    other_graph_token: str = "graph-other-token"


DEMO = DemoCredentials()


def demo_settings(tmp_path: Path, **sections: Any) -> Settings:
    """Settings for the demo scenario with DEMO's credentials, storing under tmp_path.

    Keyword arguments replace whole sections, e.g. `cache={"ttl_seconds": 0}`.
    """
    data: dict[str, Any] = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}"},
        "security": {"master_key_file": str(tmp_path / "wahealth.key")},
        "monitor": {"enabled": False},
        # The sync stores no health here, so a test's first query is its node's first fetch
        # (tests of the sync's health set `sync_health` themselves).
        "catalog": {"sync_health": False},
        "spaces": [
            {
                "id": DEMO.space,
                "account": DEMO.account,
                "wabas": ["102290129340398", "299399000000001"],
            },
            {"id": DEMO.other_space, "account": DEMO.other_account, "wabas": []},
        ],
        "accounts": [
            {
                "name": DEMO.account,
                "qps": 5,
                "access_keys": [{"id": DEMO.access_key_id, "secret": DEMO.access_key_secret}],
                "d360_keys": [{"key": DEMO.d360_key, "phone_number_id": DEMO.d360_phone_number_id}],
                "graph_tokens": [{"token": DEMO.graph_token}],
            },
            {
                "name": DEMO.other_account,
                "qps": 5,
                "access_keys": [
                    {"id": DEMO.other_access_key_id, "secret": DEMO.other_access_key_secret}
                ],
                "graph_tokens": [{"token": DEMO.other_graph_token}],
            },
        ],
    }
    data.update(sections)
    return Settings.model_validate(data)


@dataclass
class RunningApp:
    app: Starlette
    client: httpx.AsyncClient

    @property
    def components(self) -> Components:
        components: Components = self.app.state.components
        return components


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings, *, overrides: Overrides | None = None
) -> AsyncIterator[RunningApp]:
    """The app with its lifespan running and an httpx client talking to it in-process."""
    app = create_app(settings, overrides=overrides)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://wahealth.test"
        ) as client:
            yield RunningApp(app, client)
