"""What the fleet refresh needs: reports in bulk, somewhere to store them, a schedule."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from wahealth.domain import HealthReport
from wahealth.domain.records import Claim, DueNode


class BatchUpstream(Protocol):
    """Where reports come from in bulk (the Graph client)."""

    async def batch_health(
        self, node_ids: Sequence[str]
    ) -> Mapping[str, HealthReport | Exception]: ...


class ReportSink(Protocol):
    """Where fetched reports go (the health core: cache, then observers), and failures:
    the health core's back-off, shared with queries."""

    async def accept(self, report: HealthReport, *, cause: str) -> None: ...

    async def accept_many(self, reports: Sequence[HealthReport], *, cause: str) -> None: ...

    def failed(self, node_id: str, error: Exception) -> None: ...


class Schedule(Protocol):
    """Which nodes are due, and how to postpone one: the health repository, or on
    PostgreSQL the claimed schedule every replica shares (`storage.schedule`), whose due
    nodes carry this replica's claim until they are rescheduled or released."""

    async def due_nodes(self, now: datetime, limit: int = 100) -> list[DueNode]: ...

    def due_pages(self, now: datetime, *, limit: int, page: int) -> AsyncGenerator[list[DueNode]]:
        """`due_nodes(now, limit)` a page at a time, from one query."""
        ...

    async def count_nodes(self) -> int: ...

    async def set_next_due(
        self,
        node_id: str,
        next_due_at: datetime,
        *,
        checked_at: datetime | None = None,
        node_kind: str = ...,
        space_id: str | None = None,
        held: Claim | None = None,
    ) -> bool:
        """Postpone the node; with `held`, only while that claim is current (else False)."""
        ...

    async def release(self, nodes: Sequence[DueNode]) -> int:
        """Let go of these nodes' claims, where still current (nodes without one: skipped)."""
        ...
