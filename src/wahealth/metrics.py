"""Prometheus metrics: request, cache and upstream counters, served at /metrics.

The hot path (a cache hit) costs a few tens of microseconds, so the per-request
instruments are plain integers in dicts and lists, bumped by the one event-loop
thread; `prometheus_client` is used only at scrape time, to render them (and
the gauges read then: alerts by state, coalesced upstream calls) in its text
format. Each app gets its own `Metrics` and registry, so several apps in one
process never share or collide on a series.

Components report to it through seams they expose: `InstrumentedCache` wraps
the report cache port, the Graph client calls `observe_upstream_call` after each
call (its `on_call` hook), the request-id middleware reports every request to
`observe_request`, and at scrape time the health core's coalescer and the
outbox's `count_by_state` are read.
"""

from __future__ import annotations

import enum
import ipaddress
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from wahealth.core.coalesce import SingleFlight
from wahealth.core.ports import CachedReport, ReportCache
from wahealth.domain.records import AlertState

log = structlog.get_logger(__name__)

CountAlerts = Callable[[], Awaitable[Mapping[str, int]]]

METRICS_PATH = "/metrics"
# The classic text format generate_latest writes, understood by every Prometheus.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Few buckets: each costs a series per dialect, and a cache hit is well under 1 ms.
LATENCY_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5)
DIALECTS = ("cams", "d360", "graph", "other")
GRAPH_METHODS = ("health", "batch_health", "phone_numbers", "message_templates")
_STATUS_CLASSES = tuple(f"{n}xx" for n in range(10))


