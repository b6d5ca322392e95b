"""The router: BSP nodes to their BSP, the rest to Meta, and Meta's budget counting only Meta."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from wahealth.domain import Entity, HealthReport, NodeKind
from wahealth.monitor.chunk_fetch import ChunkFetcher
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.upstream.bsp.config import BspSpace, D360Channel
from wahealth.upstream.bsp.router import BspRouter

PHONE, WABA, META_NODE = "111", "222", "999"
ANSWER = {
    "health_status": {
        "can_send_message": "BLOCKED",
        "entities": [
            {"entity_type": "PHONE_NUMBER", "id": PHONE, "can_send_message": "AVAILABLE"},
            {
                "entity_type": "WABA",
                "id": WABA,
                "can_send_message": "BLOCKED",
                "errors": [{"error_code": 141006}],
            },
            {"entity_type": "BUSINESS", "id": "333", "can_send_message": "AVAILABLE"},
        ],
    },
    "id": PHONE,
}


class Graph:
    """Meta, as far as the router is concerned: remembers what it was asked."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.listed: list[str] = []

    async def batch_health(
        self, node_ids: Sequence[str], *, kinds: Mapping[str, NodeKind] | None = None
    ) -> dict[str, HealthReport | Exception]:
        self.batches.append(list(node_ids))
        now = datetime.now(UTC)
        return {n: HealthReport(n, (Entity("WABA", n, "AVAILABLE"),), now) for n in node_ids}

    async def phone_numbers(self, waba_id: str) -> list[Any]:
        self.listed.append(waba_id)
        return []


async def _router() -> tuple[BspRouter, Graph, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=orjson.dumps(ANSWER))

    graph = Graph()
    router = BspRouter(
        graph,  # type: ignore[arg-type]
        limiter=MemoryRateLimiter(),
        d360_transport=httpx.MockTransport(answer),
    )
    channel = D360Channel(api_key="k", base_url="http://d360.test", phone_number="+86 138 9")
    router.configure([BspSpace("s", "d360", channels=(channel,))])
    assert await router.discover() == {"s": [WABA]}
    return router, graph, seen


async def test_bsp_nodes_go_to_their_bsp_and_the_rest_to_meta() -> None:
    router, graph, seen = await _router()
    results = await router.batch_health([PHONE, META_NODE, WABA, PHONE])
    await router.aclose()
    assert list(results) == [PHONE, META_NODE, WABA]
    assert graph.batches == [[META_NODE]]
    phone, waba = results[PHONE], results[WABA]
    assert isinstance(phone, HealthReport)
    assert isinstance(waba, HealthReport)
    assert phone.can_send_message == "BLOCKED"
    # The WABA's report is the WABA's part of the channel's answer.
    assert [e.entity_type for e in waba.entities] == ["WABA", "BUSINESS"]
    assert waba.node_id == WABA
    assert waba.node_kind is NodeKind.WABA
    assert len(seen) == 3  # discovery, then one call per BSP node
    assert router.meta_calls([PHONE, META_NODE, WABA]) == 1


async def test_the_bsp_catalog_is_what_discovery_learned() -> None:
    router, graph, _ = await _router()
    [record] = await router.phone_numbers(WABA)
    assert (record.id, record.phone_number) == (PHONE, "861389")
    assert await router.message_templates(WABA) == []
    assert await router.phone_numbers("444") == []
    await router.aclose()
    assert graph.listed == ["444"]


class Sink:
    def __init__(self) -> None:
        self.accepted: list[str] = []

    async def accept(self, report: HealthReport, *, cause: str) -> None:
        self.accepted.append(report.node_id)

    async def accept_many(self, reports: Sequence[HealthReport], *, cause: str) -> None:
        self.accepted.extend(r.node_id for r in reports)

    def failed(self, node_id: str, error: Exception) -> None:
        raise AssertionError(f"{node_id} failed: {error}")


async def test_metas_call_budget_counts_only_the_nodes_sent_to_meta() -> None:
    router, _, _ = await _router()
    spent: list[int] = []
    sink = Sink()
    fetcher = ChunkFetcher(
        router, sink, spend=spent.append, succeeded=lambda _: None, default_pause_seconds=1
    )

    async def chunks() -> AsyncGenerator[Sequence[str]]:
        yield [PHONE, META_NODE, WABA]

    outcome = await fetcher.fetch(chunks(), cause="poll")
    await router.aclose()
    assert sorted(outcome.refreshed) == sorted([PHONE, META_NODE, WABA])
    assert spent == [1]


async def test_the_fleet_refreshs_upstream_passes_the_count_on() -> None:
    from wahealth.monitor.properties import FieldsUpstream, snapshots

    router, _, _ = await _router()
    upstream = FieldsUpstream(router, properties=None, stored=snapshots())  # type: ignore[arg-type]
    assert upstream.meta_calls([PHONE, META_NODE, WABA]) == 1
    await router.aclose()


async def test_a_channel_missed_at_start_is_learned_when_a_node_is_asked() -> None:
    answers = [httpx.Response(503), httpx.Response(200, content=orjson.dumps(ANSWER))]
    now = [0.0]
    router = BspRouter(
        Graph(),  # type: ignore[arg-type]
        limiter=MemoryRateLimiter(),
        d360_transport=httpx.MockTransport(lambda request: answers.pop(0)),
        clock=lambda: now[0],
    )
    placed: list[dict[str, list[str]]] = []

    async def place(found: dict[str, list[str]]) -> None:
        placed.append(found)

    channel = D360Channel(api_key="k", base_url="http://d360.test")
    router.configure([BspSpace("s", "d360", channels=(channel,))], placed=place)
    assert await router.discover() == {"s": []}
    assert not router.is_bsp(PHONE)
    now[0] += 31  # past the pause between discoveries
    # Known again from the second discovery, and its WABA handed on to the catalog.
    assert router.meta_calls([PHONE]) == 1
    answers.append(httpx.Response(200, content=orjson.dumps(ANSWER)))
    report = await router.health(PHONE)
    await router.aclose()
    assert report.node_id == PHONE
    assert placed == [{"s": [WABA]}]
    assert router.is_bsp(PHONE)
