"""Meta webhooks in: the verification handshake, signatures, and which nodes get refreshed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from wahealth.cache.memory import MemoryNonceStore
from wahealth.core.queries import FailClosedNonces
from wahealth.monitor.meta_webhooks import MetaWebhookIngest
from wahealth.storage import CatalogRepository, TenancyRepository, create_engine, session_factory
from wahealth.storage import upgrade as migrate
from wahealth.storage.catalog import PhoneNumberRecord, TemplateRecord
from wahealth.web.meta_webhooks import MAX_BODY_BYTES, MetaWebhookEndpoint

APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "verify-me"
WABA = "102290129340398"
PHONES = {"106540352242922": "+86 138 0000 0001", "105154286024403": "+86 138 0000 0002"}
TEMPLATE = "2632273056924580"


class Refreshes:
    """A stand-in for HealthService.refresh that records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.failing: set[str] = set()
        self.block = asyncio.Event()
        self.blocking = False
        self.started = asyncio.Event()

    async def __call__(self, node_id: str, cause: str) -> object:
        self.calls.append((node_id, cause))
        self.started.set()
        if self.blocking:
            await self.block.wait()
        if node_id in self.failing:
            raise RuntimeError("Meta did not answer")
        return None


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("webhooks") / "migrated.db"
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def catalog(tmp_path: Path, migrated: Path) -> AsyncIterator[CatalogRepository]:
    path = tmp_path / "wahealth.db"
    shutil.copyfile(migrated, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    tenancy = TenancyRepository(sessions)
    await tenancy.upsert_account("demo", 5)
    await tenancy.upsert_space("demo-space", "demo")
    await tenancy.upsert_waba(WABA, "demo-space")
    repo = CatalogRepository(sessions)
    await repo.replace_phone_numbers(
        WABA, [PhoneNumberRecord(pid, shown) for pid, shown in PHONES.items()]
    )
    await repo.replace_templates(WABA, [TemplateRecord(TEMPLATE, "order_update", "en")])
    yield repo
    await engine.dispose()


@pytest.fixture
def refreshes() -> Refreshes:
    return Refreshes()


class Webhooks:
    """The HTTP endpoint and the monitor's ingest behind it, as the app wires them."""

    def __init__(
        self,
        catalog: CatalogRepository,
        refreshes: Refreshes,
        *,
        verify_token: str | None = VERIFY_TOKEN,
        app_secret: str | None = APP_SECRET,
        **options: Any,
    ) -> None:
        self.outdated: list[str] = []
        self.ingest = MetaWebhookIngest(
            catalog=catalog,
            refresh=refreshes,
            mark_outdated=self._mark_outdated,
            min_refresh_interval_seconds=options.pop("min_refresh_interval_seconds", 0.0),
            **options,
        )
        self.endpoint = MetaWebhookEndpoint(
            verify_token=verify_token,
            app_secret=app_secret,
            notices=self.ingest,
            seen=FailClosedNonces(MemoryNonceStore()),
        )

    async def _mark_outdated(self, node_id: str) -> None:
        self.outdated.append(node_id)

    async def drain(self) -> None:
        await self.ingest.drain()

    async def aclose(self) -> None:
        await self.ingest.aclose()


@pytest.fixture
async def ingest(catalog: CatalogRepository, refreshes: Refreshes) -> AsyncIterator[Webhooks]:
    webhooks = Webhooks(catalog, refreshes)
    yield webhooks
    await webhooks.aclose()


def client_for(ingest: Webhooks) -> httpx.AsyncClient:
    app = Starlette(routes=ingest.endpoint.routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def notification(*changes: tuple[str, dict[str, Any]], waba: str = WABA) -> bytes:
    entry = {
        "id": waba,
        "time": 1780304400,
        "changes": [{"field": field, "value": value} for field, value in changes],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


async def post(ingest: Webhooks, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with client_for(ingest) as client:
        response = await client.post("/webhooks/meta", content=body, headers=headers)
    await ingest.drain()
    return response


# --- handshake -------------------------------------------------------------------------------


async def test_handshake_echoes_the_challenge(ingest: Webhooks) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    async with client_for(ingest) as client:
        response = await client.get("/webhooks/meta", params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ],
)
async def test_handshake_refused(ingest: Webhooks, params: dict[str, str]) -> None:
    async with client_for(ingest) as client:
        response = await client.get("/webhooks/meta", params=params)
    assert response.status_code == 403
    assert "1" not in response.text


async def test_not_configured_is_a_clear_404(
    catalog: CatalogRepository, refreshes: Refreshes
) -> None:
    ingest = Webhooks(catalog, refreshes, verify_token=None, app_secret=None)
    body = notification(("account_update", {"event": "ACCOUNT_VIOLATION"}))
    async with client_for(ingest) as client:
        got = await client.get(
            "/webhooks/meta",
            params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        )
        posted = await client.post("/webhooks/meta", content=body, headers=signed(body))
    assert got.status_code == posted.status_code == 404
    assert "meta_webhooks.app_secret" in posted.json()["error"]
    await ingest.drain()
    assert refreshes.calls == []


# --- signatures ------------------------------------------------------------------------------

BODY = notification(("account_update", {"event": "ACCOUNT_VIOLATION"}))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/json"}, 401),
        ({"X-Hub-Signature-256": ""}, 401),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 403),
        ({"X-Hub-Signature-256": "garbage"}, 403),
        (signed(BODY, secret="another-app-secret"), 403),
        (signed(BODY + b" "), 403),
        (
            {"X-Hub-Signature": "sha1=" + hmac.new(APP_SECRET.encode(), BODY, "sha1").hexdigest()},
            401,
        ),
    ],
    ids=["unsigned", "empty", "zeros", "garbage", "wrong-secret", "other-body", "sha1-only"],
)
async def test_forged_webhooks_are_refused_and_change_nothing(
    ingest: Webhooks, refreshes: Refreshes, headers: dict[str, str], status: int
) -> None:
    response = await post(ingest, BODY, headers)
    assert response.status_code == status
    assert refreshes.calls == []


