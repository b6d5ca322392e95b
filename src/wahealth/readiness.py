"""Liveness (`/healthz`) and readiness (`/readyz`) of one replica.

`/healthz` says the process serves: 200 once start-up is done, also while it drains.
`/readyz` says a load balancer may send it traffic: start-up done, not stopping, and
every backend a request needs answers — storage (a trivial query) and Redis (a PING
through the shared client) when the settings use it. Meta is deliberately not probed:
when Meta is down every replica still answers from its cache (marked stale), so taking
replicas out of rotation would turn a degraded service into no service.

A replica is stopping from its lifespan's shutdown on, or as soon as `stop_marker`
exists: `wahealth serve` creates that file when it receives SIGTERM, so that all its
workers answer 503 while they keep serving for the drain period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = structlog.get_logger(__name__)

# Where `wahealth serve` tells its workers which file means "stopping".
STOP_MARKER_ENV = "WAHEALTH_STOP_MARKER"

Probe = Callable[[], Awaitable[object]]


def storage_probe(engine: Any) -> Probe:
    """A trivial query on a pooled connection of `engine` (an AsyncEngine)."""

    async def probe() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return probe


def redis_probe(client: Any) -> Probe:
    """A PING through `client` (the process's shared `redis.asyncio.Redis`)."""

    async def probe() -> None:
        await client.ping()

    return probe


class Readiness:
    """Whether this replica is started, stopping, and able to reach its backends."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        timeout_seconds: float,
        stop_marker: Path | None = None,
    ) -> None:
        self._probes = dict(probes)
        self._timeout = timeout_seconds
        self._stop_marker = stop_marker
        self._failing: set[str] = set()
        self.started = False
        self.stopping = False

    def is_stopping(self) -> bool:
        """Shutdown has begun here, or the server was asked to stop (SIGTERM)."""
        return self.stopping or (self._stop_marker is not None and self._stop_marker.exists())

    async def _check(self, name: str, probe: Probe) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await probe()
        except TimeoutError:
            outcome = "timeout"
        except Exception as exc:  # noqa: BLE001 — any failure is "not ready", never a 500
            outcome = f"error: {type(exc).__name__}"
        else:
            self._failing.discard(name)
            return "ok"
        if name not in self._failing:  # logged when it starts failing, not at every probe
            self._failing.add(name)
            log.warning("readiness check failed", check=name, outcome=outcome)
        return outcome

    async def checks(self) -> dict[str, str]:
        """Each probe's outcome ("ok", "timeout" or "error: <type>"), probed concurrently."""
        names = list(self._probes)
        outcomes = await asyncio.gather(*(self._check(n, self._probes[n]) for n in names))
        return dict(zip(names, outcomes, strict=True))

    async def healthz(self, request: Request) -> Response:
        if not self.started:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if not self.started:
            return JSONResponse({"status": "starting"}, status_code=503)
        if self.is_stopping():
            return JSONResponse({"status": "stopping"}, status_code=503)
        checks = await self.checks()
        failed = [name for name, outcome in checks.items() if outcome != "ok"]
        if failed:
            body = {"status": "unready", "failed": failed, "checks": checks}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "checks": checks})

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]
