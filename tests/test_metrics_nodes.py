"""/metrics from storage: each node's status, numbers' quality and limits, counts, the outbox,
the refresh loop and Meta calls as Meta counts them; scraped from the real app."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.web._public import (
    AVAILABLE_PHONE,
    BLOCKED,
    BLOCKED_TEMPLATE,
    DEMO_NODES,
    DEMO_WABA,
    LIMITED_PHONE,
    OTHER_PHONE,
    OTHER_WABA,
    refresh,
    set_health,
    split_settings,
)

from wahealth.metrics.fleet import messaging_limit
from wahealth.settings import SubscriptionConfig
from wahealth.testing import DEMO, RunningApp, running_app
from wahealth.upstream.emulator.app import emulator_state

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ALL_NODES = (*DEMO_NODES, DEMO_WABA, OTHER_WABA, OTHER_PHONE)

# The Meta budget of the default token's app (each connection has its own).
DEFAULT_APP = frozenset({("connection", "default")})


async def scrape(running: RunningApp) -> Samples:
    response = await running.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = list(text_string_to_metric_families(response.text))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), "a family appears twice"
    return {
        # This replica's own series carry its `replica` label (tests/test_metrics.py).
        (sample.name, frozenset((k, v) for k, v in sample.labels.items() if k != "replica")): (
            sample.value
        )
        for family in families
        for sample in family.samples
    }


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


def node_status(samples: Samples) -> dict[str, tuple[str, str, float]]:
    found = {}
    for labels, v in series(samples, "wahealth_node_status").items():
        label = dict(labels)
        found[label["node_id"]] = (label["space"], label["kind"], v)
    return found


async def test_each_nodes_status_and_its_change(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path)) as running:
        unknown = await scrape(running)
        await refresh(running, *DEMO_NODES, OTHER_PHONE)
        known = await scrape(running)
        await set_health(running, AVAILABLE_PHONE, BLOCKED)
        await refresh(running, AVAILABLE_PHONE)
        changed = await scrape(running)

    assert node_status(unknown) == {
        AVAILABLE_PHONE: (DEMO.space, "PHONE_NUMBER", 3),
        LIMITED_PHONE: (DEMO.space, "PHONE_NUMBER", 3),
        BLOCKED_TEMPLATE: (DEMO.space, "MESSAGE_TEMPLATE", 3),
        DEMO_WABA: (DEMO.space, "WABA", 3),
        OTHER_WABA: (DEMO.other_space, "WABA", 3),
        OTHER_PHONE: (DEMO.other_space, "PHONE_NUMBER", 3),
    }
    assert {n: v for n, (_, _, v) in node_status(known).items()} == {
        AVAILABLE_PHONE: 0,
        LIMITED_PHONE: 1,
        BLOCKED_TEMPLATE: 2,
        DEMO_WABA: 3,
        OTHER_WABA: 3,
        OTHER_PHONE: 2,  # AVAILABLE itself, BLOCKED through its WABA
    }
    assert node_status(changed)[AVAILABLE_PHONE] == (DEMO.space, "PHONE_NUMBER", 2)
    assert series(known, "wahealth_per_node_metrics") == {frozenset(): 1}

    def counts(samples: Samples) -> dict[tuple[str, str, str], float]:
        return {
            (dict(k)["space"], dict(k)["kind"], dict(k)["status"]): v
            for k, v in series(samples, "wahealth_nodes").items()
        }

    assert counts(known) == {
        (DEMO.space, "PHONE_NUMBER", "AVAILABLE"): 1,
        (DEMO.space, "PHONE_NUMBER", "LIMITED"): 1,
        (DEMO.space, "MESSAGE_TEMPLATE", "BLOCKED"): 1,
        (DEMO.space, "WABA", "unknown"): 1,
        (DEMO.other_space, "WABA", "unknown"): 1,
        (DEMO.other_space, "PHONE_NUMBER", "BLOCKED"): 1,
    }
    assert counts(changed)[(DEMO.space, "PHONE_NUMBER", "BLOCKED")] == 1
    assert (DEMO.space, "PHONE_NUMBER", "AVAILABLE") not in counts(changed)


def _levels(samples: Samples, name: str) -> dict[str, tuple[str, float]]:
    return {dict(k)["node_id"]: (dict(k)["space"], v) for k, v in series(samples, name).items()}


async def test_numbers_quality_and_messaging_limit_follow_meta(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path)) as running:
        synced = await scrape(running)
        # Meta lowers a number's quality and limit: its webhook updates the kept fields.
        patched = await running.client.patch(
            f"/_emulator/nodes/{AVAILABLE_PHONE}",
            json={"quality_rating": "RED", "messaging_limit_tier": "TIER_250"},
        )
        assert patched.status_code == 200, patched.text
        assert running.components.emulator is not None
        await emulator_state(running.components.emulator).webhooks.drain()
        await running.components.monitor.webhooks.drain()
        lowered = await scrape(running)

    quality, limit = "wahealth_phone_number_quality", "wahealth_phone_number_messaging_limit"
    # As the demo scenario has them, stored by the start-up sync.
    assert _levels(synced, quality) == {
        AVAILABLE_PHONE: (DEMO.space, 0),
        LIMITED_PHONE: (DEMO.space, 0),
        OTHER_PHONE: (DEMO.other_space, 0),
    }
    assert _levels(synced, limit) == {
        AVAILABLE_PHONE: (DEMO.space, 1000),
        LIMITED_PHONE: (DEMO.space, 250),
        OTHER_PHONE: (DEMO.other_space, 1000),
    }
    assert _levels(lowered, quality)[AVAILABLE_PHONE] == (DEMO.space, 2)
    assert _levels(lowered, limit)[AVAILABLE_PHONE] == (DEMO.space, 250)
    assert _levels(lowered, quality)[OTHER_PHONE] == (DEMO.other_space, 0)


def test_messaging_limit_tiers_in_conversations_a_day() -> None:
    assert messaging_limit("TIER_50") == 50
    assert messaging_limit("TIER_250") == 250
    assert messaging_limit("TIER_1K") == 1_000
    assert messaging_limit("TIER_2K") == 2_000
    assert messaging_limit("TIER_100K") == 100_000
    assert messaging_limit("TIER_UNLIMITED") == float("inf")
    for unknown in (None, "TIER_NOT_SET", "TIER_", "TIER_1KK", "gold"):
        assert messaging_limit(unknown) is None


@pytest.mark.parametrize(
    ("per_node", "max_nodes", "served"),
    [(False, 10_000, False), (True, 0, True), ("auto", 6, True), ("auto", 5, False)],
)
async def test_the_per_node_switch(
    tmp_path: Path, per_node: bool | str, max_nodes: int, served: bool
) -> None:
    settings = split_settings(tmp_path)
    settings.metrics.per_node = per_node  # type: ignore[assignment]
    settings.metrics.per_node_max_nodes = max_nodes
    async with running_app(settings) as running:
        await refresh(running, AVAILABLE_PHONE)
        samples = await scrape(running)

    assert series(samples, "wahealth_per_node_metrics") == {frozenset(): 1 if served else 0}
    assert bool(node_status(samples)) is served  # the demo has 6 nodes
    assert bool(series(samples, "wahealth_phone_number_quality")) is served
    # Counts by space, kind and status are always there.
    assert sum(series(samples, "wahealth_nodes").values()) == 6


async def test_oldest_pending_alert_age(tmp_path: Path) -> None:
    settings = split_settings(tmp_path)
    settings.alerts.allow_private_targets = True
    settings.alerts.flap_window_seconds = 0
    settings.alerts.subscriptions = [
        SubscriptionConfig(space=DEMO.space, url="http://127.0.0.1:9/", secret="s")
    ]
    async with running_app(settings) as running:
        await refresh(running, AVAILABLE_PHONE)
        quiet = await scrape(running)
        await set_health(running, AVAILABLE_PHONE, BLOCKED)
        await refresh(running, AVAILABLE_PHONE)
        [alert] = await running.components.monitor.outbox.list_alerts(space_id=DEMO.space)
        before = time.time()
        pending = await scrape(running)
        after = time.time()
        await running.components.monitor.outbox.mark_dead(alert.id, "receiver gone")
        dead = await scrape(running)

    age = "wahealth_outbox_oldest_pending_age_seconds"
    assert series(quiet, age) == {frozenset(): 0}
    [waited] = series(pending, age).values()
    queued = alert.created_at.timestamp()
    assert before - queued <= waited <= after - queued
    assert series(dead, age) == {frozenset(): 0}


async def test_meta_calls_as_meta_counts_them_and_the_allowance(tmp_path: Path) -> None:
    settings = split_settings(tmp_path)
    settings.monitor.meta_calls_per_minute = 1234
    async with running_app(settings) as running:
        client = running.client
        start = await scrape(running)
        assert (await client.delete("/_emulator/calls")).status_code == 200
        summary = await running.components.monitor.refresher.refresh_all(list(ALL_NODES))
        await running.components.health.drain()
        emulator = (await client.get("/_emulator/calls")).json()
        end = await scrape(running)

    def calls(samples: Samples) -> float:
        return samples[("wahealth_meta_calls_total", frozenset())]

    # One batch request of six sub-requests: Meta (and the emulator) counts six calls.
    assert emulator["batches"] == 1
    assert summary.calls == emulator["total"] == 6
    assert calls(end) - calls(start) == 6
    # Before it: the start-up sync, one /phone_numbers and one /message_templates per WABA.
    assert calls(start) == 4
    batch = frozenset({("method", "batch_health")})
    assert end[("wahealth_upstream_calls_total", batch)] == 1
    assert end[("wahealth_meta_calls_last_minute", frozenset())] == 10
    # The refresh paid its six calls from the Meta budget (the start-up sync does not pay).
    assert end[("wahealth_meta_budget_spent_calls", DEFAULT_APP)] == 6
    assert end[("wahealth_meta_budget_calls_per_minute", DEFAULT_APP)] == 1234


async def test_seconds_since_the_last_refresh_round(tmp_path: Path) -> None:
    async with running_app(split_settings(tmp_path)) as running:
        never = await scrape(running)
        before = time.time()
        await running.components.monitor.refresher.step()
        after = time.time()
        await running.components.health.drain()
        ran = await scrape(running)
        scraped = time.time()

    assert not series(never, "wahealth_refresh_last_round_timestamp_seconds")
    assert not series(never, "wahealth_refresh_seconds_since_last_round")
    [at] = series(ran, "wahealth_refresh_last_round_timestamp_seconds").values()
    assert before <= at <= after
    [since] = series(ran, "wahealth_refresh_seconds_since_last_round").values()
    assert 0 <= since <= scraped - at
    # The round fetched every due node.
    assert {n: v for n, (_, _, v) in node_status(ran).items()}[AVAILABLE_PHONE] == 0
