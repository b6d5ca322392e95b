"""The composition root's override seam: tests replace parts without reaching inside the app."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests._recording import Recording

from wahealth.app import Overrides
from wahealth.cache.memory import MemoryReportCache
from wahealth.testing import DEMO, demo_settings, running_app


async def test_the_graph_transport_and_the_report_cache_can_be_replaced(tmp_path: Path) -> None:
    recorders: list[Recording] = []

    def wrap(inner: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
        recorders.append(Recording(inner))
        return recorders[-1]

    cache = MemoryReportCache()
    overrides = Overrides(graph_transport=wrap, report_cache=cache)
    async with running_app(demo_settings(tmp_path), overrides=overrides) as running:
        answer = await running.client.get(
            "/v21.0/105154286024403",
            params={"fields": "health_status"},
            headers={"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        cached = await cache.get("105154286024403")

    assert answer.status_code == 200
    assert answer.json()["health_status"]["can_send_message"] == "LIMITED"
    [recorder] = recorders
    assert "/v21.0/105154286024403" in recorder.paths  # the query went through the wrapper
    assert any(path.endswith("/phone_numbers") for path in recorder.paths)  # and the sync did
    assert cached is not None  # into the cache the test gave
