"""What the emulator counts: Graph calls served, by path and by node, and when each node
itself (not one of its edges) was asked about (`GET /_emulator/calls`,
`GET /_emulator/calls/nodes`)."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class NodeCalls:
    """When a node was asked about: first and last call, and the shortest and longest gap
    between two calls in a row (None until the second call); a few numbers per node."""

    first_at: float
    last_at: float
    min_gap: float | None = None
    max_gap: float | None = None
    count: int = 1

    def called(self, at: float) -> None:
        self.count += 1
        gap = at - self.last_at
        self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
        self.max_gap = gap if self.max_gap is None else max(self.max_gap, gap)
        self.last_at = at

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "min_gap_seconds": self.min_gap,
            "max_gap_seconds": self.max_gap,
        }


CALL_TIMES_KEPT = 100_000


@dataclass(slots=True)
class CallStats:
    """Graph calls served: each request, and each batch sub-request, is one call."""

    clock: Callable[[], float] = time.time
    total: int = 0
    batches: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_node: Counter[str] = field(default_factory=Counter)
    node_times: dict[str, NodeCalls] = field(default_factory=dict)
    # When each of the latest calls was served (Unix seconds), for `?times=true`.
    times: deque[float] = field(default_factory=lambda: deque(maxlen=CALL_TIMES_KEPT))

    def record(self, path: str, node_id: str | None) -> None:
        self.total += 1
        self.times.append(time.time())
        self.by_path[path] += 1
        if node_id:
            self.by_node[node_id] += 1
        if node_id and path == f"/{node_id}":  # the node itself, not one of its edges
            at = self.clock()
            times = self.node_times.get(node_id)
            if times is None:
                self.node_times[node_id] = NodeCalls(at, at)
            else:
                times.called(at)

    def nodes_snapshot(self) -> dict[str, Any]:
        """Per node: calls on the node itself (not its edges), when the first and the last
        came, the shortest and longest gap."""
        return {node_id: times.snapshot() for node_id, times in self.node_times.items()}

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "batches": self.batches,
            "by_path": dict(self.by_path),
            "by_node": dict(self.by_node),
        }

    def reset(self) -> None:
        self.times.clear()
        self.total = 0
        self.batches = 0
        self.by_path.clear()
        self.by_node.clear()
        self.node_times.clear()
