"""One round of the fleet refresh as a stream of chunks: due nodes, planned within the budget.

Storage hands out the round's due nodes a page at a time from one query (see
`Schedule.due_pages`); each page is planned (`planner.plan_round`) with what the round
planned before it counted as spent, and the chosen nodes go out in chunks of a fixed
size, so a chunk may span two pages and the fetches never wait for the next page.

When the schedule is shared (PostgreSQL), each page comes claimed for this replica; a
node the plan leaves out is let go at once, and `due` holds the claimed nodes still in
the round, so the refresh lets go of each once it is stored (or never sent).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime

from wahealth.domain.records import DueNode
from wahealth.monitor.planner import Candidate, Spend, plan_round
from wahealth.monitor.refresh_ports import Schedule


class RoundChunks:
    """The chunks of one round; `due` holds the nodes handed out and not yet `done`."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        now: float,
        room: int,
        ledger: tuple[Spend, ...],
        calls_per_minute: int,
        round_seconds: float,
        chunk_nodes: int,
        page_nodes: int,
    ) -> None:
        self._schedule = schedule
        self._now = now
        self._room = room
        self._ledger = ledger
        self._calls_per_minute = calls_per_minute
        self._round_seconds = round_seconds
        self._chunk_nodes = chunk_nodes
        self._page_nodes = page_nodes
        self._planned = 0
        self.wait = round_seconds  # as the last page's plan says
        self.due: dict[str, DueNode] = {}

    def done(self, node_ids: Sequence[str]) -> None:
        """These nodes were fetched and stored (or failed and were rescheduled)."""
        for node_id in node_ids:
            self.due.pop(node_id, None)

    async def chunks(self) -> AsyncGenerator[Sequence[str]]:
        """The node ids to fetch, `chunk_nodes` at a time (the last chunk may be shorter)."""
        pending: list[str] = []
        moment = datetime.fromtimestamp(self._now, UTC)
        pages = self._schedule.due_pages(moment, limit=self._room, page=self._page_nodes)
        async with contextlib.aclosing(pages):
            async for page in pages:
                chosen = self._plan(page)
                if len(chosen) < len(page):
                    picked = set(chosen)
                    await self._schedule.release([d for d in page if d.node_id not in picked])
                if not chosen:
                    break
                pending.extend(chosen)
                while len(pending) >= self._chunk_nodes:
                    yield pending[: self._chunk_nodes]
                    del pending[: self._chunk_nodes]
                if self._planned >= self._room or len(page) < self._page_nodes:
                    break
        if pending:
            yield pending

    def _plan(self, page: list[DueNode]) -> tuple[str, ...]:
        plan = plan_round(
            [Candidate(d.node_id, _epoch(d.next_due_at)) for d in page],
            now=self._now,
            # What this round planned already counts, though not all of it is spent yet.
            ledger=(*self._ledger, Spend(self._now, self._planned)),
            calls_per_minute=self._calls_per_minute,
            round_seconds=self._round_seconds,
        )
        self.wait = plan.wait_seconds
        chosen = plan.node_ids[: self._room - self._planned]
        by_id = {d.node_id: d for d in page}
        self.due.update((node_id, by_id[node_id]) for node_id in chosen)
        self._planned += len(chosen)
        return chosen


async def chunked(node_ids: Sequence[str], size: int) -> AsyncGenerator[Sequence[str]]:
    """`node_ids` in chunks of `size`, as the refresh's fetch loop takes them."""
    for start in range(0, len(node_ids), size):
        yield node_ids[start : start + size]


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()
