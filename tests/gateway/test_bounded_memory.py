"""Client-chosen long values do not grow the gateway's memory.

For each dialect, 300 distinct requests naming a 30 KB value (a CAMS PhoneNumber that
still normalises to a known number, a 30,000-digit Graph node id, a 30,000-character
history id, a 30 KB 360dialog key) go through the app; whatever they leave behind
after garbage collection is measured with tracemalloc. Before the dialects bounded
their inputs, each such request retained 30-60 KB (one value per cache entry, about
4 GiB at the caches' caps); the bound here allows under 7 KB per request, far below
one retained value.
"""

from __future__ import annotations

import gc
import tracemalloc
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from tests.fuzz._cams import encode, signed_v1

from wahealth.testing import DEMO, demo_settings, running_app

LONG = 30_000
REQUESTS = 300
WARM_UP = 30
MAX_RETAINED_BYTES = 2 * 1024 * 1024

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def cams_phone_number(client: httpx.AsyncClient, i: int) -> httpx.Response:
    # Dashes are dropped by normalisation: the digits are the demo's own number.
    phone = "-" * (LONG + i) + "8613800000001"
    business = {"NodeType": "phone", "PhoneNumber": phone, "CustSpaceId": DEMO.space}
    return await client.get("/?" + encode(signed_v1("GET", business)))


async def graph_node_id(client: httpx.AsyncClient, i: int) -> httpx.Response:
    return await client.get(
        f"/v21.0/{i + 1:0{LONG}d}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )


async def history_id(client: httpx.AsyncClient, i: int) -> httpx.Response:
    return await client.get(
        f"/api/v1/nodes/{i + 1:0{LONG}d}/history",
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )


async def d360_key(client: httpx.AsyncClient, i: int) -> httpx.Response:
    return await client.get("/health_status", headers={"D360-API-KEY": f"{i:0{LONG}d}"})


SENDERS: dict[str, Send] = {
    "cams-phone-number": cams_phone_number,
    "graph-node-id": graph_node_id,
    "history-id": history_id,
    "d360-key": d360_key,
}


@pytest.mark.parametrize("kind", sorted(SENDERS))
async def test_long_client_values_retain_no_memory(
    kind: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    send = SENDERS[kind]
    settings = demo_settings(tmp_path)
    for account in settings.accounts:
        account.qps = 1_000_000
    async with running_app(settings) as running:
        client = running.client
        statuses: set[int] = set()
        for i in range(WARM_UP):
            statuses.add((await send(client, REQUESTS + i)).status_code)
        await running.components.health.drain()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(REQUESTS):
                statuses.add((await send(client, i)).status_code)
            await running.components.health.drain()
            # The stdlib's `urlsplit` remembers its last 128 URLs (bounded by count); the
            # test client's cookie handling calls it for every response, so forget them.
            urllib.parse.clear_cache()
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    per_request = retained / REQUESTS
    record_property("retained_bytes", retained)
    record_property("retained_bytes_per_request", round(per_request))
    print(f"\n{kind}: {retained} bytes retained, {per_request:.0f} per request")
    assert all(status < 500 for status in statuses), statuses
    assert retained < MAX_RETAINED_BYTES, (
        f"{kind}: {retained} bytes retained by {REQUESTS} requests ({per_request:.0f} each)"
    )
