"""Metrics with several worker processes: prometheus_client's multiprocess mode.

A scrape reaches one worker, but each counts only its own requests. With
`PROMETHEUS_MULTIPROC_DIR` set (`wahealth serve --workers N` sets it to a fresh private
directory), every worker publishes its instruments to its own files there, and the worker
that answers a scrape merges all files with prometheus_client's `MultiProcessCollector`:
counters and histograms summed over every process that ever ran, gauges by the mode
each one names (`GAUGE_MODES`).

The hot path keeps bumping plain integers; `Publisher.publish` copies this process's
totals into its files (absolute values, so a repeat is harmless), once a second and
before this worker answers a scrape. Another worker's numbers are thus at most a second
old. Process metrics (`process_*`) are left out: they would describe whichever worker
answered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.values import MultiProcessValue

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# How each gauge of the instruments is merged across processes: `livesum` adds the live
# processes' values (each process has its own coalescer and sends its own calls); `livemax`
# takes the most recent refresh round of any live process.
GAUGE_MODES: Mapping[str, str] = {
    "wahealth_coalesce_in_flight": "livesum",
    "wahealth_meta_calls_last_minute": "livesum",
    "wahealth_refresh_last_round_timestamp_seconds": "livemax",
}
_DEFAULT_GAUGE_MODE = "livesum"

_Key = tuple[str, str, tuple[tuple[str, str], ...]]


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, if this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


class Publisher:
    """Copies this process's families into its files in the multiprocess directory."""

    def __init__(self, directory: str, process_id: Callable[[], int] = os.getpid) -> None:
        if os.environ.get(MULTIPROC_ENV) != directory:
            # prometheus_client's values find their directory in the environment.
            raise ValueError(f"{MULTIPROC_ENV} must name {directory}")
        self.directory = directory
        self._process_id = process_id
        self._value_class: Any = MultiProcessValue(  # type: ignore[no-untyped-call]
            process_identifier=process_id
        )
        self._values: dict[_Key, Any] = {}

    def publish(self, families: Iterable[Metric]) -> None:
        """Write the current value of every sample (histogram buckets as their own counts)."""
        for family in families:
            mode = GAUGE_MODES.get(family.name, _DEFAULT_GAUGE_MODE)
            below: dict[tuple[tuple[str, str], ...], float] = {}
            for sample in family.samples:
                value = sample.value
                if family.type == "histogram":
                    if sample.name.endswith("_count"):
                        continue  # the merge counts the buckets
                    if sample.name.endswith("_bucket"):
                        # Stored per bucket; the merge makes them cumulative again.
                        series = tuple((k, v) for k, v in sample.labels.items() if k != "le")
                        value, below[series] = value - below.get(series, 0.0), value
                elif sample.name.endswith("_created"):
                    continue
                self._value(family, sample.name, sample.labels, mode).set(value)

    def _value(self, family: Metric, name: str, labels: Mapping[str, str], mode: str) -> Any:
        key = (family.name, name, tuple(labels.items()))
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = self._value_class(
                family.type,
                family.name,
                name,
                tuple(labels),
                tuple(labels.values()),
                family.documentation,
                multiprocess_mode=mode if family.type == "gauge" else "",
            )
        return value

    def close(self) -> None:
        """This process is ending: its live gauges leave the merge; its counters stay."""
        mark_process_dead(self._process_id(), self.directory)  # type: ignore[no-untyped-call]
        self._value_class.close_all_files()


class Merged:
    """Every process's published families, merged (a collector for a registry)."""

    def __init__(self, directory: str) -> None:
        self._collector = MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        return iter(self._collector.collect())  # type: ignore[no-untyped-call]
