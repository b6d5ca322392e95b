"""The Graph client's exception tree.

Every failure to get an answer from Meta is a `GraphError`; callers branch on
the subclass (retry later, serve stale, report "not found", fix the token)
rather than on codes. The raw Graph fields are kept for logs and diagnostics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from wahealth.core.ports import (
    UpstreamAuthFailure,
    UpstreamFailure,
    UpstreamNotFound,
    UpstreamThrottled,
)


class GraphError(UpstreamFailure):
    """Meta (or the emulator) did not give the answer asked for."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.fbtrace_id:
            parts.append(f"fbtrace_id {self.fbtrace_id}")
        return " | ".join(parts)


class GraphAuthError(GraphError, UpstreamAuthFailure):
    """The token is missing, invalid, expired or lacks a permission (190, 10, 200-299, HTTP 401),
    or its `appsecret_proof` is wrong (100 "Invalid appsecret_proof ...")."""


class ConnectionPaused(GraphAuthError):
    """Not sent: Meta refused this node's connection's token; its refresh waits for a check."""

    def __init__(self, connection: str) -> None:
        super().__init__(f"Meta connection {connection!r} is paused: Meta refused its token")
        self.connection = connection


class GraphNotFound(GraphError, UpstreamNotFound):
    """The node does not exist or is not visible to this token (code 100)."""


class GraphRateLimited(GraphError, UpstreamThrottled):
    """Meta throttled us. `retry_after` is Meta's estimate in seconds, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(
            message,
            code=code,
            subcode=subcode,
            error_type=error_type,
            fbtrace_id=fbtrace_id,
            http_status=http_status,
        )
        self.retry_after = retry_after

    @property
    def per_waba(self) -> bool:  # type: ignore[override]
        """A WABA's own limit (80007/80008), not the app's."""
        return self.code in WABA_RATE_LIMIT_CODES


class GraphTransientError(GraphError):
    """A failure worth retrying: 5xx, codes 1/2, `is_transient`, timeouts, connection errors."""


class GraphBadResponse(GraphError):
    """The answer was not JSON, or not the shape asked for."""


RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80007, 80008, 130429})
WABA_RATE_LIMIT_CODES = frozenset({80007, 80008})
_AUTH_CODES = frozenset({102, 190, 10})
_TRANSIENT_CODES = frozenset({1, 2})
# Longer waits than a day are not estimates but garbage (or 1e400, which is infinity).
_MAX_RETRY_AFTER = 86_400.0


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # isdigit() alone admits "²" and 5,000-digit numbers, which int() refuses.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def retry_after_from(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: `Retry-After`, else the largest `estimated_time_to_regain_access`.

    Meta states the estimate in minutes in `X-Business-Use-Case-Usage`; 0 means
    "no estimate", which leaves the wait to our own backoff.
    """
    seconds = _retry_after_from(headers)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(seconds, _MAX_RETRY_AFTER)


def _retry_after_from(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    usage = headers.get("x-business-use-case-usage")
    if not usage:
        return None
    try:
        decoded = json.loads(usage)
    except (json.JSONDecodeError, RecursionError):
        return None
    minutes = [
        _int_or_none(entry.get("estimated_time_to_regain_access"))
        for entries in (decoded.values() if isinstance(decoded, dict) else ())
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    longest = max((m for m in minutes if m is not None), default=0)
    return longest * 60.0 if longest > 0 else None


def graph_error_from(status: int, payload: Any, headers: Mapping[str, str]) -> GraphError:
    """The exception for a failed Graph answer (a response or a batch sub-response)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        if status == 429:
            return GraphRateLimited(
                "HTTP 429 from Graph", retry_after=retry_after_from(headers), http_status=status
            )
        if status >= 500:
            return GraphTransientError(f"HTTP {status} from Graph", http_status=status)
        if status == 401:
            return GraphAuthError("HTTP 401 from Graph", http_status=status)
        return GraphBadResponse(
            f"HTTP {status} from Graph without a Graph error body", http_status=status
        )
    code = _int_or_none(error.get("code"))
    message = str(error.get("message") or "Graph error")
    error_type = error.get("type")
    trace = error.get("fbtrace_id")
    fields: dict[str, Any] = {
        "code": code,
        "subcode": _int_or_none(error.get("error_subcode")),
        "error_type": error_type if isinstance(error_type, str) else None,
        "fbtrace_id": trace if isinstance(trace, str) else None,
        "http_status": status,
    }
    if status == 429 or code in RATE_LIMIT_CODES:
        return GraphRateLimited(message, retry_after=retry_after_from(headers), **fields)
    if status == 401 or code in _AUTH_CODES or (code is not None and 200 <= code <= 299):
        return GraphAuthError(message, **fields)
    if code == 100 and "appsecret_proof" in message:
        # A wrong or missing app secret proof: the connection is refused, not the node.
        return GraphAuthError(message, **fields)
    if code == 100:
        return GraphNotFound(message, **fields)
    if status >= 500 or code in _TRANSIENT_CODES or error.get("is_transient") is True:
        return GraphTransientError(message, **fields)
    return GraphError(message, **fields)
