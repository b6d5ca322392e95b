"""This process's instruments: request, cache, upstream and Meta-call counters.

The hot path (a cache hit) costs a few tens of microseconds, so the per-request
instruments are plain integers in dicts and lists, bumped by the one event-loop
thread; `prometheus_client` is used only at scrape time (or when publishing them for
other worker processes, see `multiprocess`) to render them.

Components report here through seams they expose: `InstrumentedCache` wraps the report
cache port, `instrumented_limiter` the rate limiter port, `MetaCallCounter` the Graph
client's transport (every HTTP request it sends, each batch sub-request counted as Meta
counts it), the Graph client calls `observe_upstream_call` after each public call (its
`on_call` hook), and the request-id middleware reports every request to `observe_request`.
"""

from __future__ import annotations

import contextvars
import json
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import parse_qs

import httpx
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from wahealth.upstream.graph_http import META_CALLS_EXTENSION

# Few buckets: each costs a series per dialect, and a cache hit is well under 1 ms.
LATENCY_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5)
DIALECTS = ("cams", "d360", "graph", "other")
GRAPH_METHODS = ("health", "batch_health", "phone_numbers", "message_templates")
_STATUS_CLASSES = tuple(f"{n}xx" for n in range(10))
_MINUTE = 60

# Set when the rate limiter refuses the request being served: the limiter sees the
# account, not the dialect, and the request's own task (the dialect's endpoint awaits the
# limiter directly) carries the flag to `observe_request`, which knows the dialect.
_throttled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "wahealth_throttled", default=False
)


def mark_throttled() -> None:
    """The limiter refused the request being served (counted under its dialect)."""
    _throttled.set(True)


class Coalescer(Protocol):
    """The health core's SingleFlight, as its counters are read."""

    @property
    def in_flight_count(self) -> int: ...

    @property
    def started_total(self) -> int: ...

    @property
    def joined_total(self) -> int: ...


class SharedCoalescer(Protocol):
    """The health core's cross-replica coalescing, as its counters are read."""

    @property
    def started_total(self) -> int: ...

    @property
    def waited_total(self) -> int: ...


