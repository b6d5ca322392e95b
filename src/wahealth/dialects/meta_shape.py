"""Meta's health_status answer, shared by the two dialects that answer in Meta's shape.

The answer is in a language: English fills the error texts Meta left out, Indonesian
and Chinese translate the codes and reasons the catalog knows (`domain.catalog`).
"""

from __future__ import annotations

import orjson

from wahealth.core.lru import BoundedLru
from wahealth.domain import HealthReport, render_health_status
from wahealth.domain.catalog import localize
from wahealth.domain.languages import ENGLISH, Language
from wahealth.httputil import PrebuiltResponse

# Rendered answers kept per dialect: bounded by count and bytes.
ANSWERS_MAX_ENTRIES = 20_000
ANSWERS_MAX_BYTES = 32 * 1024 * 1024


def freshness_headers(report: HealthReport) -> dict[str, str]:
    """Where the answer came from, for the dialects whose body has no room for it."""
    return {
        "x-wahealth-source": report.source.value,
        "x-wahealth-fetched-at": report.fetched_at.isoformat(timespec="seconds"),
    }


class MetaAnswerCache:
    """The rendered answer per (node, fetch time, source, language): a hit is a dict lookup."""

    def __init__(self, media_type: str) -> None:
        self._media_type = media_type.encode()
        self._answers: BoundedLru[tuple[str, float, str, Language], PrebuiltResponse] = BoundedLru(
            ANSWERS_MAX_ENTRIES, ANSWERS_MAX_BYTES
        )
        # The English answers are shared with `_answers`; this holds one reference per node.
        self._latest: BoundedLru[str, tuple[HealthReport, PrebuiltResponse]] = BoundedLru(
            ANSWERS_MAX_ENTRIES, ANSWERS_MAX_BYTES
        )

    def response(self, report: HealthReport, lang: Language = ENGLISH) -> PrebuiltResponse:
        english = lang is ENGLISH
        if english:
            # The health core hands out the same report object while it is cached, so the
            # newest answer per node is checked by identity first: no key to build.
            latest = self._latest.get(report.node_id)
            if latest is not None and latest[0] is report:
                return latest[1]
        key = (report.node_id, report.fetched_at.timestamp(), report.source.value, lang)
        answer = self._answers.get(key)
        if answer is None:
            body = orjson.dumps(render_health_status(localize(report, lang)))
            headers = [
                (b"content-type", self._media_type),
                (b"content-length", str(len(body)).encode()),
                *((k.encode(), v.encode()) for k, v in freshness_headers(report).items()),
            ]
            if not english:
                headers.append((b"content-language", lang.tag.encode()))
            answer = PrebuiltResponse(body, headers)
            self._answers.put(key, answer, len(body) + 300)
        if english:
            self._latest.put(report.node_id, (report, answer), len(report.node_id) + 100)
        return answer