async def test_malformed_json_is_400(ingest: Webhooks, refreshes: Refreshes) -> None:
    for body in (b"{not json", b"[1, 2]"):
        response = await post(ingest, body, signed(body))
        assert response.status_code == 400
    assert refreshes.calls == []


async def test_oversized_body_is_refused(ingest: Webhooks, refreshes: Refreshes) -> None:
    body = b'{"object": "whatsapp_business_account", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await post(ingest, body, signed(body))
    assert response.status_code == 413
    assert refreshes.calls == []


# --- what gets refreshed ---------------------------------------------------------------------


async def test_account_update_refreshes_the_waba_its_numbers_and_templates(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    response = await post(ingest, BODY, signed(BODY))
    assert response.status_code == 200
    assert sorted(refreshes.calls) == sorted(
        [(WABA, "webhook"), *((p, "webhook") for p in PHONES), (TEMPLATE, "webhook")]
    )


async def test_business_capability_update_refreshes_the_waba_and_its_numbers(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    body = notification(
        ("business_capability_update", {"max_daily_conversations_per_business": "TIER_2K"})
    )
    assert (await post(ingest, body, signed(body))).status_code == 200
    assert sorted(node for node, _ in refreshes.calls) == sorted([WABA, *PHONES])


async def test_phone_number_quality_update_refreshes_that_number(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    body = notification(
        (
            "phone_number_quality_update",
            {
                "display_phone_number": "8613800000002",
                "event": "FLAGGED",
                "current_limit": "TIER_1K",
            },
        )
    )
    assert (await post(ingest, body, signed(body))).status_code == 200
    assert refreshes.calls == [("105154286024403", "webhook")]


async def test_phone_number_not_in_the_catalog_refreshes_nothing(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    body = notification(
        ("phone_number_quality_update", {"display_phone_number": "15550001111", "event": "FLAGGED"})
    )
    assert (await post(ingest, body, signed(body))).status_code == 200
    assert refreshes.calls == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (
            "message_template_status_update",
            {
                "event": "PAUSED",
                "message_template_id": int(TEMPLATE),
                "message_template_name": "order_update",
                "message_template_language": "en",
                "reason": None,
            },
        ),
        (
            "message_template_quality_update",
            {
                "previous_quality_score": "GREEN",
                "new_quality_score": "RED",
                "message_template_id": int(TEMPLATE),
            },
        ),
    ],
)
async def test_template_updates_refresh_the_template(
    ingest: Webhooks, refreshes: Refreshes, field: str, value: dict[str, Any]
) -> None:
    body = notification((field, value))
    assert (await post(ingest, body, signed(body))).status_code == 200
    assert refreshes.calls == [(TEMPLATE, "webhook")]


async def test_unknown_fields_and_objects_are_acknowledged_and_ignored(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    messages = notification(("messages", {"messages": [{"id": "wamid.1"}]}))
    page = json.dumps({"object": "page", "entry": [{"id": "1", "changes": []}]}).encode()
    odd = json.dumps({"object": "whatsapp_business_account", "entry": "nope"}).encode()
    for body in (messages, page, odd):
        assert (await post(ingest, body, signed(body))).status_code == 200
    assert refreshes.calls == []


async def test_one_failing_refresh_does_not_stop_the_others(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    refreshes.failing = {WABA}
    assert (await post(ingest, BODY, signed(BODY))).status_code == 200
    assert len(refreshes.calls) == 4


async def test_the_answer_does_not_wait_for_refreshes(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    refreshes.blocking = True
    async with client_for(ingest) as client, asyncio.timeout(5):
        response = await client.post("/webhooks/meta", content=BODY, headers=signed(BODY))
    assert response.status_code == 200
    async with asyncio.timeout(5):
        await refreshes.started.wait()  # started after the answer, and still waiting
    # closing cancels them
    await ingest.aclose()
    await ingest.drain()


# --- replays, outdated marks, bounded refreshes ------------------------------------------------


async def test_a_replayed_webhook_is_acknowledged_without_work(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    answers = [await post(ingest, BODY, signed(BODY)) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert all(a.text == "EVENT_RECEIVED" for a in answers)
    # Only the first delivery did anything: the WABA, its two numbers and its template.
    assert len(refreshes.calls) == 4
    assert sorted(ingest.outdated) == sorted([WABA, *PHONES, TEMPLATE])


async def test_every_affected_node_is_marked_outdated_before_its_refresh(
    ingest: Webhooks, refreshes: Refreshes
) -> None:
    refreshes.failing = {WABA, *PHONES, TEMPLATE}
    assert (await post(ingest, BODY, signed(BODY))).status_code == 200
    assert sorted(ingest.outdated) == sorted([WABA, *PHONES, TEMPLATE])


async def test_webhook_refreshes_of_one_node_are_spaced_by_the_minimum_interval(
    catalog: CatalogRepository, refreshes: Refreshes
) -> None:
    webhooks = Webhooks(catalog, refreshes, min_refresh_interval_seconds=3600.0)
    try:
        for event in ("FLAGGED", "UNFLAGGED", "FLAGGED_AGAIN"):
            body = notification(
                (
                    "message_template_status_update",
                    {"event": event, "message_template_id": TEMPLATE},
                )
            )
            assert (await post(webhooks, body, signed(body))).status_code == 200
    finally:
        await webhooks.aclose()
    assert refreshes.calls == [(TEMPLATE, "webhook")]
    assert webhooks.outdated == [TEMPLATE] * 3  # marked outdated every time, all the same


async def test_webhook_refreshes_spend_the_meta_budget(
    catalog: CatalogRepository, refreshes: Refreshes
) -> None:
    from wahealth.core.budget import MemoryCallBudget

    webhooks = Webhooks(catalog, refreshes, budget=MemoryCallBudget(2, clock=lambda: 0.0))
    try:
        assert (await post(webhooks, BODY, signed(BODY))).status_code == 200
    finally:
        await webhooks.aclose()
    assert len(refreshes.calls) == 2  # of the 4 nodes: the budget allowed two calls
    assert len(webhooks.outdated) == 4
