"""Prometheus metrics, served at /metrics.

Three sources make one scrape:

- this process's instruments (`instruments`): requests, cache, Graph calls, Meta calls as
  Meta counts them, throttled requests, the refresh loop's last round, the Meta budget;
  with several workers, every worker's, merged (`multiprocess`);
- storage, read at scrape time (`fleet`): nodes by status, alerts by state, the oldest
  pending alert, and the per-node series (each node's status, each number's quality and
  messaging limit), streamed a page at a time;
- prometheus_client's process collectors (single process only);
- figures shared by every replica, read at scrape time from Redis and storage
  (`shared`): the Meta budget spent in the last minute, the alert claims held.

Every series of this replica (the first and last sources) carries a `replica` label
(`server.replica_id`); the shared figures, the same whichever replica answers, do not.

Each app gets its own `Metrics` and registry, so several apps in one process never share
or collide on a series.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from wahealth.domain.records import AlertState
from wahealth.metrics.fleet import FleetMetrics, FleetSource, PerNode
from wahealth.metrics.instruments import Instruments, MetaCallCounter
from wahealth.metrics.multiprocess import Merged, Publisher
from wahealth.metrics.wrappers import (
    InstrumentedCache,
    instrumented_cache,
    instrumented_limiter,
)

__all__ = [
    "CONTENT_TYPE",
    "METRICS_PATH",
    "FleetSource",
    "InstrumentedCache",
    "Instruments",
    "MetaCallCounter",
    "Metrics",
    "MetricsMode",
    "PerNode",
    "SharedFigures",
    "instrumented_cache",
    "instrumented_limiter",
    "metrics_endpoint",
]

log = structlog.get_logger(__name__)

CountAlerts = Callable[[], Awaitable[Mapping[str, int]]]

METRICS_PATH = "/metrics"
# The classic text format generate_latest writes, understood by every Prometheus.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PUBLISH_SECONDS = 1.0
LAST_ROUND = "wahealth_refresh_last_round_timestamp_seconds"


class MetricsMode(enum.StrEnum):
    """Whether /metrics is served, and to whom."""

    ON = "on"  # to anyone who can reach the app
    LOCAL = "local"  # only to loopback peers (a sidecar or node agent on the host)
    OFF = "off"  # no endpoint and no instrumentation at all


class RefreshRounds(Protocol):
    """The fleet refresh, as its rounds are observed."""

    @property
    def last_round_at(self) -> float | None: ...


class SharedFigures(Protocol):
    """Figures every replica reads alike: the Meta budget and the claims held."""

    async def families(self) -> list[Metric]: ...


def labelled(families: Iterable[Metric], replica: str) -> Iterator[Metric]:
    """The families with `replica` added to each sample's labels."""
    for family in families:
        family.samples = [
            sample._replace(labels={**sample.labels, "replica": replica})
            for sample in family.samples
        ]
        yield family


# (connection name, state) of every Meta connection, read at scrape time.
ConnectionStates = Callable[[], Awaitable[Sequence[tuple[str, str]]]]


