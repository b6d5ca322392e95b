"""Graceful stop for `wahealth serve`: on SIGTERM, unready first, then drain, then stop.

This runs in the process that holds granian (`wahealth.server`).

granian stops its workers as soon as its main process gets SIGTERM: they finish the
requests in flight but accept no new ones, so a load balancer still routing to the
replica sees refused connections until its health check notices. Here SIGTERM first
creates the stop marker (every worker's `/readyz` then answers 503), keeps serving for
`drain_seconds`, and only then lets granian stop as usual. SIGINT (Ctrl-C) and a second
SIGTERM stop at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from granian import Granian

# granian's server class (multi-process or, on a free-threaded build, multi-thread).
_Server: Any = Granian


class DrainingGranian(_Server):  # type: ignore[misc]  # a subclass of an untyped class
    """granian's server, with SIGTERM turned into unready → drain → stop."""

    def __init__(self, *args: Any, drain_seconds: float, stop_marker: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drain_seconds = drain_seconds
        self._stop_marker = stop_marker
        self._draining = False

    def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
        signum = args[0] if args else None
        if signum != signal.SIGTERM or self._draining or self._drain_seconds <= 0:
            self._stop_marker.touch()
            super().signal_handler_interrupt(*args, **kwargs)
            return
        self._draining = True
        self._stop_marker.touch()
        # Plain stderr: this process holds granian only, no console library.
        sys.stderr.write(
            f"SIGTERM: /readyz now answers 503; serving {self._drain_seconds:g} s more, "
            "then stopping\n"
        )
        sys.stderr.flush()
        stop = threading.Timer(self._drain_seconds, super().signal_handler_interrupt)
        stop.daemon = True
        stop.start()
