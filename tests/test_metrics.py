"""/metrics: Prometheus text scraped from the real app after real requests."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from wahealth.core.ports import CachedReport
from wahealth.domain.records import AlertState
from wahealth.metrics import InstrumentedCache, Metrics
from wahealth.settings import ConfigError, load_settings
from wahealth.testing import DEMO, RunningApp, demo_settings, running_app
from wahealth.upstream.errors import GraphNotFound

PHONE = "106540352242922"  # AVAILABLE in the demo scenario
D360 = {"D360-API-KEY": DEMO.d360_key}
GRAPH = {"Authorization": f"Bearer {DEMO.graph_token}"}
BLOCKED = {
    "can_send_message": "BLOCKED",
    "errors": [
        {"error_code": 141010, "error_description": "Restricted.", "possible_solution": "-"}
    ],
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by (sample name, labels but `replica`); fails on
    malformed text."""
    return {
        (sample.name, frozenset((k, v) for k, v in sample.labels.items() if k != "replica")): (
            sample.value
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def replicas(text: str) -> dict[str, set[str | None]]:
    """The `replica` labels each sample name carries (None: a sample without one)."""
    found: dict[str, set[str | None]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).add(sample.labels.get("replica"))
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def scrape(running: RunningApp) -> Samples:
    response = await running.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


async def test_requests_cache_and_upstream_are_counted(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        before = await scrape(running)
        for _ in range(3):
            answer = await running.client.get("/health_status", headers=D360)
            assert answer.status_code == 200
        graph = await running.client.get(f"/v21.0/{PHONE}?fields=health_status", headers=GRAPH)
        assert graph.status_code == 200
        refused = await running.client.get(f"/v21.0/{PHONE}?fields=health_status")
        assert refused.status_code == 401
        assert (await running.client.get("/healthz")).status_code == 200
        assert (await running.client.get("/nowhere")).status_code == 404
        after = await scrape(running)

    requests = "wahealth_http_requests_total"
    assert value(after, requests, dialect="d360", status="2xx") == 3
    assert value(after, requests, dialect="graph", status="2xx") == 1
    assert value(after, requests, dialect="graph", status="4xx") == 1
    # /healthz, plus the first scrape itself (counted once it was answered).
    assert value(after, requests, dialect="other", status="2xx") == 2
    assert value(after, requests, dialect="other", status="4xx") == 1
    assert ("wahealth_http_requests_total", frozenset({("dialect", "cams")})) not in after

    latency = "wahealth_http_request_duration_seconds"
    assert value(after, latency + "_count", dialect="d360") == 3
    assert value(after, latency + "_bucket", dialect="d360", le="+Inf") == 3
    assert value(after, latency + "_sum", dialect="d360") > 0
    assert value(after, latency + "_count", dialect="cams") == 0

    # One miss fetched the number from Meta; the other three queries were cache hits.
    assert value(after, "wahealth_cache_lookups_total", result="miss") == 1
    assert value(after, "wahealth_cache_lookups_total", result="hit") == 3
    assert value(after, "wahealth_cache_lookups_total", result="error") == 0
    health_calls = value(after, "wahealth_upstream_calls_total", method="health")
    assert health_calls - value(before, "wahealth_upstream_calls_total", method="health") == 1
    # Two WABAs synced at start: one /phone_numbers and one /message_templates call each.
    assert value(after, "wahealth_upstream_calls_total", method="phone_numbers") == 2
    assert value(after, "wahealth_upstream_calls_total", method="message_templates") == 2
    assert value(after, "wahealth_coalesce_started_total") == health_calls
    assert value(after, "wahealth_coalesce_in_flight") == 0
    assert any(name.startswith("process_") for name, _ in after)


async def test_upstream_errors_are_counted_by_type(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path)) as running:
        with pytest.raises(GraphNotFound):
            await running.components.graph.health("999999999")
        samples = await scrape(running)

    errors = "wahealth_upstream_errors_total"
    assert value(samples, errors, method="health", error="GraphNotFound") == 1
    assert value(samples, "wahealth_upstream_calls_total", method="health") == 1


async def test_alerts_gauge_follows_the_outbox(tmp_path: Path) -> None:
    settings = demo_settings(
        tmp_path,
        cache={"ttl_seconds": 0, "stale_while_revalidate_seconds": 0},
        alerts={
            "allow_private_targets": True,
            "flap_window_seconds": 0,
            # The monitor loops are off in the demo settings: alerts stay pending.
            "subscriptions": [{"space": DEMO.space, "url": "http://127.0.0.1:9/", "secret": "s"}],
        },
    )
    async with running_app(settings) as running:
        first = await running.client.get("/health_status", headers=D360)
        assert first.status_code == 200
        quiet = await scrape(running)
        changed = await running.client.put(f"/_emulator/nodes/{PHONE}/health", json=BLOCKED)
        assert changed.status_code == 200
        blocked = await running.client.get("/health_status", headers=D360)
        assert blocked.json()["health_status"]["can_send_message"] == "BLOCKED"
        await running.components.health.drain()  # the transition is recorded after the answer
        pending = await scrape(running)
        outbox = running.components.monitor.outbox
        [alert] = await outbox.list_alerts(space_id=DEMO.space)
        await outbox.mark_dead(alert.id, "receiver gone")
        dead = await scrape(running)

    def alerts(samples: Samples) -> dict[str, float]:
        return {state.value: value(samples, "wahealth_alerts", state=state) for state in AlertState}

    assert alerts(quiet) == {"pending": 0, "delivered": 0, "dead": 0, "suppressed": 0}
    assert alerts(pending) == {"pending": 1, "delivered": 0, "dead": 0, "suppressed": 0}
    assert alerts(dead) == {"pending": 0, "delivered": 0, "dead": 1, "suppressed": 0}


async def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    async with (
        running_app(demo_settings(tmp_path / "a")) as busy,
        running_app(demo_settings(tmp_path / "b")) as idle,
    ):
        assert (await busy.client.get("/health_status", headers=D360)).status_code == 200
        busy_samples = await scrape(busy)
        idle_samples = await scrape(idle)

    key = ("wahealth_http_requests_total", frozenset({("dialect", "d360"), ("status", "2xx")}))
    assert busy_samples[key] == 1
    assert key not in idle_samples
    assert value(idle_samples, "wahealth_cache_lookups_total", result="miss") == 0


async def test_off_serves_no_endpoint(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path, metrics={"mode": "off"})) as running:
        assert (await running.client.get("/health_status", headers=D360)).status_code == 200
        response = await running.client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Unknown path components: /metrics"


async def test_local_answers_only_loopback_peers(tmp_path: Path) -> None:
    async with running_app(demo_settings(tmp_path, metrics={"mode": "local"})) as running:
        local = await scrape(running)
        remote = httpx.ASGITransport(app=running.app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="http://wahealth.test") as client:
            refused = await client.get("/metrics")
    assert value(local, "wahealth_cache_lookups_total", result="hit") == 0
    assert refused.status_code == 404
    assert "wahealth" not in refused.text


def test_unknown_mode_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "wahealth.toml"
    config.write_text('[metrics]\nmode = "maybe"\n')
    with pytest.raises(ConfigError, match=r"metrics\.mode"):
        load_settings(config)


class _BrokenCache:
    async def get(self, node_id: str) -> CachedReport | None:
        raise ConnectionError("cache down")

    async def put(self, entry: CachedReport, retain_seconds: float) -> None:
        raise TimeoutError

    async def delete(self, node_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_cache_errors_are_counted_and_raised() -> None:
    metrics = Metrics(process_metrics=False)
    cache = InstrumentedCache(_BrokenCache(), metrics.instruments)
    with pytest.raises(ConnectionError):
        await cache.get(PHONE)
    with pytest.raises(TimeoutError):
        await cache.put(CachedReport(PHONE, b"{}", 0.0), 60)
    samples = parse((await metrics.render()).decode())

    assert value(samples, "wahealth_cache_lookups_total", result="error") == 1
    assert value(samples, "wahealth_cache_errors_total", operation="get", error="ConnectionError")
    assert value(samples, "wahealth_cache_errors_total", operation="put", error="TimeoutError")
    assert not any(name.startswith("process_") for name, _ in samples)
    assert not any(name == "wahealth_alerts" for name, _ in samples)