class _Families:
    """A collector of whatever `collect` returns."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.collect = collect


class Metrics:
    """One app's metrics: its instruments, what a scrape reads, and the registry.

    `count_alerts` (the outbox's counts by state) and `fleet` (storage's view of the
    nodes) and `shared` (the Meta budget, the claims held) are read at scrape time;
    `rounds` (the fleet refresh) is this process's. Any may be None to leave its metrics
    out. With `multiprocess_dir`, every worker's instruments are merged; with `replica`,
    this replica's series carry it as their `replica` label.
    """

    def __init__(
        self,
        instruments: Instruments | None = None,
        *,
        count_alerts: CountAlerts | None = None,
        fleet: FleetSource | None = None,
        per_node: PerNode | None = None,
        rounds: RefreshRounds | None = None,
        multiprocess_dir: str | None = None,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.time,
        replica: str | None = None,
        shared: SharedFigures | None = None,
        connections: ConnectionStates | None = None,
    ) -> None:
        self.instruments = instruments if instruments is not None else Instruments()
        self.count_alerts = count_alerts
        self.connections = connections
        self.fleet = None if fleet is None else FleetMetrics(fleet, per_node=per_node or PerNode())
        self.rounds = rounds
        self.replica = replica
        self.shared = shared
        self._clock = clock
        self.publisher = None if multiprocess_dir is None else Publisher(multiprocess_dir)
        self.registry = CollectorRegistry(auto_describe=False)
        if multiprocess_dir is not None:
            merged = Merged(multiprocess_dir)
            self.registry.register(_Families(lambda: self._with_derived(merged.collect())))
        else:
            self.registry.register(_Families(lambda: self._with_derived(self.own_families())))
            if process_metrics:
                ProcessCollector(registry=self.registry)
                PlatformCollector(registry=self.registry)
                GCCollector(registry=self.registry)

    def own_families(self) -> Iterator[Metric]:
        """This process's families: its instruments and its refresh rounds."""
        yield from self.instruments.families()
        last = self.rounds.last_round_at if self.rounds is not None else None
        if last is not None:
            yield GaugeMetricFamily(
                LAST_ROUND, "When the fleet refresh last finished a round (Unix time).", value=last
            )

    def _with_derived(self, families: Iterable[Metric]) -> Iterator[Metric]:
        """The families, and the age of the last refresh round next to its timestamp."""
        for family in families:
            yield family
            if family.name == LAST_ROUND and family.samples:
                age = max(0.0, self._clock() - max(s.value for s in family.samples))
                yield GaugeMetricFamily(
                    "wahealth_refresh_seconds_since_last_round",
                    "Seconds since the fleet refresh last finished a round.",
                    value=age,
                )

    def publish(self) -> None:
        """Copy this process's totals to the multiprocess files (no-op in one process)."""
        if self.publisher is not None:
            self.publisher.publish(self.own_families())

    @contextlib.asynccontextmanager
    async def publishing(self) -> AsyncIterator[None]:
        """While the app runs: publish once a second; at the end, leave the merge."""
        if self.publisher is None:
            yield
            return
        publisher = self.publisher

        async def loop() -> None:
            while True:
                self.publish()
                await asyncio.sleep(PUBLISH_SECONDS)

        task = asyncio.create_task(loop(), name="wahealth-metrics-publish")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.publish()
            publisher.close()

    async def stream(self) -> AsyncIterator[bytes]:
        """The text exposition: the registry and the small storage families, then the
        per-node series a page at a time."""
        self.publish()
        per_node = self.fleet is not None and await self.fleet.per_node_enabled()
        shared = [] if self.fleet is None else await self.fleet.families(per_node=per_node)
        alerts = await self._count_alerts()
        if alerts is not None:
            family = GaugeMetricFamily(
                "wahealth_alerts", "Alerts in the outbox, by delivery state.", labels=("state",)
            )
            for state, n in sorted(alerts.items()):
                family.add_metric((state,), n)
            shared.append(family)
        shared.extend(await self._connections())
        if self.shared is not None:
            shared.extend(await self.shared.families())
        registry: Any = self.registry
        if self.replica is not None:
            replica = self.replica
            registry = _Families(lambda: labelled(self.registry.collect(), replica))
        yield generate_latest(registry) + generate_latest(_Families(lambda: shared))
        if self.fleet is not None and per_node:
            async for chunk in self.fleet.per_node_text():
                yield chunk

    async def render(self) -> bytes:
        """The whole exposition at once."""
        return b"".join([chunk async for chunk in self.stream()])

    async def _connections(self) -> list[Metric]:
        """`wahealth_meta_connection_refused{connection}`: 1 while Meta refuses its token."""
        if self.connections is None:
            return []
        try:
            states = await self.connections()
        except Exception as exc:  # noqa: BLE001 — a scrape still answers with everything else
            log.warning("metrics: reading the Meta connections failed", error=type(exc).__name__)
            return []
        family = GaugeMetricFamily(
            "wahealth_meta_connection_refused",
            "1 while Meta refuses the connection's token (its spaces' refresh is paused), else 0.",
            labels=("connection",),
        )
        for name, state in states:
            family.add_metric((name,), 1 if state == "refused" else 0)
        return [family]

    async def _count_alerts(self) -> dict[str, int] | None:
        if self.count_alerts is None:
            return None
        try:
            found = await self.count_alerts()
        except Exception as exc:  # noqa: BLE001 — a scrape still answers with everything else
            log.warning("metrics: counting alerts failed", error=type(exc).__name__)
            return None
        counts = dict.fromkeys((s.value for s in AlertState), 0)
        counts.update(found)
        return counts


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_endpoint(
    metrics: Metrics, mode: MetricsMode
) -> Callable[[Request], Awaitable[Response]]:
    """The GET /metrics handler; in `local` mode other peers get a 404, as if it did not exist."""

    async def endpoint(request: Request) -> Response:
        if mode is MetricsMode.LOCAL and not _is_loopback(request):
            raise HTTPException(status_code=404)
        return StreamingResponse(metrics.stream(), media_type=CONTENT_TYPE)

    return endpoint
