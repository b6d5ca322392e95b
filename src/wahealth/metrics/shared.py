"""Figures every replica reads alike, at scrape time: the Meta budget and the claims held
(alerts being delivered, nodes being refreshed).

They come from the components that keep them (the Meta budget, in Redis with several
replicas; storage's view of the outbox), so a scrape of any replica gives the same
numbers: aggregate them with `max`, not `sum`. Each is left out when it cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric

log = structlog.get_logger(__name__)


class BudgetSource(Protocol):
    """The Meta budget, as /metrics reads it."""

    @property
    def calls_per_minute(self) -> int: ...

    async def spent(self) -> int: ...


@runtime_checkable
class BudgetsSource(Protocol):
    """The Meta budget of every app: the default token's and each connection's."""

    async def each(self) -> Sequence[tuple[str, BudgetSource]]: ...


ClaimsHeld = Callable[[datetime], Awaitable[int]]


class SharedMetrics:
    """The shared families: budget spent and allowed, alert claims held."""

    def __init__(
        self,
        budget: BudgetSource | BudgetsSource | None = None,
        *,
        alert_claims: ClaimsHeld | None = None,
        schedule_claims: ClaimsHeld | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._budget = budget
        self._alert_claims = alert_claims
        self._schedule_claims = schedule_claims
        self._clock = clock

    async def families(self) -> list[Metric]:
        found: list[Metric] = []
        if self._budget is not None:
            found.extend(await self._budget_families(self._budget))
        claims = (
            (
                self._alert_claims,
                "wahealth_alert_claims_held",
                "Alerts a sender of some replica holds a live claim on (being delivered).",
            ),
            (
                self._schedule_claims,
                "wahealth_schedule_claims_held",
                "Nodes a refresh round of some replica holds a live claim on (being refreshed).",
            ),
        )
        now = datetime.fromtimestamp(self._clock(), UTC)
        for read, name, text in claims:
            if read is None:
                continue
            try:
                held = await read(now)
            except Exception as exc:  # noqa: BLE001
                log.warning("metrics: reading claims failed", metric=name, error=type(exc).__name__)
            else:
                found.append(GaugeMetricFamily(name, text, value=held))
        return found

    @staticmethod
    async def _budget_families(source: BudgetSource | BudgetsSource) -> list[Metric]:
        spent = GaugeMetricFamily(
            "wahealth_meta_budget_spent_calls",
            "Graph calls spent from each Meta app's budget in the last 60 s, by queries, "
            "webhooks and the refresh loop of every replica sharing it.",
            labels=["connection"],
        )
        allowed = GaugeMetricFamily(
            "wahealth_meta_budget_calls_per_minute",
            "Each Meta app's budget: Graph calls allowed in any 60 s (the connection's "
            "meta_calls_per_minute, else monitor.meta_calls_per_minute).",
            labels=["connection"],
        )
        try:
            budgets = (
                await source.each() if isinstance(source, BudgetsSource) else [("default", source)]
            )
            for name, budget in budgets:
                spent.add_metric([name], await budget.spent())
                allowed.add_metric([name], budget.calls_per_minute)
        except Exception as exc:  # noqa: BLE001 — a scrape answers with everything else
            log.warning("metrics: reading the Meta budget failed", error=type(exc).__name__)
            return []
        return [spent, allowed]
