"""Browser tests: Debian's chromium driven by Playwright against the app on a real socket.

Skipped, saying why, where /usr/bin/chromium is absent (`.ci/run` installs it with
apt-get; no browser is ever downloaded). Screenshots go to `artifacts/browser/` under the
repository (git-ignored), kept after the run for people to look at.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Browser, Page, async_playwright
from tests.gateway._served import UNTHROTTLED_QPS, ServedGateway, serve_gateway
from tests.web._console import (
    PHONE_LIMITED,
    PHONE_OK,
    PHONE_ON_BLOCKED_WABA,
    TEMPLATE_BLOCKED,
    dead_alert,
    record_history,
)

from wahealth.domain.records import PhoneNumberRecord
from wahealth.testing import DEMO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PRESENT = CHROMIUM.exists()
STEP_TIMEOUT_MS = 10_000  # every wait of a page is bounded
EXTRA_WABA = "777000000000001"
T = TypeVar("T")


async def on_server(served: ServedGateway, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the server's loop (its storage lives there) without blocking ours."""
    assert served.tap.loop is not None
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, served.tap.loop))


async def _seed(served: ServedGateway) -> dict[str, str]:
    components = served.components
    async with served.ahttp() as http:
        for node in (PHONE_OK, PHONE_LIMITED, TEMPLATE_BLOCKED):
            answer = await http.get(
                f"/v21.0/{node}",
                params={"fields": "health_status"},
                headers={"Authorization": f"Bearer {DEMO.graph_token}"},
            )
            assert answer.status_code == 200
    await on_server(served, components.health.drain())
    await on_server(
        served, components.tenancy.upsert_waba(EXTRA_WABA, DEMO.space, name="Extra Brand")
    )
    numbers = [
        PhoneNumberRecord(f"5550000000{n:02d}", f"+62 811 0000 {n:02d}", f"Extra shop {n}", "GREEN")
        for n in range(24)
    ]
    await on_server(served, components.catalog.replace_phone_numbers(EXTRA_WABA, numbers))
    await on_server(
        served,
        record_history(
            components,
            PHONE_ON_BLOCKED_WABA,
            [
                (timedelta(days=12), "AVAILABLE"),
                (timedelta(hours=30), "BLOCKED"),
                (timedelta(hours=26), "AVAILABLE"),
            ],
        ),
    )
    alert = await on_server(served, dead_alert(components, PHONE_OK))
    return {"dead_alert": alert}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    with serve_gateway(tmp_path_factory.mktemp("console"), qps=UNTHROTTLED_QPS) as gateway:
        yield gateway


@pytest.fixture
async def seeded(served: ServedGateway) -> dict[str, str]:
    """What the module's server holds (seeded once, by the first test that asks)."""
    cache: dict[str, str] | None = getattr(served, "_seeded", None)
    if cache is None:
        cache = await _seed(served)
        served._seeded = cache  # type: ignore[attr-defined]
    return cache


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder = request.config.rootpath / "artifacts" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_PRESENT:
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium): browser tests skipped")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-US", device_scale_factor=1
    )
    context.set_default_timeout(STEP_TIMEOUT_MS)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()
