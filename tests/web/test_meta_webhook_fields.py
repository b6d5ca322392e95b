"""What Meta's notifications state outright (limits, template status, quality, category) is
recorded on arrival, through the webhook endpoint, before and whatever the refresh does."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from wahealth.cache.memory import MemoryNonceStore
from wahealth.core.queries import FailClosedNonces
from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.monitor.meta_webhooks import MetaWebhookIngest
from wahealth.monitor.properties import PropertyTracker
from wahealth.storage import (
    CatalogRepository,
    HealthRepository,
    TenancyRepository,
    create_engine,
    session_factory,
    upgrade,
)
from wahealth.storage.flaps import FlapRepository
from wahealth.storage.properties import PropertyRepository
from wahealth.web.meta_webhooks import MetaWebhookEndpoint

APP_SECRET = "meta-app-secret"
WABA = "102290129340398"
PHONE = "106540352242922"
TEMPLATE = "2632273056924580"


class Gateway:
    """The webhook endpoint and the monitor's ingest on real storage; refreshes fail."""

    def __init__(self, sessions: Any) -> None:
        self.refreshed: list[str] = []
        self.history = HealthRepository(sessions)
        self.catalog = CatalogRepository(sessions)
        tracker = PropertyTracker(
            properties=PropertyRepository(sessions),
            flaps=FlapRepository(sessions),
            flap_window_seconds=0,
        )
        self.ingest = MetaWebhookIngest(
            catalog=self.catalog,
            refresh=self._refresh,
            mark_outdated=self._outdated,
            min_refresh_interval_seconds=0,
            observe=tracker.observe,
        )
        endpoint = MetaWebhookEndpoint(
            verify_token=None,
            app_secret=APP_SECRET,
            notices=self.ingest,
            seen=FailClosedNonces(MemoryNonceStore()),
        )
        self.app = Starlette(routes=endpoint.routes())

    async def _refresh(self, node_id: str, cause: str) -> None:
        self.refreshed.append(node_id)
        raise RuntimeError("Meta did not answer")  # the stated values are kept regardless

    async def _outdated(self, node_id: str) -> None:
        return None

    async def notify(self, field: str, value: dict[str, Any]) -> None:
        entry = {"id": WABA, "time": 1780304400, "changes": [{"field": field, "value": value}]}
        body = json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            answer = await client.post("/webhooks/meta", content=body, headers=headers)
        assert answer.status_code == 200
        await self.ingest.drain()

    async def changes(self, node_id: str) -> list[tuple[str | None, str | None, str, str]]:
        return [
            (t.field, t.before, t.after, t.cause.value) for t in await self.history.history(node_id)
        ]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wahealth.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)
    tenancy = TenancyRepository(sessions)
    await tenancy.upsert_account("demo", 5)
    await tenancy.upsert_space("demo-space", "demo")
    await tenancy.upsert_waba(WABA, "demo-space")
    gateway = Gateway(sessions)
    await gateway.catalog.replace_phone_numbers(
        WABA,
        [
            PhoneNumberRecord(
                PHONE,
                "+86 138 0000 0001",
                messaging_limit_tier="TIER_1K",
                whatsapp_business_manager_messaging_limit="TIER_2K",
                status="CONNECTED",
            )
        ],
    )
    await gateway.catalog.replace_templates(
        WABA,
        [
            TemplateRecord(
                TEMPLATE,
                "order_update",
                "en",
                status="APPROVED",
                category="UTILITY",
                quality_score="GREEN",
                rejected_reason="NONE",
            )
        ],
    )
    yield gateway
    await gateway.ingest.aclose()
    await engine.dispose()


async def test_a_limit_change_is_kept_from_the_notification(gateway: Gateway) -> None:
    await gateway.notify(
        "phone_number_quality_update",
        {
            "display_phone_number": "8613800000001",
            "event": "DOWNGRADE",
            "old_limit": "TIER_1K",
            "current_limit": "TIER_250",
            "max_daily_conversations_per_business": "TIER_250",
        },
    )
    assert sorted(await gateway.changes(PHONE)) == [
        ("messaging_limit_tier", "TIER_1K", "TIER_250", "webhook"),
        ("whatsapp_business_manager_messaging_limit", "TIER_2K", "TIER_250", "webhook"),
    ]
    assert gateway.refreshed == [PHONE]  # and the number is refreshed for the rest


async def test_template_status_quality_and_category_are_kept(gateway: Gateway) -> None:
    ids = {"message_template_id": int(TEMPLATE), "message_template_name": "order_update"}
    await gateway.notify("message_template_status_update", {"event": "PAUSED", **ids})
    await gateway.notify("message_template_quality_update", {"new_quality_score": "RED", **ids})
    await gateway.notify(
        "template_category_update",
        {"previous_category": "UTILITY", "new_category": "MARKETING", **ids},
    )
    await gateway.notify(
        "message_template_status_update", {"event": "REJECTED", "reason": "PROMOTIONAL", **ids}
    )
    assert list(reversed(await gateway.changes(TEMPLATE))) == [
        ("status", "APPROVED", "PAUSED", "webhook"),
        ("quality_score", "GREEN", "RED", "webhook"),
        ("category", "UTILITY", "MARKETING", "webhook"),
        ("status", "PAUSED", "REJECTED", "webhook"),
        ("rejected_reason", "NONE", "PROMOTIONAL", "webhook"),
    ]
    assert gateway.refreshed == [TEMPLATE] * 4
    [template] = await gateway.catalog.templates_of_waba(WABA)
    assert (template.status, template.quality_score, template.category) == (
        "REJECTED",
        "RED",
        "MARKETING",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_template_status_update", {"event": "FLAGGED"}),  # an event, not a status
        ("message_template_status_update", {"event": "REINSTATED"}),
        ("message_template_status_update", {"event": 7}),
        ("message_template_quality_update", {"new_quality_score": 3}),
        ("template_category_update", {"new_category": ""}),
        ("template_category_update", {}),
    ],
)
async def test_values_that_are_not_meta_s_are_not_kept(
    gateway: Gateway, field: str, value: dict[str, Any]
) -> None:
    await gateway.notify(field, {"message_template_id": int(TEMPLATE), **value})
    assert await gateway.changes(TEMPLATE) == []
    assert gateway.refreshed == [TEMPLATE]  # the refresh still looks at the template
