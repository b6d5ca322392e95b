"""The process `wahealth serve` turns into once storage is prepared: granian, and no app.

`wahealth serve` checks the address, migrates and applies the config, then replaces
itself (same pid) with `python -m wahealth.server HOST PORT WORKERS METRICS_MODE DRAIN`. This
module loads granian and nothing else of ours, so the process that stays resident is
small and its workers, forked from it, load the app themselves: the CLI's and the
migration's modules are not held twice (once by the main process, once by each worker).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
APP_FACTORY = "wahealth.app:app_from_environment"


@contextlib.contextmanager
def metrics_directory(workers: int, metrics_mode: str) -> Iterator[None]:
    """With several workers, a fresh private directory where each publishes its metrics.

    Fresh at each start, so no counter of an earlier run is merged in; removed at exit. One
    worker needs none, and an inherited value must not put it in multiprocess mode.
    """
    os.environ.pop(MULTIPROC_ENV, None)
    if workers == 1 or metrics_mode == "off":
        yield
        return
    directory = tempfile.mkdtemp(prefix="wahealth-metrics-")  # mode 0700
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def stop_marker() -> Iterator[Path]:
    """A fresh private directory for the file that tells every worker "stopping"."""
    from wahealth.readiness import STOP_MARKER_ENV

    directory = Path(tempfile.mkdtemp(prefix="wahealth-stop-"))  # mode 0700
    marker = directory / "stopping"
    os.environ[STOP_MARKER_ENV] = str(marker)
    try:
        yield marker
    finally:
        os.environ.pop(STOP_MARKER_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def command(
    host: str, port: int, workers: int, metrics_mode: str, drain_seconds: float
) -> list[str]:
    """The argv that runs this module's `main` with these choices."""
    choices = [host, str(port), str(workers), metrics_mode, repr(float(drain_seconds))]
    return [sys.executable, "-m", __name__, *choices]


def main(argv: list[str]) -> None:
    """Serve the app on granian (workers read the settings from the environment).

    SIGTERM turns every worker's `/readyz` to 503, serves `drain_seconds` more, then
    stops (`wahealth.draining`).
    """
    from granian.constants import Interfaces

    from wahealth.draining import DrainingGranian

    host, port, workers, metrics_mode, drain_seconds = argv
    with metrics_directory(int(workers), metrics_mode), stop_marker() as marker:
        DrainingGranian(
            APP_FACTORY,
            address=host,
            port=int(port),
            interface=Interfaces.ASGI,
            workers=int(workers),
            factory=True,
            log_access=False,
            drain_seconds=float(drain_seconds),
            stop_marker=marker,
        ).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
