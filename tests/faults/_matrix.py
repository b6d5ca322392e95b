"""The fault matrix's client side: one health query per dialect, and what each answer must be.

Every dialect asks for the same node, phone number 106540352242922 (`8613800000001`,
the 360dialog demo key's number), so one cached report serves all three.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tests.fuzz._cams import encode, signed_v1
from tests.fuzz._wire import cams_answer, d360_answer, graph_answer
from tests.gateway._wire import PHONE_OK

from wahealth.app import Components
from wahealth.settings import Settings
from wahealth.storage.health import HealthRepository
from wahealth.testing import DEMO, running_app

NODE = PHONE_OK
NO_CACHE = {"ttl_seconds": 0, "stale_while_revalidate_seconds": 0}
STALE_MESSAGE = "Meta is unavailable; this is the last known status"

Query = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def cams(client: httpx.AsyncClient) -> httpx.Response:
    business = {"NodeType": "phone", "PhoneNumber": "8613800000001", "CustSpaceId": DEMO.space}
    return await client.get("/?" + encode(signed_v1("GET", business)))


async def d360(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/health_status", headers={"D360-API-KEY": DEMO.d360_key})


async def graph(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(
        f"/v21.0/{NODE}",
        params={"fields": "health_status"},
        headers={"Authorization": f"Bearer {DEMO.graph_token}"},
    )


DIALECTS: dict[str, Query] = {"cams": cams, "d360": d360, "graph": graph}


def assert_stale(dialect: str, response: httpx.Response) -> None:
    """200 with the last known report, marked stale the dialect's way."""
    assert response.status_code == 200, response.content[:300]
    if dialect == "cams":
        body = cams_answer(response)
        assert body["Message"].startswith(STALE_MESSAGE), body["Message"]
        assert body["Data"]["Entities"][0]["PhoneNumber"] == "8613800000001"
    else:
        check = d360_answer if dialect == "d360" else graph_answer
        assert check(response)["id"] == NODE
        assert response.headers["x-wahealth-source"] == "stale"


def assert_fresh(dialect: str, response: httpx.Response) -> None:
    assert response.status_code == 200, response.content[:300]
    if dialect == "cams":
        assert cams_answer(response)["Message"] == "None"
    else:
        (d360_answer if dialect == "d360" else graph_answer)(response)
        assert response.headers["x-wahealth-source"] == "upstream"


def assert_unavailable(dialect: str, response: httpx.Response) -> None:
    """The dialect's own 503 ("try again"), not the app's last-resort 500."""
    assert response.status_code == 503, response.content[:300]
    if dialect == "cams":
        assert cams_answer(response, 503)["Code"] == "ServiceUnavailable"
    elif dialect == "d360":
        d360_answer(response, 503)
    else:
        assert graph_answer(response, 503)["error"]["code"] == 2


def assert_retry_after(response: httpx.Response) -> None:
    """Every 503 and 429 says when to come back: whole seconds, at least 1."""
    assert response.status_code in (429, 503), response.status_code
    value = response.headers.get("retry-after")
    assert value is not None, f"{response.status_code} without Retry-After"
    assert value.isdigit()
    assert int(value) >= 1


@dataclass
class Gateway:
    client: httpx.AsyncClient
    components: Components

    async def transitions(self, node_id: str = NODE) -> int:
        await self.components.health.drain()  # the queries' reports are recorded after answering
        return len(await HealthRepository(self.components.sessions).history(node_id, limit=1000))

    async def stored_payload(self, node_id: str = NODE) -> Any:
        await self.components.health.drain()
        row = await HealthRepository(self.components.sessions).get(node_id)
        return None if row is None else (row.payload, row.fetched_at)


@contextlib.asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The app on `settings`, never throttling its own clients; a 500 is a response, not a raise."""
    for account in settings.accounts:
        account.qps = 1_000_000
    async with running_app(settings) as running:
        transport = httpx.ASGITransport(app=running.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://wahealth.test") as c:
            yield Gateway(c, running.components)


async def emulator_calls(admin: httpx.AsyncClient, node_id: str = NODE) -> int:
    """Graph calls for the node's health the emulator served (`GET /_emulator/calls`)."""
    answer = await admin.get("/_emulator/calls")
    assert answer.status_code == 200
    count: int = answer.json()["by_path"].get(f"/{node_id}", 0)
    return count


async def add_fault(admin: httpx.AsyncClient, **fault: Any) -> None:
    answer = await admin.post("/_emulator/faults", content=json.dumps(fault))
    assert answer.status_code == 201, answer.text
