"""The Graph client asks the kept fields in the calls it makes anyway, as each version has them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from wahealth.domain import NodeKind
from wahealth.domain.records import PhoneNumberRecord, TemplateRecord
from wahealth.upstream.graph import GraphClient
from wahealth.upstream.records import kept_fields

from .conftest import BASE_URL, DEMO_TOKEN, SleepRecorder

PHONE = "106540352242922"
TEMPLATE = "2632273056924580"
WABA = "102290129340398"


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self._inner.handle_async_request(request)

    def fields(self) -> list[list[str]]:
        """The `fields=` of every GET, and of every batch sub-request, in order."""
        out = []
        for request in self.requests:
            if request.method == "GET":
                out.append(request.url.params["fields"].split(","))
                continue
            for sub in json.loads(parse_qs(request.content.decode())["batch"][0]):
                out.append(parse_qs(urlsplit(sub["relative_url"]).query)["fields"][0].split(","))
        return out


@pytest.fixture
def recording(emulator: Starlette) -> Recording:
    return Recording(emulator)


def _client(recording: Recording, sleeps: SleepRecorder, version: str) -> GraphClient:
    return GraphClient(
        base_url=BASE_URL,
        access_token=DEMO_TOKEN,
        api_version=version,
        transport=recording,
        sleep=sleeps,
    )


@pytest.fixture
async def graph(recording: Recording, sleeps: SleepRecorder) -> AsyncIterator[GraphClient]:
    async with _client(recording, sleeps, "v21.0") as client:
        yield client


def test_each_version_is_asked_only_the_messaging_limit_it_has() -> None:
    old, new = kept_fields("PHONE_NUMBER", "v23.0"), kept_fields("PHONE_NUMBER", "v24.0")
    assert "messaging_limit_tier" in old
    assert "whatsapp_business_manager_messaging_limit" not in old
    assert "whatsapp_business_manager_messaging_limit" in new
    assert "messaging_limit_tier" not in new
    assert kept_fields("MESSAGE_TEMPLATE", "v21.0") == (
        "status",
        "quality_score",
        "category",
        "rejected_reason",
    )
    assert kept_fields("WABA", "v21.0") == ()


async def test_the_catalog_edges_bring_every_kept_field(
    graph: GraphClient, recording: Recording
) -> None:
    numbers = await graph.phone_numbers(WABA)
    templates = await graph.message_templates(WABA)
    assert numbers[0] == PhoneNumberRecord(
        PHONE,
        "+86 138 0000 0001",
        verified_name="wahealth Demo",
        quality_rating="GREEN",
        messaging_limit_tier="TIER_1K",
        throughput="STANDARD",
        status="CONNECTED",
        name_status="APPROVED",
        code_verification_status="VERIFIED",
    )
    assert templates == [
        TemplateRecord(
            TEMPLATE,
            "order_update",
            "en",
            status="PENDING",
            category="UTILITY",
            quality_score="UNKNOWN",
            rejected_reason="NONE",
        )
    ]
    phone_fields, template_fields = recording.fields()
    # The numbers' health comes on the same page (see test_catalog_sync_health.py).
    assert phone_fields == ["id", *kept_fields("PHONE_NUMBER", "v21.0"), "health_status"]
    assert template_fields == ["id", "name", "language", *kept_fields("MESSAGE_TEMPLATE", "v21.0")]


async def test_v24_asks_the_business_manager_messaging_limit(
    recording: Recording, sleeps: SleepRecorder
) -> None:
    async with _client(recording, sleeps, "v24.0") as graph:
        [first, *_] = await graph.phone_numbers(WABA)
    assert (first.messaging_limit_tier, first.whatsapp_business_manager_messaging_limit) == (
        None,
        "TIER_2K",
    )


async def test_a_batch_asks_each_node_s_fields_in_its_own_sub_request(
    graph: GraphClient, recording: Recording
) -> None:
    kinds = {PHONE: NodeKind.PHONE_NUMBER, TEMPLATE: NodeKind.MESSAGE_TEMPLATE}
    results = await graph.batch_health([PHONE, TEMPLATE, WABA], kinds=kinds)
    assert len(recording.requests) == 1  # one batch: no call of their own
    assert recording.fields() == [
        ["health_status", *kept_fields("PHONE_NUMBER", "v21.0")],
        ["health_status", *kept_fields("MESSAGE_TEMPLATE", "v21.0")],
        ["health_status"],
    ]
    phone, template, waba = (results[n] for n in (PHONE, TEMPLATE, WABA))
    assert not isinstance(phone, Exception)
    assert not isinstance(template, Exception)
    assert not isinstance(waba, Exception)
    assert (phone.extra["quality_rating"], phone.extra["throughput"]) == (
        "GREEN",
        {"level": "STANDARD"},
    )
    assert template.extra["quality_score"]["score"] == "UNKNOWN"
    assert waba.extra == {}


async def test_without_kinds_only_health_is_asked(graph: GraphClient, recording: Recording) -> None:
    await graph.batch_health([PHONE])
    report = await graph.health(PHONE)
    assert recording.fields() == [["health_status"], ["health_status"]]
    assert report.extra == {}
    with_fields = await graph.health(PHONE, kind=NodeKind.PHONE_NUMBER)
    assert recording.fields()[-1] == ["health_status", *kept_fields("PHONE_NUMBER", "v21.0")]
    assert with_fields.extra["status"] == "CONNECTED"
