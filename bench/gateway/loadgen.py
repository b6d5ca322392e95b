"""A closed-loop HTTP/1.1 load generator on raw asyncio protocols, and a CAMS request signer.

Each of `concurrency` keep-alive connections sends one request, waits for the whole
response, records its latency and sends the next, like wrk. No streams, no coroutine
per request: the next request is written from `data_received`, which keeps the client
cheap enough to load a one-core server. It is still Python; `run()` reports its own CPU
use so a client-bound figure can be recognised as one.

CAMS requests cannot be replayed (every one carries a fresh nonce and date), so they are
signed per request, the way the official SDK signs them (ACS3-HMAC-SHA256, RPC style).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

from wahealth.auth.cams_signature import SignedRequest, v3_string_to_sign

RequestFactory = Callable[[], bytes]


def plain_request(host: str, path: str, headers: dict[str, str]) -> RequestFactory:
    """A GET that is the same bytes every time (360dialog, Graph, bare)."""
    lines = [f"GET {path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return lambda: raw


class CamsSigner:
    """Signs GetWhatsappHealthStatus calls like `alibabacloud-cams20200606` (V3, RPC style):
    a POST with the parameters in the query and an empty body."""

    SIGNED = (
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    )
    EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

    def __init__(self, host: str, key_id: str, secret: str, params: dict[str, str]) -> None:
        self._host = host
        self._key_id = key_id
        self._secret = secret.encode()
        self._query = "&".join(f"{name}={quote(params[name], safe='~')}" for name in sorted(params))
        self._checked = False

    def headers(self, date: str, nonce: str) -> dict[str, str]:
        """The signed headers of one call, Authorization included."""
        headers = {
            "host": self._host,
            "x-acs-action": "GetWhatsappHealthStatus",
            "x-acs-content-sha256": self.EMPTY_SHA256,
            "x-acs-date": date,
            "x-acs-signature-nonce": nonce,
            "x-acs-version": "2020-06-06",
        }
        canonical = "\n".join(
            (
                "POST",
                "/",
                self._query,
                "".join(f"{name}:{headers[name]}\n" for name in self.SIGNED),
                ";".join(self.SIGNED),
                self.EMPTY_SHA256,
            )
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        if not self._checked:
            # Our shortcut must sign exactly what the server will verify.
            request = SignedRequest("POST", "/", self._query.encode(), headers)
            assert to_sign == v3_string_to_sign(request, self.SIGNED, self.EMPTY_SHA256)
            self._checked = True
        signature = hmac.new(self._secret, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"ACS3-HMAC-SHA256 Credential={self._key_id},"
            f"SignedHeaders={';'.join(self.SIGNED)},Signature={signature}"
        )
        return headers

    def factory(self) -> RequestFactory:
        """Fresh bytes per call: a new nonce always, a new date once a second."""
        head = f"POST /?{self._query} HTTP/1.1\r\ncontent-length: 0\r\n"
        cached_date = [0, ""]

        def make() -> bytes:
            now = int(time.time())
            if now != cached_date[0]:
                cached_date[:] = [
                    now,
                    datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                ]
            signed = self.headers(str(cached_date[1]), secrets.token_hex(16))
            return (head + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n").encode()

        return make


@dataclass
class Stats:
    """What one measured window saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    recording: bool = False
    errors: int = 0


class _Connection(asyncio.Protocol):
    def __init__(self, make: RequestFactory, stats: Stats, finished: asyncio.Future[None]) -> None:
        self._make = make
        self._stats = stats
        self._finished = finished
        self._buffer = b""
        self._need = -1
        self._sent_at = 0.0
        self._status = 0
        self._transport: asyncio.Transport | None = None
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._sent_at = time.perf_counter()
        self._transport.write(self._make())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._need < 0:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self._buffer[:end].lower()
                start = head.find(b"content-length:")
                if start < 0:
                    self._fail()
                    return
                stop = head.find(b"\r\n", start)
                length = int(head[start + 15 : stop if stop > 0 else None])
                self._status = int(head[9:12])
                self._need = end + 4 + length
            if len(self._buffer) < self._need:
                return
            self._buffer = self._buffer[self._need :]
            self._need = -1
            stats = self._stats
            if stats.recording:
                stats.latencies.append(time.perf_counter() - self._sent_at)
                stats.statuses[self._status] = stats.statuses.get(self._status, 0) + 1
            if self.stopping:
                self._close()
                return
            self._send()

    def _fail(self) -> None:
        self._stats.errors += 1
        self._close()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished.done():
            self._finished.set_result(None)


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    errors: int
    client_cpu: float  # share of one core the client used while measuring
    server_cpu: float  # the same for the server, when a probe was given (else nan)


def _same(connection: _Connection) -> _Connection:
    return connection


def _percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def run(
    host: str,
    port: int,
    make: RequestFactory,
    *,
    concurrency: int,
    warmup_seconds: float,
    duration_seconds: float,
    server_cpu_seconds: Callable[[], float] | None = None,
) -> Result:
    """Load `host:port` with `concurrency` connections; measure after the warm-up.

    `server_cpu_seconds` reads the server's CPU time, to tell how busy it was meanwhile.
    """
    probe = server_cpu_seconds or (lambda: float("nan"))
    loop = asyncio.get_running_loop()
    stats = Stats()
    connections: list[_Connection] = []
    finished: list[asyncio.Future[None]] = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        connection = _Connection(make, stats, done)
        await loop.create_connection(functools.partial(_same, connection), host, port)
        connections.append(connection)
        finished.append(done)
    await asyncio.sleep(warmup_seconds)
    stats.recording = True
    server_start, cpu_start, wall_start = probe(), time.process_time(), time.perf_counter()
    await asyncio.sleep(duration_seconds)
    stats.recording = False
    elapsed = time.perf_counter() - wall_start
    cpu = (time.process_time() - cpu_start) / elapsed
    server_cpu = (probe() - server_start) / elapsed
    for connection in connections:
        connection.stopping = True
    await asyncio.wait_for(asyncio.gather(*finished), timeout=10)
    ordered = sorted(stats.latencies)
    return Result(
        requests_per_second=len(ordered) / elapsed,
        p50_ms=_percentile(ordered, 0.50),
        p99_ms=_percentile(ordered, 0.99),
        statuses=stats.statuses,
        errors=stats.errors,
        client_cpu=cpu,
        server_cpu=server_cpu,
    )


def run_blocking(host: str, port: int, make: RequestFactory, **options: Any) -> Result:
    """`run` on uvloop when installed (a faster client), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(host, port, make, **options))
    return uvloop.run(run(host, port, make, **options))
