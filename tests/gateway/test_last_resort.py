"""A bug behind a dialect path answers a plain JSON 500 with a request id, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from wahealth.app import Overrides
from wahealth.core.ports import CachedReport
from wahealth.testing import DEMO, demo_settings, running_app


class ExplodingCache:
    """A report cache with a bug: it raises something no port promises."""

    async def get(self, node_id: str) -> CachedReport | None:
        raise ZeroDivisionError("a bug, not an outage")

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        return None

    async def mark_outdated(self, node_id: str) -> None:
        return None

    async def delete(self, node_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_an_unexpected_error_is_a_plain_500_with_a_request_id(tmp_path: Path) -> None:
    overrides = Overrides(report_cache=ExplodingCache())
    async with running_app(demo_settings(tmp_path), overrides=overrides) as running:
        answer = await running.client.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})
        scraped = await running.client.get("/metrics")
        healthy = await running.client.get("/healthz")

    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert answer.headers["x-request-id"]
    assert b"ZeroDivision" not in answer.content
    assert b"Traceback" not in answer.content
    assert re.search(
        r'^wahealth_http_requests_total\{dialect="d360",replica="[^"]+",status="5xx"\} 1\.0$',
        scraped.text,
        re.MULTILINE,
    )
    assert healthy.status_code == 200
