"""Graph batch requests: `POST /` with `batch=[{"method", "relative_url"}, ...]`.

Each sub-request is a Graph call of its own (counted, authorised and throttled
on its own); the answer is a JSON array in request order whose `body` items are
JSON-encoded strings, as Meta sends them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from wahealth.http_body import NotJson, loads_bounded
from wahealth.upstream.emulator import envelopes
from wahealth.upstream.emulator.envelopes import JSON_CONTENT_TYPE, GraphAnswer
from wahealth.upstream.emulator.graph_api import GraphCall, answer_call
from wahealth.upstream.emulator.state import EmulatorState

MAX_BATCH = 50


def _parse_batch(raw: Any) -> list[tuple[str, str]] | GraphAnswer:
    if isinstance(raw, str):
        try:
            raw = loads_bounded(raw)
        except NotJson:
            return envelopes.batch_error("The parameter batch must be a JSON array")
    if raw is None:
        return envelopes.batch_error("The parameter batch is required")
    if not isinstance(raw, list):
        return envelopes.batch_error("The parameter batch must be a JSON array")
    if len(raw) > MAX_BATCH:
        return envelopes.batch_error(
            f"Too many requests in batch message. Maximum batch size is {MAX_BATCH}"
        )
    requests = []
    for item in raw:
        if not isinstance(item, dict):
            return envelopes.batch_error("Each batch request must be a JSON object")
        method, relative_url = item.get("method"), item.get("relative_url")
        if not isinstance(method, str) or not isinstance(relative_url, str):
            return envelopes.batch_error("Each batch request needs a method and a relative_url")
        requests.append((method, relative_url))
    return requests


def _sub_result(answer: GraphAnswer, include_headers: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"code": answer.status}
    if include_headers:
        headers = {"Content-Type": JSON_CONTENT_TYPE, **answer.headers}
        result["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
    result["body"] = answer.body if isinstance(answer.body, str) else _json_text(answer.body)
    return result


def _json_text(value: Any) -> str:
    """Compact JSON, as `GraphAnswer.body_bytes` writes it, by orjson where it can (a fleet
    refresh asks for tens of thousands of sub-answers a minute)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits in a scenario
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def answer_batch(
    state: EmulatorState,
    raw_batch: Any,
    *,
    token: str | None,
    include_headers: bool,
    base_url: str,
) -> GraphAnswer:
    """Answer a whole batch; a batch refused as a whole counts as one call on `/`."""
    if token is not None and token not in state.tokens:
        state.calls.record("/", None)
        return envelopes.invalid_token()
    requests = _parse_batch(raw_batch)
    if isinstance(requests, GraphAnswer):
        state.calls.record("/", None)
        return requests
    state.calls.batches += 1
    results = []
    for method, relative_url in requests:
        parts = urlsplit(relative_url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        own_token = params.pop("access_token", None)
        call = GraphCall(
            method=method,
            path="/" + parts.path.lstrip("/"),
            params=params,
            token=own_token or token,
            base_url=base_url,
        )
        results.append(_sub_result(answer_call(state, call), include_headers))
    return GraphAnswer(200, _json_text(results))
