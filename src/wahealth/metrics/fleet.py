"""Metrics of the fleet, read from storage at scrape time: the same from every worker.

The small families (nodes by space, kind and status; alerts by state; the oldest pending
alert's age) are ordinary prometheus_client families. The per-node ones (each node's
status; each phone number's quality and messaging limit) can be 100,000 series: they are
never held as objects. Each is written as exposition text a storage page at a time while
the answer streams, so a scrape costs a page of rows, not a gauge child per node.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric

log = structlog.get_logger(__name__)

NODE_STATUS = "wahealth_node_status"
STATUS_VALUES: Mapping[str | None, int] = {"AVAILABLE": 0, "LIMITED": 1, "BLOCKED": 2}
QUALITY_VALUES: Mapping[str | None, int] = {"GREEN": 0, "YELLOW": 1, "RED": 2}
UNKNOWN = 3
_TIER = re.compile(r"^TIER_(\d+)([KM]?)$")
_SCALE = {"": 1, "K": 1_000, "M": 1_000_000}

NodeRow = tuple[str, str, str, str | None]  # space, node id, kind, status
LevelsRow = tuple[str, str, str | None, str | None]  # space, node id, quality, limit tier
CountRow = tuple[str, str, str | None, int]  # space, kind, status, nodes


class FleetSource(Protocol):
    """Storage's current view of the fleet (the fleet view repository)."""

    def node_statuses(self) -> AsyncIterator[Sequence[NodeRow]]: ...

    def phone_number_levels(self) -> AsyncIterator[Sequence[LevelsRow]]: ...

    async def count_nodes(self) -> int: ...

    async def status_counts(self) -> Sequence[CountRow]: ...

    async def oldest_pending_alert_at(self) -> datetime | None: ...


def messaging_limit(tier: str | None) -> float | None:
    """Conversations a day a tier allows (`TIER_1K` → 1000, unlimited → +Inf); None: unknown."""
    if tier is None:
        return None
    if tier == "TIER_UNLIMITED":
        return math.inf
    found = _TIER.match(tier)
    return None if found is None else float(int(found[1]) * _SCALE[found[2]])


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _value(number: float) -> str:
    if math.isinf(number):
        return "+Inf"
    return str(int(number)) if number.is_integer() else repr(number)


def _header(name: str, documentation: str) -> str:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"


@dataclass(frozen=True)
class PerNode:
    """Whether per-node series are served: always, never, or up to a number of nodes."""

    enabled: bool | Literal["auto"] = "auto"
    max_nodes: int = 10_000


class FleetMetrics:
    """The storage-backed families of one scrape."""

    def __init__(
        self,
        source: FleetSource,
        *,
        per_node: PerNode,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._per_node = per_node
        self._clock = clock
        self._warned = False

    async def families(self, *, per_node: bool) -> list[Metric]:
        """The small families, read now (each left out if storage cannot be read)."""
        found: list[Metric] = [
            GaugeMetricFamily(
                "wahealth_per_node_metrics",
                "1 when the per-node series (wahealth_node_status, wahealth_phone_number_*) "
                "are served; see metrics.per_node.",
                value=1 if per_node else 0,
            )
        ]
        try:
            counts = await self._source.status_counts()
        except Exception as exc:  # noqa: BLE001 — a scrape still answers with everything else
            log.warning("metrics: counting nodes failed", error=type(exc).__name__)
        else:
            nodes = GaugeMetricFamily(
                "wahealth_nodes",
                "Monitored nodes by space, kind and status (unknown: no report yet).",
                labels=("space", "kind", "status"),
            )
            totals: dict[tuple[str, str, str], int] = {}
            for space, kind, status, n in counts:
                key = (
                    space,
                    kind,
                    status if status is not None and status in STATUS_VALUES else "unknown",
                )
                totals[key] = totals.get(key, 0) + n
            for key, n in sorted(totals.items()):
                nodes.add_metric(key, n)
            found.append(nodes)
        try:
            oldest = await self._source.oldest_pending_alert_at()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: reading the outbox failed", error=type(exc).__name__)
        else:
            age = 0.0 if oldest is None else max(0.0, self._clock() - oldest.timestamp())
            found.append(
                GaugeMetricFamily(
                    "wahealth_outbox_oldest_pending_age_seconds",
                    "Age of the oldest alert still waiting for delivery (0: none waits).",
                    value=age,
                )
            )
        return found

    async def per_node_enabled(self) -> bool:
        """Whether this scrape serves per-node series (False if the nodes cannot be counted)."""
        if self._per_node.enabled != "auto":
            return self._per_node.enabled
        try:
            nodes = await self._source.count_nodes()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: counting nodes failed", error=type(exc).__name__)
            return False
        enabled = nodes <= self._per_node.max_nodes
        if not enabled and not self._warned:
            self._warned = True
            log.warning(
                "metrics: per-node series left out for a fleet this big; "
                "set metrics.per_node = true to serve them anyway",
                nodes=nodes,
                per_node_max_nodes=self._per_node.max_nodes,
            )
        return enabled

    async def per_node_text(self) -> AsyncIterator[bytes]:
        """The per-node families as exposition text, a storage page per chunk."""
        try:
            async for chunk in self._per_node_chunks():
                yield chunk
        except Exception as exc:  # noqa: BLE001 — what was sent stays a valid exposition
            log.warning("metrics: reading node statuses failed", error=type(exc).__name__)

    async def _per_node_chunks(self) -> AsyncIterator[bytes]:
        yield _header(
            NODE_STATUS,
            "Each monitored node's status: 0 AVAILABLE, 1 LIMITED, 2 BLOCKED, "
            "3 unknown (no report yet).",
        ).encode()
        async for rows in self._source.node_statuses():
            yield "".join(
                f'{NODE_STATUS}{{space="{_label(space)}",node_id="{_label(node_id)}",'
                f'kind="{_label(kind)}"}} {STATUS_VALUES.get(status, UNKNOWN)}\n'
                for space, node_id, kind, status in rows
            ).encode()
        yield _header(
            "wahealth_phone_number_quality",
            "Each phone number's quality rating: 0 GREEN, 1 YELLOW, 2 RED, 3 unknown.",
        ).encode()
        async for levels in self._source.phone_number_levels():
            yield "".join(
                f'wahealth_phone_number_quality{{space="{_label(space)}",'
                f'node_id="{_label(node_id)}"}} {QUALITY_VALUES.get(rating, UNKNOWN)}\n'
                for space, node_id, rating, _ in levels
            ).encode()
        # A second pass: a family's samples must be contiguous, and holding the limits
        # while the qualities are written would hold a line per number.
        yield _header(
            "wahealth_phone_number_messaging_limit",
            "Each phone number's messaging limit tier, in conversations a day "
            "(+Inf: unlimited); numbers with no known tier are left out.",
        ).encode()
        async for levels in self._source.phone_number_levels():
            lines = []
            for space, node_id, _, tier in levels:
                limit = messaging_limit(tier)
                if limit is not None:
                    lines.append(
                        f'wahealth_phone_number_messaging_limit{{space="{_label(space)}",'
                        f'node_id="{_label(node_id)}"}} {_value(limit)}\n'
                    )
            yield "".join(lines).encode()
