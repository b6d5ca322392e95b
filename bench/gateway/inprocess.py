"""Microseconds per cache-hit request for each dialect, the ASGI app called directly.

    .venv/bin/python bench/gateway/inprocess.py [--iterations 20000] [--dialects d360,cams]
        [--profile cams]

No sockets, no server: the real app (`create_app` on the demo scenario, cache TTL a day,
account unthrottled) with its lifespan running, driven by a loop that builds an HTTP scope,
awaits the app and collects what it sends. A warm-up fills the cache, so every timed
request is a hit. CAMS requests are pre-signed before the loop, one nonce each, exactly as
the official SDK signs them. `--profile DIALECT` runs the timed loop under cProfile and
prints the top costs (own time, then cumulative) instead of timing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent))

import presign

from wahealth.app import create_app
from wahealth.logs import configure_logging
from wahealth.testing import DEMO, demo_settings

HOST = "wahealth.test"
PHONE_NUMBER_ID = DEMO.d360_phone_number_id
DIALECTS = ("d360", "graph", "cams", "gate")
Scope = dict[str, Any]


def _scope(raw: bytes) -> Scope:
    """An ASGI HTTP scope from raw request bytes (request line and headers, no body)."""
    head = raw.decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ")
    path, _, query = target.partition("?")
    headers = []
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append(
                (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
            )
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


def _requests(dialect: str, count: int) -> Callable[[int], bytes]:
    if dialect == "d360":
        raw = presign.plain_get(HOST, "/health_status", {"D360-API-KEY": DEMO.d360_key})
        return lambda i: raw
    if dialect == "graph":
        raw = presign.plain_get(
            HOST,
            f"/v21.0/{PHONE_NUMBER_ID}?fields=health_status",
            {"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        return lambda i: raw
    if dialect == "gate":
        path = f"/api/v1/gate?space={DEMO.space}&phone_number=8613800000001"
        raw = presign.plain_get(
            HOST,
            f"{path}&template=order_update&language=en",
            {"Authorization": f"Bearer {DEMO.graph_token}"},
        )
        return lambda i: raw
    signer = presign.CamsPresigner(
        HOST,
        DEMO.access_key_id,
        DEMO.access_key_secret,
        {"CustSpaceId": DEMO.space, "NodeType": "phone", "PhoneNumber": "8613800000001"},
    )
    signer.check()
    signed = list(signer.requests(count))
    return signed.__getitem__


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _drive(app: Any, scopes: list[Scope]) -> None:
    status = [0]

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    for scope in scopes:
        await app(scope, _receive, send)
        if status[0] != 200:
            raise RuntimeError(f"{scope['path']}: status {status[0]}, expected 200")


async def _measure(app: Any, dialect: str, iterations: int, warmup: int, profile: bool) -> float:
    make = _requests(dialect, warmup + iterations)
    # Scopes are built before timing: a server hands the app a ready scope too.
    scopes = [_scope(make(i)) for i in range(warmup + iterations)]
    await _drive(app, scopes[:warmup])
    timed = scopes[warmup:]
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await _drive(app, timed)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        for order in ("tottime", "cumulative"):
            stats.sort_stats(order).print_stats(25)
        print(out.getvalue())
        return float("nan")
    started = time.perf_counter()
    await _drive(app, timed)
    return (time.perf_counter() - started) / iterations * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="timed requests each")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed requests first")
    parser.add_argument("--rounds", type=int, default=3, help="keep the fastest round")
    parser.add_argument("--profile", choices=DIALECTS, help="profile one dialect instead")
    parser.add_argument(
        "--dialects", default=",".join(DIALECTS), help="comma-separated subset to time"
    )
    args = parser.parse_args()
    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="wahealth-inprocess-") as tmp:
        accounts = [
            {
                "name": DEMO.account,
                "qps": 1_000_000,
                "access_keys": [{"id": DEMO.access_key_id, "secret": DEMO.access_key_secret}],
                "d360_keys": [{"key": DEMO.d360_key, "phone_number_id": PHONE_NUMBER_ID}],
                "graph_tokens": [{"token": DEMO.graph_token}],
            }
        ]
        settings = demo_settings(
            Path(tmp),
            cache={"ttl_seconds": 86_400},
            accounts=accounts,
            spaces=[
                {
                    "id": DEMO.space,
                    "account": DEMO.account,
                    "wabas": ["102290129340398", "299399000000001"],
                }
            ],
        )
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=60) as manager:
            if args.profile:
                await _measure(manager.app, args.profile, args.iterations, args.warmup, True)
                return
            print("in-process (ASGI app called directly, cache hits), us per request:")
            for dialect in args.dialects.split(","):
                best = min(
                    [
                        await _measure(manager.app, dialect, args.iterations, args.warmup, False)
                        for _ in range(args.rounds)
                    ]
                )
                print(
                    f"  {dialect:<6} {best:7.1f} us   (best of {args.rounds} x {args.iterations:,})"
                )


if __name__ == "__main__":
    asyncio.run(main())