class _DialectStats:
    """One dialect's request counts (by status class: index status // 100) and latencies."""

    __slots__ = ("buckets", "statuses", "throttled", "total_seconds")

    def __init__(self) -> None:
        self.statuses = [0] * len(_STATUS_CLASSES)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total_seconds = 0.0
        self.throttled = 0

    def observe(self, status: int, seconds: float) -> None:
        self.statuses[(status // 100) % 10] += 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total_seconds += seconds


class _MinuteWindow:
    """Events in the last minute, in one-second slots (the current one partly filled)."""

    __slots__ = ("_clock", "_second", "_slots")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._slots = [0] * _MINUTE
        self._second = int(clock())

    def _advance(self) -> None:
        now = int(self._clock())
        if now - self._second >= _MINUTE:
            self._slots = [0] * _MINUTE
        else:
            for second in range(self._second + 1, now + 1):
                self._slots[second % _MINUTE] = 0
        self._second = max(self._second, now)

    def add(self, n: int) -> None:
        self._advance()
        self._slots[self._second % _MINUTE] += n

    def total(self) -> int:
        self._advance()
        return sum(self._slots)


class Instruments:
    """This process's counters, and the families they render to."""

    def __init__(
        self,
        *,
        coalescer: Coalescer | None = None,
        shared_coalescer: SharedCoalescer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coalescer = coalescer
        self.shared_coalescer = shared_coalescer
        self.cams, self.d360, self.graph, self.other = (_DialectStats() for _ in DIALECTS)
        self.dialects = dict(
            zip(DIALECTS, (self.cams, self.d360, self.graph, self.other), strict=True)
        )
        self.cache_lookups: dict[str, int] = {"hit": 0, "miss": 0, "error": 0}
        self.cache_errors: dict[tuple[str, str], int] = {}
        self.upstream_calls: dict[str, int] = dict.fromkeys(GRAPH_METHODS, 0)
        self.upstream_errors: dict[tuple[str, str], int] = {}
        self.meta_calls = 0
        self._meta_minute = _MinuteWindow(clock)

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
        if status >= 400 and _throttled.get():
            stats.throttled += 1
            _throttled.set(False)

    def observe_upstream_call(self, method: str, error: BaseException | None) -> None:
        """Count one Graph call (the client's `on_call` hook) and its error, if any."""
        if method in self.upstream_calls:
            self.upstream_calls[method] += 1
        if error is not None:
            key = (method, type(error).__name__)
            self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def count_meta_calls(self, calls: int) -> None:
        """Count calls sent to Meta, as Meta counts them."""
        self.meta_calls += calls
        self._meta_minute.add(calls)

    def count_cache_error(self, operation: str, exc: BaseException) -> None:
        key = (operation, type(exc).__name__)
        self.cache_errors[key] = self.cache_errors.get(key, 0) + 1

    def families(self) -> Iterator[Metric]:
        """Every family of this process's instruments, as of now."""
        requests = CounterMetricFamily(
            "wahealth_http_requests",
            "HTTP requests answered, by wire dialect and status class.",
            labels=("dialect", "status"),
        )
        throttled = CounterMetricFamily(
            "wahealth_throttled_requests",
            "Requests refused by the account's rate limit, by wire dialect.",
            labels=("dialect",),
        )
        latency = HistogramMetricFamily(
            "wahealth_http_request_duration_seconds",
            "Time from request to the end of the response, by wire dialect.",
            labels=("dialect",),
        )
        for dialect, stats in self.dialects.items():
            for status, n in zip(_STATUS_CLASSES, stats.statuses, strict=True):
                if n:
                    requests.add_metric((dialect, status), n)
            throttled.add_metric((dialect,), stats.throttled)
            cumulative, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += n
                buckets.append((_le(bound), cumulative))
            latency.add_metric((dialect,), buckets, stats.total_seconds)
        yield requests
        yield latency
        yield throttled

        lookups = CounterMetricFamily(
            "wahealth_cache_lookups",
            "Report cache lookups: hit, miss, or error (the cache failed).",
            labels=("result",),
        )
        for result, n in self.cache_lookups.items():
            lookups.add_metric((result,), n)
        yield lookups
        yield _counters(
            "wahealth_cache_errors",
            "Report cache operations that raised, by operation and exception type.",
            ("operation", "error"),
            self.cache_errors,
        )
        calls = CounterMetricFamily(
            "wahealth_upstream_calls",
            "Calls to Meta's Graph API (retries inside a call not counted), by method.",
            labels=("method",),
        )
        for method, n in self.upstream_calls.items():
            calls.add_metric((method,), n)
        yield calls
        yield _counters(
            "wahealth_upstream_errors",
            "Graph API calls that raised, by method and exception type.",
            ("method", "error"),
            self.upstream_errors,
        )
        yield CounterMetricFamily(
            "wahealth_meta_calls",
            "Calls sent to Meta as Meta counts them: every HTTP request, retries included, "
            "and each sub-request of a batch (not the batch itself).",
            value=self.meta_calls,
        )
        yield GaugeMetricFamily(
            "wahealth_meta_calls_last_minute",
            "Calls sent to Meta (as Meta counts them) in the last 60 seconds.",
            value=self._meta_minute.total(),
        )

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
        if self.shared_coalescer is not None:
            shared = self.shared_coalescer
            yield CounterMetricFamily(
                "wahealth_coalesce_leased",
                "Upstream health fetches this process made holding the node's lease in Redis.",
                value=shared.started_total,
            )
            yield CounterMetricFamily(
                "wahealth_coalesce_waited",
                "Fetches left to another replica holding the lease, answered from its report.",
                value=shared.waited_total,
            )


def _counters(
    name: str, documentation: str, labels: tuple[str, str], counts: dict[tuple[str, str], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, n in sorted(counts.items()):
        family.add_metric(key, n)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def meta_calls_in(request: httpx.Request) -> int:
    """How many calls Meta counts for this request: a batch's sub-requests, else one.

    The sender says so in the request's extensions when it knows; only then is a batch's
    body left unread (decoding it costs more than the rest of sending it).
    """
    declared = request.extensions.get(META_CALLS_EXTENSION)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        return declared
    if request.method != "POST":
        return 1
    try:
        form = parse_qs(request.content.decode("ascii"))
        batch: Any = json.loads(form["batch"][0])
    except (httpx.RequestNotRead, UnicodeDecodeError, KeyError, ValueError):
        return 1
    return len(batch) if isinstance(batch, list) and batch else 1


class MetaCallCounter(httpx.AsyncBaseTransport):
    """The Graph client's transport, counting every request it sends to Meta."""

    def __init__(self, inner: httpx.AsyncBaseTransport, instruments: Instruments) -> None:
        self._inner = inner
        self._instruments = instruments

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._instruments.count_meta_calls(meta_calls_in(request))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
