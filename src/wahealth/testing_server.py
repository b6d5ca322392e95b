"""Run an ASGI app on a real loopback port in a background thread, for tests.

In-process transports skip the parts that break in production: sockets,
HTTP parsing, keep-alive, timeouts. `serve_in_thread` runs the app under
uvicorn on 127.0.0.1 with a port chosen by the kernel, so a test talks to it
exactly as a client would, and stops it when the block ends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


@dataclass(frozen=True, slots=True)
class RunningServer:
    """Where a server started by `serve_in_thread` listens."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ServerDidNotStart(RuntimeError):
    """The server thread ended or timed out before accepting connections."""


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> Iterator[RunningServer]:
    """Serve `app` on `host:port` (port 0: any free port) until the block exits."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every response waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{bound_port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServerDidNotStart(f"server on {host}:{bound_port} did not start")
            time.sleep(0.01)
        yield RunningServer(host, bound_port)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
