"""Graph batches: `POST /v{N}.{M}/` with `batch=[{"method": "GET", "relative_url": …}, …]`.

Up to 50 reads, answered as Meta answers a batch: a JSON array in request order of
`{"code", "headers", "body"}` whose body is the item's JSON as a string. Each item is a
read of its own (a node, an edge or `?ids=`), with its own errors; the batch is admitted
once, for every node its items name (`bulk_cost`). An item may carry its own
`access_token`, which then decides what it may see.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from wahealth.core.errors import CoreError, RequestTooLarge
from wahealth.core.graph_fields import BadBatch
from wahealth.core.graph_read import GraphReads
from wahealth.core.ports import Principal
from wahealth.dialects.graph.errors import JSON, GraphFailure, render, unsupported
from wahealth.dialects.graph.read import (
    VERSION,
    GraphRequest,
    answer,
    bearer,
    check_shape,
    nodes_named,
    ok,
    query_params,
    split_path,
)
from wahealth.http_body import NotJson, loads_bounded
from wahealth.httputil import BodyTooLarge, read_body

MAX_BATCH = 50
MAX_BATCH_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class BatchItem:
    method: str
    request: GraphRequest | None  # None: a relative_url no read has
    token: str | None


def parse_batch(raw: Any, version: str) -> list[BatchItem]:
    """The batch's items; `BadBatch` when it is missing, not an array, too long or malformed."""
    if raw is None:
        raise BadBatch("The parameter batch is required")
    if isinstance(raw, str):
        try:
            raw = loads_bounded(raw)
        except NotJson:
            raise BadBatch("The parameter batch must be a JSON array") from None
    if not isinstance(raw, list):
        raise BadBatch("The parameter batch must be a JSON array")
    if not raw:
        raise BadBatch("The parameter batch must not be empty")
    if len(raw) > MAX_BATCH:
        raise BadBatch(f"Too many requests in batch message. Maximum batch size is {MAX_BATCH}")
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise BadBatch("Each batch request must be a JSON object")
        method, relative_url = entry.get("method"), entry.get("relative_url")
        if not isinstance(method, str) or not isinstance(relative_url, str):
            raise BadBatch("Each batch request needs a method and a relative_url")
        items.append(_item(method.upper(), relative_url, version))
    return items


def _item(method: str, relative_url: str, version: str) -> BatchItem:
    parts = urlsplit(relative_url.strip())
    params = query_params(parts.query)
    token = params.pop("access_token", None)
    segments = split_path(parts.path)
    if segments is not None and segments and VERSION.fullmatch(segments[0]):
        version, segments = segments[0], segments[1:]
    request = None if segments is None else GraphRequest(version, segments, params)
    return BatchItem(method, request, token)


async def _form(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_BATCH_BODY_BYTES)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            decoded = loads_bounded(body or b"{}")
        except NotJson:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    text = body.decode("utf-8", errors="replace")
    form: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        form.setdefault(name, value)
    return form


class BatchEndpoint:
    """Answers `POST /v{N}.{M}/` batches."""

    def __init__(self, reads: GraphReads) -> None:
        self._reads = reads

    async def handle(self, request: Request, version: str, params: dict[str, str]) -> Response:
        try:
            form = await _form(request)
        except BodyTooLarge as exc:
            return render(RequestTooLarge(str(exc))).response()
        token = (
            bearer(request.headers.get("authorization", ""))
            or params.get("access_token")
            or _text(form.get("access_token"))
        )
        include_headers = str(form.get("include_headers", "true")).lower() != "false"
        base_url = str(request.base_url).rstrip("/")
        try:
            principal = await self._reads.principal(token)
            try:
                items = parse_batch(form.get("batch"), version)
            except BadBatch:
                await self._reads.admit(principal)  # a refused batch still counts once
                raise
            named = sum(nodes_named(i.request) if i.request else 1 for i in items)
            await self._reads.admit(principal, named)
            # Side by side, as Meta runs independent items; each answers its own errors.
            results = await asyncio.gather(
                *(self._run(item, principal, token, base_url, include_headers) for item in items)
            )
        except CoreError as exc:
            return render(exc).response()
        return ok(list(results))

    async def _run(
        self,
        item: BatchItem,
        principal: Principal,
        token: str | None,
        base_url: str,
        include_headers: bool,
    ) -> dict[str, Any]:
        parsed = item.request
        if item.method not in ("GET", "HEAD"):
            node_id = parsed.node_id if parsed is not None else ""
            return _result(unsupported(node_id, item.method), include_headers)
        if parsed is None:
            return _result(unsupported(""), include_headers)
        problem = check_shape(parsed)
        if problem is not None:
            return _result(problem, include_headers)
        try:
            if item.token is not None and item.token != token:
                principal = await self._reads.principal(item.token)
            link_params = {"access_token": item.token} if item.token else {}
            body = await answer(
                self._reads, principal, parsed, base_url=base_url, link_params=link_params
            )
        except CoreError as exc:
            return _result(render(exc, parsed.node_id), include_headers)
        return _entry(200, body, {}, include_headers)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _result(failure: GraphFailure, include_headers: bool) -> dict[str, Any]:
    return _entry(failure.status, failure.body, failure.headers, include_headers)


def _entry(
    status: int, body: Any, headers: dict[str, str], include_headers: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": status}
    if include_headers:
        all_headers = {"Content-Type": JSON, **headers}
        entry["headers"] = [{"name": k, "value": v} for k, v in all_headers.items()]
    entry["body"] = orjson.dumps(body).decode()
    return entry
