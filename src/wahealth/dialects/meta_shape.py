"""Meta's health_status body, shared by the two dialects that answer in Meta's shape."""

from __future__ import annotations

from collections import OrderedDict

import orjson

from wahealth.domain import HealthReport, render_health_status

_MAX = 20_000


class MetaBodyCache:
    """Rendered Meta-shaped bodies per (node, fetch time): a cache hit is a dict lookup."""

    def __init__(self) -> None:
        self._bodies: OrderedDict[tuple[str, float], bytes] = OrderedDict()

    def body(self, report: HealthReport) -> bytes:
        key = (report.node_id, report.fetched_at.timestamp())
        body = self._bodies.get(key)
        if body is None:
            body = orjson.dumps(render_health_status(report))
            self._bodies[key] = body
            if len(self._bodies) > _MAX:
                self._bodies.popitem(last=False)
        return body


def freshness_headers(report: HealthReport) -> dict[str, str]:
    """Where the answer came from, for the dialects whose body has no room for it."""
    return {
        "x-wahealth-source": report.source.value,
        "x-wahealth-fetched-at": report.fetched_at.isoformat(timespec="seconds"),
    }
