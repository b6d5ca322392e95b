"""360dialog's `GET /health_status`: one channel's phone number, in Meta's shape.

Its answer is `{"health_status": {...}, "id": "<phone number id>"}`; the id is the node.
360dialog's 429 and 503 carry `Retry-After`: the channel is then not asked again
before it (`Holds`), whoever asks. The key travels only in the `D360-API-KEY` header
and is never logged.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx

from wahealth.core.ports import UpstreamAuthFailure, UpstreamFailure, UpstreamNotFound
from wahealth.domain import HealthReport
from wahealth.upstream.bsp.config import D360Channel
from wahealth.upstream.bsp.holds import BspThrottled, Holds
from wahealth.upstream.errors import retry_after_from
from wahealth.upstream.graph_answers import decode_json, health_report

MAX_BODY_BYTES = 1 << 20


def channel_key(channel: D360Channel) -> str:
    """A name for the channel in logs and holds: never the key itself."""
    digest = hashlib.sha256(channel.api_key.encode()).hexdigest()[:12]
    return f"d360:{channel.base_url}:{digest}"


class D360Client:
    """Asks 360dialog (or anything speaking its dialect) for a channel's health."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 10.0,
        holds: Holds | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout_seconds)
        self._holds = holds or Holds()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def health(self, channel: D360Channel) -> HealthReport:
        """The channel's report, its node id the phone-number id 360dialog answered with."""
        key = channel_key(channel)
        self._holds.check(key, "360dialog")
        url = channel.base_url.rstrip("/") + "/health_status"
        try:
            response = await self._http.get(url, headers={"D360-API-KEY": channel.api_key})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise UpstreamFailure(f"360dialog did not answer: {type(exc).__name__}") from None
        status = response.status_code
        if status in (429, 503):
            wait = retry_after_from(response.headers)
            self._holds.hold(key, wait)
            if status == 429:
                raise BspThrottled("360dialog throttled the channel (429)", retry_after=wait)
            failure = UpstreamFailure("360dialog is unavailable (503)")
            failure.retry_after = wait
            raise failure
        if status in (401, 403):
            raise UpstreamAuthFailure(f"360dialog refused the channel's API key ({status})")
        if status == 404:
            raise UpstreamNotFound("360dialog knows no phone number for the channel's API key")
        if status != 200:
            raise UpstreamFailure(f"360dialog answered HTTP {status}")
        if len(response.content) > MAX_BODY_BYTES:
            raise UpstreamFailure("360dialog's answer is too large")
        payload = decode_json(response.content)
        node_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(node_id, str) or not node_id:
            raise UpstreamFailure("360dialog's answer names no phone-number id")
        return health_report(node_id, payload, datetime.now(UTC))
