"""How Graph answers map onto the client's exception tree."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from wahealth.upstream.errors import (
    GraphAuthError,
    GraphBadResponse,
    GraphError,
    GraphNotFound,
    GraphRateLimited,
    GraphTransientError,
    graph_error_from,
    retry_after_from,
)


def envelope(code: int, **extra: object) -> dict[str, object]:
    return {
        "error": {"message": f"(#{code}) boom", "type": "OAuthException", "code": code, **extra}
    }


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 4, GraphRateLimited),
        (400, 17, GraphRateLimited),
        (400, 32, GraphRateLimited),
        (400, 613, GraphRateLimited),
        (400, 80007, GraphRateLimited),
        (400, 80008, GraphRateLimited),
        (400, 130429, GraphRateLimited),
        (429, 999, GraphRateLimited),
        (400, 190, GraphAuthError),
        (401, 999, GraphAuthError),
        (403, 10, GraphAuthError),
        (403, 200, GraphAuthError),
        (403, 299, GraphAuthError),
        (400, 100, GraphNotFound),
        (500, 1, GraphTransientError),
        (400, 2, GraphTransientError),
        (503, 999, GraphTransientError),
        (400, 131031, GraphError),
        (400, 300, GraphError),
    ],
)
def test_codes_map_to_exception_types(status: int, code: int, expected: type[GraphError]) -> None:
    error = graph_error_from(status, envelope(code, fbtrace_id="abc", error_subcode=7), {})
    assert type(error) is expected
    assert (error.code, error.subcode, error.http_status, error.fbtrace_id) == (
        code,
        7,
        status,
        "abc",
    )
    assert error.message == f"(#{code}) boom"
    assert "fbtrace_id abc" in str(error)


def test_is_transient_flag_makes_an_unknown_code_transient() -> None:
    error = graph_error_from(400, envelope(12345, is_transient=True), {})
    assert isinstance(error, GraphTransientError)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (502, GraphTransientError),
        (429, GraphRateLimited),
        (401, GraphAuthError),
        (404, GraphBadResponse),
    ],
)
def test_answers_without_an_error_envelope(status: int, expected: type[GraphError]) -> None:
    assert type(graph_error_from(status, None, {})) is expected


def test_retry_after_header_wins_over_usage() -> None:
    usage = json.dumps({"1": [{"estimated_time_to_regain_access": 5}]})
    headers = {"retry-after": "12", "x-business-use-case-usage": usage}
    assert retry_after_from(headers) == 12.0


def test_retry_after_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    seconds = retry_after_from({"retry-after": format_datetime(later, usegmt=True)})
    assert seconds is not None
    assert 100 < seconds <= 120


def test_usage_minutes_become_seconds_taking_the_longest() -> None:
    usage = {
        "1": [{"type": "x", "estimated_time_to_regain_access": 2}],
        "2": [{"type": "y", "estimated_time_to_regain_access": 7}, "junk"],
    }
    assert retry_after_from({"x-business-use-case-usage": json.dumps(usage)}) == 420.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-business-use-case-usage": "not json"},
        {"x-business-use-case-usage": json.dumps({"1": [{"estimated_time_to_regain_access": 0}]})},
        {"retry-after": "soon"},
    ],
)
def test_no_usable_estimate_is_none(headers: dict[str, str]) -> None:
    assert retry_after_from(headers) is None


def test_rate_limited_error_carries_retry_after() -> None:
    usage = json.dumps({"1": [{"estimated_time_to_regain_access": 1}]})
    error = graph_error_from(400, envelope(80007), {"x-business-use-case-usage": usage})
    assert isinstance(error, GraphRateLimited)
    assert error.retry_after == 60.0
