"""Waiting for a `wahealth serve` subprocess to answer its liveness probe."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_for_healthz(process: subprocess.Popen[str], port: int, timeout: float) -> None:
    """Poll `/healthz` on 127.0.0.1:`port` until it succeeds; fail if the process exits first
    or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not answer /healthz"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
