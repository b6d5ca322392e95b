"""The report cache and nonce store ports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BackendUnavailable(Exception):
    """The cache or nonce store's backend (e.g. Redis) did not answer.

    Raised by every operation of both ports instead of the client library's own errors, so
    callers choose a policy per use: a report cache read can count as a miss, while a nonce
    that cannot be claimed cannot rule out a replay.
    """


@dataclass(frozen=True, slots=True)
class CachedReport:
    """Meta's health_status JSON for a node (as bytes) and when it was fetched (unix seconds)."""

    node_id: str
    payload: bytes
    fetched_at: float


class ReportCache(Protocol):
    """Last known report per node. Entries live `retain_seconds` so stale ones can be served."""

    async def get(self, node_id: str) -> CachedReport | None: ...

    async def put(self, entry: CachedReport, retain_seconds: float) -> None: ...

    async def delete(self, node_id: str) -> None: ...

    async def aclose(self) -> None: ...


class NonceStore(Protocol):
    """Remembers signature nonces so a signed request can be used once."""

    async def claim(self, nonce: str, ttl_seconds: float) -> bool:
        """True the first time a nonce is seen within its ttl, False after."""
        ...

    async def aclose(self) -> None: ...
