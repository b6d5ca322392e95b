"""The Graph client against the emulator in-process: answers, paging, batches, errors, retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from tests.upstream.conftest import BASE_URL, DEMO_TOKEN, SleepRecorder
from tests.upstream.seed_examples import BY_NODE

from wahealth.domain import HealthReport, NodeKind, ReportSource, Status, render_health_status
from wahealth.upstream.emulator import (
    RateLimitSpec,
    Scenario,
    create_emulator,
    emulator_state,
    synthetic_scenario,
)
from wahealth.upstream.emulator.synthetic import (
    synthetic_phone_number_id,
    synthetic_template_id,
    synthetic_waba_id,
)
from wahealth.upstream.errors import (
    GraphAuthError,
    GraphBadResponse,
    GraphError,
    GraphNotFound,
    GraphRateLimited,
    GraphTransientError,
)
from wahealth.upstream.graph import GraphClient


def client_for(
    app: Starlette, sleeps: SleepRecorder, *, access_token: str = DEMO_TOKEN, **options: Any
) -> GraphClient:
    return GraphClient(
        base_url=BASE_URL,
        access_token=access_token,
        transport=httpx.ASGITransport(app=app),
        sleep=sleeps,
        **options,
    )


@pytest.mark.parametrize("node_id", sorted(BY_NODE))
async def test_health_of_demo_nodes(graph: GraphClient, node_id: str) -> None:
    report = await graph.health(node_id)
    assert report.node_id == node_id
    assert report.source is ReportSource.UPSTREAM
    assert render_health_status(report) == BY_NODE[node_id]
    assert report.upstream_can_send_message == report.can_send_message.value


async def test_health_report_kinds_and_statuses(graph: GraphClient) -> None:
    phone = await graph.health("105154286024403")
    template = await graph.health("2632273056924580")
    waba = await graph.health("299399000000001")
    assert (phone.node_kind, phone.can_send_message) == (NodeKind.PHONE_NUMBER, Status.LIMITED)
    assert (template.node_kind, template.can_send_message) == (
        NodeKind.MESSAGE_TEMPLATE,
        Status.BLOCKED,
    )
    assert template.error_codes() == ("141002",)
    assert (waba.node_kind, waba.can_send_message) == (NodeKind.WABA, Status.BLOCKED)


async def test_phone_numbers_of_demo_waba(graph: GraphClient) -> None:
    numbers = await graph.phone_numbers("102290129340398")
    assert [(n.id, n.display_phone_number, n.phone_number) for n in numbers] == [
        ("106540352242922", "+86 138 0000 0001", "8613800000001"),
        ("105154286024403", "+86 138 0000 0002", "8613800000002"),
    ]
    assert numbers[0].verified_name == "wahealth Demo"
    assert numbers[0].quality_rating == "GREEN"


async def test_templates_exact_name_and_language(graph: GraphClient) -> None:
    (template,) = await graph.message_templates(
        "102290129340398", name="order_update", language="en"
    )
    assert (template.id, template.name, template.language, template.status, template.category) == (
        "2632273056924580",
        "order_update",
        "en",
        "PENDING",
        "UTILITY",
    )
    assert (
        await graph.message_templates("102290129340398", name="order_update", language="fr") == []
    )
    assert await graph.message_templates("102290129340398", name="order") == []


async def test_all_pages_are_fetched_with_small_pages(sleeps: SleepRecorder) -> None:
    app = create_emulator(synthetic_scenario(230, n_templates=41, wabas=2))
    async with client_for(app, sleeps, page_size=7) as client:
        numbers = await client.phone_numbers(synthetic_waba_id(0))
        templates = await client.message_templates(synthetic_waba_id(1))
    assert [n.id for n in numbers] == [synthetic_phone_number_id(j) for j in range(0, 230, 2)]
    assert numbers[3].phone_number == "15550000006"
    assert [t.id for t in templates] == [synthetic_template_id(k) for k in range(1, 41, 2)]
    calls = emulator_state(app).calls.snapshot()["by_path"]
    assert calls[f"/{synthetic_waba_id(0)}/phone_numbers"] == 17  # ceil(115 / 7)
    assert calls[f"/{synthetic_waba_id(1)}/message_templates"] == 3  # ceil(20 / 7)


async def test_batch_health_splits_into_batches_of_50(sleeps: SleepRecorder) -> None:
    app = create_emulator(synthetic_scenario(120, limited_every=40))
    ids = [synthetic_phone_number_id(j) for j in range(120)] + ["404404"]
    async with client_for(app, sleeps) as client:
        results = await client.batch_health([*ids, ids[0]])
    assert list(results) == ids
    assert emulator_state(app).calls.snapshot()["batches"] == 3
    assert emulator_state(app).calls.total == 121
    missing = results["404404"]
    assert isinstance(missing, GraphNotFound)
    assert missing.subcode == 33
    reports = [r for r in results.values() if isinstance(r, HealthReport)]
    assert len(reports) == 120
    limited = sorted(r.node_id for r in reports if r.can_send_message is Status.LIMITED)
    assert limited == [synthetic_phone_number_id(j) for j in (39, 79, 119)]


async def test_batch_health_maps_impossible_ids_without_sending_them(
    emulator: Starlette, graph: GraphClient
) -> None:
    results = await graph.batch_health(["a/b", "106540352242922"])
    assert list(results) == ["a/b", "106540352242922"]
    assert isinstance(results["a/b"], GraphNotFound)
    assert isinstance(results["106540352242922"], HealthReport)
    assert emulator_state(emulator).calls.snapshot()["by_node"] == {"106540352242922": 1}


async def test_batch_health_of_demo_nodes_matches_single_calls(graph: GraphClient) -> None:
    results = await graph.batch_health(sorted(BY_NODE))
    for node_id, report in results.items():
        assert isinstance(report, HealthReport)
        assert render_health_status(report) == BY_NODE[node_id]


async def test_batch_health_whole_batch_failure_maps_to_every_node(
    emulator: Starlette, graph: GraphClient, http: httpx.AsyncClient
) -> None:
    await http.post("/_emulator/faults", json={"status": 400, "code": 368})
    results = await graph.batch_health(["106540352242922", "105154286024403"])
    errors = set(map(id, results.values()))
    assert len(errors) == 1
    error = results["106540352242922"]
    assert isinstance(error, GraphError)
    assert error.code == 368


async def test_batch_health_stops_after_an_app_level_throttle(
    scenario: Scenario, sleeps: SleepRecorder
) -> None:
    big = synthetic_scenario(120, rate_limit=RateLimitSpec(app_calls_per_window=60))
    app = create_emulator(big)
    ids = [synthetic_phone_number_id(j) for j in range(120)]
    async with client_for(app, sleeps) as client:
        results = await client.batch_health(ids)
    throttled = [r for r in results.values() if isinstance(r, GraphRateLimited)]
    assert len(throttled) == 60
    assert {r.code for r in throttled} == {4}
    assert emulator_state(app).calls.snapshot()["batches"] == 2  # the third was not sent


async def test_batch_health_raises_auth_errors(emulator: Starlette, sleeps: SleepRecorder) -> None:
    async with client_for(emulator, sleeps, access_token="wrong") as client:
        with pytest.raises(GraphAuthError):
            await client.batch_health(["106540352242922"])


async def test_bad_token_is_auth_error_without_retry(
    emulator: Starlette, sleeps: SleepRecorder
) -> None:
    async with client_for(emulator, sleeps, access_token="wrong") as client:
        with pytest.raises(GraphAuthError) as caught:
            await client.health("106540352242922")
    assert (caught.value.code, caught.value.http_status) == (190, 401)
    assert caught.value.fbtrace_id
    assert emulator_state(emulator).calls.total == 1
    assert sleeps.delays == []


async def test_unknown_node_is_not_found_without_retry(
    emulator: Starlette, graph: GraphClient
) -> None:
    with pytest.raises(GraphNotFound) as caught:
        await graph.health("12345")
    assert caught.value.code == 100
    assert "Object with ID '12345' does not exist" in caught.value.message
    assert emulator_state(emulator).calls.total == 1


@pytest.mark.parametrize("node_id", ["", "../me", "a/b", "1?x=2", ".."])
async def test_ids_that_would_change_the_path_are_refused(graph: GraphClient, node_id: str) -> None:
    with pytest.raises(GraphNotFound):
        await graph.health(node_id)


async def test_two_500s_then_success_after_three_attempts(
    emulator: Starlette, graph: GraphClient, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    await http.post("/_emulator/faults", json={"status": 500, "count": 2})
    with structlog.testing.capture_logs() as logs:
        report = await graph.health("106540352242922")
    assert render_health_status(report) == BY_NODE["106540352242922"]
    calls = (await http.get("/_emulator/calls")).json()
    assert calls["by_node"] == {"106540352242922": 3}
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.2
    assert 0 <= sleeps.delays[1] <= 0.4
    retries = [entry for entry in logs if entry["event"] == "graph call failed, retrying"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert all(DEMO_TOKEN not in str(entry) for entry in logs)


async def test_transient_failures_give_up_after_max_attempts(
    emulator: Starlette, graph: GraphClient, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    await http.post("/_emulator/faults", json={"status": 503, "count": 5})
    with pytest.raises(GraphTransientError) as caught:
        await graph.health("106540352242922")
    assert (caught.value.code, caught.value.http_status) == (2, 503)
    assert emulator_state(emulator).calls.total == 3
    assert len(sleeps.delays) == 2


async def test_backoff_is_capped_by_backoff_max(
    emulator: Starlette, http: httpx.AsyncClient
) -> None:
    sleeps = SleepRecorder()
    await http.post("/_emulator/faults", json={"status": 500, "count": 9})
    client = client_for(emulator, sleeps, max_attempts=8, backoff_base=1.0, backoff_max=2.0)
    async with client:
        with pytest.raises(GraphTransientError):
            await client.health("106540352242922")
    assert len(sleeps.delays) == 7
    assert all(0 <= d <= 2.0 for d in sleeps.delays)


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_other_4xx_are_never_retried(
    emulator: Starlette,
    graph: GraphClient,
    http: httpx.AsyncClient,
    sleeps: SleepRecorder,
    status: int,
) -> None:
    await http.post("/_emulator/faults", json={"status": status, "code": 131031, "count": 3})
    with pytest.raises(GraphError) as caught:
        await graph.health("106540352242922")
    assert type(caught.value) is GraphError
    assert caught.value.code == 131031
    assert emulator_state(emulator).calls.total == 1
    assert sleeps.delays == []


async def test_rate_limit_with_short_retry_after_is_retried_after_that_wait(
    emulator: Starlette, graph: GraphClient, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    await http.post("/_emulator/faults", json={"status": 429, "retry_after": 2})
    report = await graph.health("106540352242922")
    assert report.can_send_message is Status.AVAILABLE
    assert sleeps.delays == [2.0]


async def test_rate_limit_80007_with_long_wait_is_raised_at_once(
    scenario: Scenario, sleeps: SleepRecorder
) -> None:
    spec = RateLimitSpec(calls_per_window=1, window_seconds=3600)
    app = create_emulator(scenario.model_copy(update={"rate_limit": spec}))
    async with client_for(app, sleeps) as client:
        await client.health("106540352242922")
        with pytest.raises(GraphRateLimited) as caught:
            await client.health("105154286024403")
        other_waba = await client.health("299399000000001")
    assert caught.value.code == 80007
    assert caught.value.retry_after == 3600.0  # 60 minutes, from X-Business-Use-Case-Usage
    assert sleeps.delays == []
    assert emulator_state(app).calls.total == 3
    assert other_waba.can_send_message is Status.BLOCKED


async def test_app_rate_limit_code_4_without_estimate_backs_off(
    emulator: Starlette, graph: GraphClient, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    await http.post(
        "/_emulator/faults",
        json={"status": 400, "code": 4, "estimated_time_to_regain_access": 0, "count": 3},
    )
    with pytest.raises(GraphRateLimited) as caught:
        await graph.health("106540352242922")
    assert caught.value.code == 4
    assert caught.value.retry_after is None
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 200, "body": "<html>hello</html>"},
        {"status": 200, "body": '{"health_status": {"entities": "nope"}, "id": "1"}'},
        {"status": 200, "body": "[1, 2]"},
    ],
)
async def test_malformed_answers_are_bad_response(
    graph: GraphClient, http: httpx.AsyncClient, fault: dict[str, object]
) -> None:
    await http.post("/_emulator/faults", json=fault)
    with pytest.raises(GraphBadResponse):
        await graph.health("106540352242922")


async def test_non_json_502_is_transient(
    emulator: Starlette, graph: GraphClient, http: httpx.AsyncClient
) -> None:
    await http.post("/_emulator/faults", json={"status": 502, "body": "bad gateway", "count": 3})
    with pytest.raises(GraphTransientError) as caught:
        await graph.health("106540352242922")
    assert caught.value.http_status == 502


async def test_network_errors_are_transient_and_retried(sleeps: SleepRecorder) -> None:
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    client = GraphClient(
        access_token=DEMO_TOKEN, transport=httpx.MockTransport(refuse), sleep=sleeps
    )
    async with client:
        with pytest.raises(GraphTransientError, match="ConnectError"):
            await client.health("106540352242922")
    assert attempts == 3


async def test_requests_carry_the_token_only_in_the_header() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=BY_NODE["106540352242922"])

    client = GraphClient(
        base_url="https://graph.example/",
        api_version="v23.0",
        access_token="s3cret",
        transport=httpx.MockTransport(record),
    )
    async with client:
        await client.health("106540352242922")
    (request,) = seen
    assert str(request.url) == "https://graph.example/v23.0/106540352242922?fields=health_status"
    assert request.headers["authorization"] == "Bearer s3cret"


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        GraphClient(access_token="t", max_attempts=0)