class _DialectStats:
    """One dialect's request counts (by status class: index status // 100) and latencies."""

    __slots__ = ("buckets", "statuses", "total_seconds")

    def __init__(self) -> None:
        self.statuses = [0] * len(_STATUS_CLASSES)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total_seconds = 0.0

    def observe(self, status: int, seconds: float) -> None:
        self.statuses[(status // 100) % 10] += 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total_seconds += seconds


class MetricsMode(enum.StrEnum):
    """Whether /metrics is served, and to whom."""

    ON = "on"  # to anyone who can reach the app
    LOCAL = "local"  # only to loopback peers (a sidecar or node agent on the host)
    OFF = "off"  # no endpoint and no instrumentation at all


class Metrics:
    """One app's instruments and its Prometheus registry.

    `coalescer` (the health service's SingleFlight) and `count_alerts` (the
    outbox's counts by state) are read only at scrape time; either may be None
    to leave its metrics out.
    """

    def __init__(
        self,
        *,
        coalescer: SingleFlight[Any, Any] | None = None,
        count_alerts: CountAlerts | None = None,
        process_metrics: bool = True,
    ) -> None:
        self.coalescer = coalescer
        self.count_alerts = count_alerts
        self.cams, self.d360, self.graph, self.other = (_DialectStats() for _ in DIALECTS)
        self.dialects = dict(
            zip(DIALECTS, (self.cams, self.d360, self.graph, self.other), strict=True)
        )
        self.cache_lookups: dict[str, int] = {"hit": 0, "miss": 0, "error": 0}
        self.cache_errors: dict[tuple[str, str], int] = {}
        self.upstream_calls: dict[str, int] = dict.fromkeys(GRAPH_METHODS, 0)
        self.upstream_errors: dict[tuple[str, str], int] = {}
        self._alerts: dict[str, int] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency (runs once per request: keep it cheap).

        The dialect comes from the path: the dialects own disjoint paths.
        """
        if path == "/":
            stats = self.cams
        elif path == "/health_status":
            stats = self.d360
        elif path.startswith("/v"):
            stats = self.graph
        else:
            stats = self.other
        stats.observe(status, seconds)

    async def render(self) -> bytes:
        """The text exposition: read the gauges that need I/O, then render everything."""
        self._alerts = await self._count_alerts()
        return generate_latest(self.registry)

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

    def observe_upstream_call(self, method: str, error: BaseException | None) -> None:
        """Count one Graph call (the client's `on_call` hook) and its error, if any."""
        if method in self.upstream_calls:
            self.upstream_calls[method] += 1
        if error is not None:
            key = (method, type(error).__name__)
            self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def families(self) -> Iterator[Metric]:
        """Every metric family, as of now."""
        requests = CounterMetricFamily(
            "wahealth_http_requests",
            "HTTP requests answered, by wire dialect and status class.",
            labels=("dialect", "status"),
        )
        for dialect, stats in self.dialects.items():
            for status, n in zip(_STATUS_CLASSES, stats.statuses, strict=True):
                if n:
                    requests.add_metric((dialect, status), n)
        yield requests

        latency = HistogramMetricFamily(
            "wahealth_http_request_duration_seconds",
            "Time from request to the end of the response, by wire dialect.",
            labels=("dialect",),
        )
        for dialect, stats in self.dialects.items():
            cumulative, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += n
                buckets.append((_le(bound), cumulative))
            latency.add_metric((dialect,), buckets, stats.total_seconds)
        yield latency

        lookups = CounterMetricFamily(
            "wahealth_cache_lookups",
            "Report cache lookups: hit, miss, or error (the cache failed).",
            labels=("result",),
        )
        for result, n in self.cache_lookups.items():
            lookups.add_metric((result,), n)
        yield lookups

        cache_errors = CounterMetricFamily(
            "wahealth_cache_errors",
            "Report cache operations that raised, by operation and exception type.",
            labels=("operation", "error"),
        )
        for (operation, error), n in sorted(self.cache_errors.items()):
            cache_errors.add_metric((operation, error), n)
        yield cache_errors

        calls = CounterMetricFamily(
            "wahealth_upstream_calls",
            "Calls to Meta's Graph API (retries inside a call not counted), by method.",
            labels=("method",),
        )
        for method, n in self.upstream_calls.items():
            calls.add_metric((method,), n)
        yield calls

        upstream_errors = CounterMetricFamily(
            "wahealth_upstream_errors",
            "Graph API calls that raised, by method and exception type.",
            labels=("method", "error"),
        )
        for (method, error), n in sorted(self.upstream_errors.items()):
            upstream_errors.add_metric((method, error), n)
        yield upstream_errors

        if self.coalescer is not None:
            flight = self.coalescer
            yield GaugeMetricFamily(
                "wahealth_coalesce_in_flight",
                "Nodes with an upstream health fetch running now.",
                value=flight.in_flight_count,
            )
            yield CounterMetricFamily(
                "wahealth_coalesce_started",
                "Upstream health fetches started (one per node at a time).",
                value=flight.started_total,
            )
            yield CounterMetricFamily(
                "wahealth_coalesce_joined",
                "Health queries that waited for a fetch already in flight instead of calling.",
                value=flight.joined_total,
            )

        if self._alerts is not None:
            alerts = GaugeMetricFamily(
                "wahealth_alerts",
                "Alerts in the outbox, by delivery state.",
                labels=("state",),
            )
            for state, n in sorted(self._alerts.items()):
                alerts.add_metric((state,), n)
            yield alerts

    def count_cache_error(self, operation: str, exc: BaseException) -> None:
        key = (operation, type(exc).__name__)
        self.cache_errors[key] = self.cache_errors.get(key, 0) + 1


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class _Collector:
    """Adapts `Metrics` to prometheus_client's collector protocol."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()


class InstrumentedCache:
    """A ReportCache that counts hits, misses and errors of the cache it wraps."""

    def __init__(self, inner: ReportCache, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._lookups = metrics.cache_lookups

    async def get(self, node_id: str) -> CachedReport | None:
        try:
            entry = await self._inner.get(node_id)
        except Exception as exc:
            self._lookups["error"] += 1
            self._metrics.count_cache_error("get", exc)
            raise
        self._lookups["miss" if entry is None else "hit"] += 1
        return entry

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        try:
            await self._inner.put(entry, retain_seconds)
        except Exception as exc:
            self._metrics.count_cache_error("put", exc)
            raise

    async def mark_outdated(self, node_id: str) -> None:
        try:
            await self._inner.mark_outdated(node_id)
        except Exception as exc:
            self._metrics.count_cache_error("mark_outdated", exc)
            raise

    async def delete(self, node_id: str) -> None:
        try:
            await self._inner.delete(node_id)
        except Exception as exc:
            self._metrics.count_cache_error("delete", exc)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


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
        body = await metrics.render()
        return Response(body, media_type=CONTENT_TYPE)

    return endpoint
