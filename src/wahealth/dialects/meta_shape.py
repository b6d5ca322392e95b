"""Meta's health_status answer, shared by the two dialects that answer in Meta's shape."""

from __future__ import annotations

from collections import OrderedDict

import orjson

from wahealth.dialects.common import PrebuiltResponse
from wahealth.domain import HealthReport, render_health_status

_MAX = 20_000


def freshness_headers(report: HealthReport) -> dict[str, str]:
    """Where the answer came from, for the dialects whose body has no room for it."""
    return {
        "x-wahealth-source": report.source.value,
        "x-wahealth-fetched-at": report.fetched_at.isoformat(timespec="seconds"),
    }


class MetaAnswerCache:
    """The rendered answer per (node, fetch time, source): a cache hit is a dict lookup."""

    def __init__(self, media_type: str) -> None:
        self._media_type = media_type.encode()
        self._answers: OrderedDict[tuple[str, float, str], PrebuiltResponse] = OrderedDict()

    def response(self, report: HealthReport) -> PrebuiltResponse:
        key = (report.node_id, report.fetched_at.timestamp(), report.source.value)
        answer = self._answers.get(key)
        if answer is None:
            body = orjson.dumps(render_health_status(report))
            headers = [
                (b"content-type", self._media_type),
                (b"content-length", str(len(body)).encode()),
                *((k.encode(), v.encode()) for k, v in freshness_headers(report).items()),
            ]
            answer = PrebuiltResponse(body, headers)
            self._answers[key] = answer
            if len(self._answers) > _MAX:
                self._answers.popitem(last=False)
        return answer
