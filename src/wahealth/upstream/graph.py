"""The Graph API client: health, catalog edges and batches, with bounded retries.

One `httpx.AsyncClient` per `GraphClient`; the network is a transport, so the
same client talks to Meta, to the emulator over a socket, or to the emulator
in-process (`httpx.ASGITransport`). The token travels only in the
`Authorization` header and is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

import httpx
import structlog

from wahealth import __version__
from wahealth.core.ports import UpstreamRejected
from wahealth.domain import HealthReport, MalformedHealthStatus, NodeKind, parse_health_status
from wahealth.http_body import NotJson, loads_bounded
from wahealth.upstream.errors import (
    WABA_RATE_LIMIT_CODES,
    GraphAuthError,
    GraphBadResponse,
    GraphError,
    GraphNotFound,
    GraphRateLimited,
    GraphTransientError,
    graph_error_from,
)
from wahealth.upstream.records import (
    PhoneNumberRecord,
    TemplateRecord,
    kept_fields,
    phone_number_from_graph,
    template_from_graph,
)

log = structlog.get_logger(__name__)

MAX_BATCH = 50
_NODE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
# A health answer is a few KiB and five levels deep; anything far beyond is not an answer,
# and would cost memory here and fail later when the report is rendered (orjson stops at 255).
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32

Sleep = Callable[[float], Awaitable[None]]


class RetryLogger(Protocol):
    """Where retry warnings go (a structlog logger by default)."""

    def warning(self, event: str, **fields: Any) -> Any: ...


def _check_node_id(node_id: str) -> str:
    # Ids become path segments: refuse anything that could change the path.
    if not _NODE_ID.match(node_id) or node_id in {".", ".."}:
        raise GraphNotFound(f"{node_id!r} is not a Graph node id", code=100)
    return node_id


class GraphClient:
    """Meta's Graph API (or the emulator) for health_status and the catalog edges."""

    def __init__(
        self,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        access_token: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        sleep: Sleep = asyncio.sleep,
        page_size: int = 100,
        logger: RetryLogger | None = None,
        on_call: Callable[[str, BaseException | None], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api_version = api_version
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.page_size = page_size
        self._sleep = sleep
        self._log: RetryLogger = logger if logger is not None else log
        # Told about every public call (its method name, and its error if it failed): metrics.
        self._on_call = on_call
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {access_token}",
                "User-Agent": f"wahealth/{__version__}",
            },
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @contextlib.contextmanager
    def _observing(self, method: str) -> Iterator[None]:
        """Tell `on_call` about one public call and how it ended."""
        try:
            yield
        except Exception as exc:
            if self._on_call is not None:
                self._on_call(method, exc)
            raise
        if self._on_call is not None:
            self._on_call(method, None)

    async def health(
        self, node_id: str, *, attempts: int | None = None, kind: NodeKind | None = None
    ) -> HealthReport:
        """`GET /<node>?fields=health_status` for a phone number, template or WABA.

        `attempts` caps the tries of this call (default: the client's `max_attempts`).
        With the node's `kind`, the same call also asks its kept fields (quality, limits,
        status), which the report carries in `extra`.
        """
        with self._observing("health"):
            path = f"/{self.api_version}/{_check_node_id(node_id)}"
            params = {"fields": self._fields(kind)}
            payload = await self._call("GET", path, params=params, attempts=attempts)
            return _report(node_id, payload)

    def _fields(self, kind: NodeKind | None) -> str:
        kept = kept_fields(kind, self.api_version) if kind is not None else ()
        return ",".join(("health_status", *kept))

    async def phone_numbers(self, waba_id: str) -> list[PhoneNumberRecord]:
        """Every phone number of a WABA (all pages)."""
        with self._observing("phone_numbers"):
            path = f"/{self.api_version}/{_check_node_id(waba_id)}/phone_numbers"
            fields = ",".join(("id", *kept_fields(NodeKind.PHONE_NUMBER, self.api_version)))
            items = await self._paged(path, {"fields": fields})
            return [phone_number_from_graph(item) for item in items]

    async def message_templates(
        self, waba_id: str, *, name: str | None = None, language: str | None = None
    ) -> list[TemplateRecord]:
        """Every template of a WABA (all pages), optionally only an exact name and/or language.

        Meta matches `name` by substring, so the exact match is made here.
        """
        with self._observing("message_templates"):
            return await self._message_templates(waba_id, name, language)

    async def _message_templates(
        self, waba_id: str, name: str | None, language: str | None
    ) -> list[TemplateRecord]:
        path = f"/{self.api_version}/{_check_node_id(waba_id)}/message_templates"
        kept = kept_fields(NodeKind.MESSAGE_TEMPLATE, self.api_version)
        params = {"fields": ",".join(("id", "name", "language", *kept))}
        if name is not None:
            params["name"] = name
        if language is not None:
            params["language"] = language
        records = [template_from_graph(item) for item in await self._paged(path, params)]
        return [
            r
            for r in records
            if (name is None or r.name == name) and (language is None or r.language == language)
        ]

    async def read(self, path: str, params: Mapping[str, str]) -> Any:
        """`GET /<version>/<path>` on a caller's behalf: a node (`<id>`) or an edge (`<id>/<edge>`).

        Only GET, and only paths of Graph ids and edge names. Meta's refusal of the request
        itself (a field the node does not have, a bad parameter) is `UpstreamRejected` with
        Meta's own message and codes; a node Meta does not know is `GraphNotFound`.
        """
        with self._observing("read"):
            segments = path.split("/")
            if not 1 <= len(segments) <= 2 or not all(segments):
                raise GraphNotFound(f"{path!r} is not a Graph node or edge", code=100)
            checked = "/".join(_check_node_id(segment) for segment in segments)
            try:
                return await self._call("GET", f"/{self.api_version}/{checked}", params=params)
            except GraphNotFound as exc:
                if exc.subcode == 33 or exc.code is None:
                    raise
                raise _rejected(exc) from exc
            except (GraphRateLimited, GraphAuthError, GraphTransientError, GraphBadResponse):
                raise
            except GraphError as exc:
                if exc.code is None or exc.http_status is None or exc.http_status >= 500:
                    raise
                raise _rejected(exc) from exc

    async def batch_health(
        self, node_ids: Sequence[str], *, kinds: Mapping[str, NodeKind] | None = None
    ) -> dict[str, HealthReport | GraphError]:
        """health_status for many nodes, 50 per Graph batch request.

        A node whose kind is in `kinds` is asked its kept fields too, in the same
        sub-request (see `health`).

        Each node maps to its report or to the error for its sub-request. A whole
        batch that fails maps every node in it to that error. After an app-level
        throttle (not a WABA's 80007/80008) no further batches are sent: their
        nodes get the same error. An auth error is raised, since nothing can succeed.
        Ids that cannot be Graph ids map to `GraphNotFound` without being sent.
        """
        with self._observing("batch_health"):
            return await self._batch_health(node_ids, kinds or {})

    async def _batch_health(
        self, node_ids: Sequence[str], kinds: Mapping[str, NodeKind]
    ) -> dict[str, HealthReport | GraphError]:
        unique = list(dict.fromkeys(node_ids))
        results: dict[str, HealthReport | GraphError] = {}
        sendable = []
        for node_id in unique:
            try:
                sendable.append(_check_node_id(node_id))
            except GraphNotFound as exc:
                results[node_id] = exc
        halted: GraphRateLimited | None = None
        for start in range(0, len(sendable), MAX_BATCH):
            chunk = sendable[start : start + MAX_BATCH]
            if halted is not None:
                results.update(dict.fromkeys(chunk, halted))
                continue
            try:
                chunk_results = await self._batch_chunk(chunk, kinds)
            except GraphAuthError:
                raise
            except GraphError as exc:
                chunk_results = dict.fromkeys(chunk, exc)
            results.update(chunk_results)
            halted = next(
                (
                    r
                    for r in chunk_results.values()
                    if isinstance(r, GraphRateLimited) and r.code not in WABA_RATE_LIMIT_CODES
                ),
                None,
            )
        return {node_id: results[node_id] for node_id in unique}

    async def _batch_chunk(
        self, chunk: list[str], kinds: Mapping[str, NodeKind]
    ) -> dict[str, HealthReport | GraphError]:
        requests = [
            {
                "method": "GET",
                "relative_url": f"{self.api_version}/{n}?fields={self._fields(kinds.get(n))}",
            }
            for n in chunk
        ]
        data = {"batch": json.dumps(requests), "include_headers": "true"}
        answers = await self._call("POST", f"/{self.api_version}/", data=data)
        if not isinstance(answers, list) or len(answers) != len(chunk):
            raise GraphBadResponse("a batch answer must be a list with one item per request")
        return {node_id: _batch_item(node_id, a) for node_id, a in zip(chunk, answers, strict=True)}

    async def _paged(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        query = {**params, "limit": str(self.page_size)}
        while True:
            page = await self._call("GET", path, params=query)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
                raise GraphBadResponse(f"{path}: a page must have a data list of objects")
            items.extend(data)
            paging = page.get("paging")
            if not isinstance(paging, dict) or not paging.get("next"):
                return items
            cursors = paging.get("cursors")
            after = cursors.get("after") if isinstance(cursors, dict) else None
            if not isinstance(after, str) or not after or after in seen:
                raise GraphBadResponse(f"{path}: a next page without a new after cursor")
            seen.add(after)
            query = {**query, "after": after}

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        attempts: int | None = None,
    ) -> Any:
        """One Graph call, retried on transient failures and short rate limits."""
        max_attempts = self.max_attempts if attempts is None else max(1, attempts)
        attempt = 1
        while True:
            try:
                return await self._attempt(method, path, params, data)
            except (GraphTransientError, GraphRateLimited) as exc:
                delay = self._retry_delay(exc, attempt, max_attempts)
                if delay is None:
                    raise
                self._log.warning(
                    "graph call failed, retrying",
                    method=method,
                    path=path,
                    attempt=attempt,
                    delay=round(delay, 3),
                    error=type(exc).__name__,
                    code=exc.code,
                    http_status=exc.http_status,
                )
            attempt += 1
            await self._sleep(delay)

    def _retry_delay(self, exc: GraphError, attempt: int, max_attempts: int) -> float | None:
        """Seconds before the next attempt, or None to give up now."""
        if attempt >= max_attempts:
            return None
        if isinstance(exc, GraphRateLimited) and exc.retry_after is not None:
            # A long wait is the caller's call (serve stale, reschedule), not ours.
            return exc.retry_after if exc.retry_after <= self.backoff_max else None
        cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0.0, cap)

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
    ) -> Any:
        try:
            request = self._client.build_request(method, path, params=params, data=data)
            response = await self._client.send(request, stream=True)
            try:
                body = await _read_capped(response, MAX_BODY_BYTES)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise GraphTransientError(f"Graph timed out: {type(exc).__name__}") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise GraphTransientError(f"cannot reach Graph: {type(exc).__name__}: {exc}") from exc
        except httpx.DecodingError as exc:
            raise GraphBadResponse(f"Graph sent a body that cannot be decoded: {exc}") from exc
        except httpx.HTTPError as exc:
            raise GraphError(f"Graph request failed: {type(exc).__name__}: {exc}") from exc
        payload = None
        if body is not None:
            try:
                payload = decode_json(body)
            except GraphBadResponse:
                if response.is_success:
                    raise
                # Otherwise the status alone says what failed.
        if response.is_success:
            if body is None:
                raise GraphBadResponse(f"Graph answered with more than {MAX_BODY_BYTES} bytes")
            if not (isinstance(payload, dict) and "error" in payload):
                return payload
        raise graph_error_from(response.status_code, payload, response.headers)


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be longer than `limit` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(raw: bytes | str) -> Any:
    """Graph's JSON, or GraphBadResponse if it is not JSON or is nested deeper than an answer."""
    try:
        return loads_bounded(raw, MAX_JSON_DEPTH)
    except NotJson as exc:
        raise GraphBadResponse(f"Graph's answer is unusable: {exc}") from None


def _rejected(exc: GraphError) -> UpstreamRejected:
    assert exc.code is not None
    return UpstreamRejected(
        exc.message,
        http_status=exc.http_status or 400,
        code=exc.code,
        subcode=exc.subcode,
        error_type=exc.error_type,
    )


def _report(node_id: str, payload: Any) -> HealthReport:
    if not isinstance(payload, dict):
        raise GraphBadResponse(f"health of {node_id}: not a JSON object")
    try:
        return parse_health_status(payload, fetched_at=datetime.now(UTC), node_id=node_id)
    except MalformedHealthStatus as exc:
        raise GraphBadResponse(f"health of {node_id}: {exc}") from exc


def _sub_headers(raw: Any) -> httpx.Headers:
    """A batch item's `headers` list; entries that cannot be HTTP headers are dropped."""
    if not isinstance(raw, list):
        return httpx.Headers()
    pairs = []
    for header in raw:
        if not isinstance(header, dict):
            continue
        name, value = header.get("name"), header.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(name, str) and isinstance(value, str) and _header_safe(name, value):
            pairs.append((name, value))
    return httpx.Headers(pairs)


def _header_safe(name: str, value: str) -> bool:
    return name.isascii() and value.isascii() and name.isprintable() and value.isprintable()


def _batch_item(node_id: str, item: Any) -> HealthReport | GraphError:
    if item is None:
        return GraphTransientError(f"batch sub-request for {node_id} got no answer")
    status = item.get("code") if isinstance(item, dict) else None
    if not isinstance(status, int) or isinstance(status, bool):
        return GraphBadResponse(f"batch answer for {node_id} is not a sub-response")
    headers = _sub_headers(item.get("headers"))
    body = item.get("body")
    try:
        payload = decode_json(body) if isinstance(body, str) else None
    except GraphBadResponse as exc:
        if 200 <= status < 300:
            return GraphBadResponse(f"batch answer for {node_id}: {exc.message}")
        payload = None
    if 200 <= status < 300:
        if payload is None:
            return GraphBadResponse(f"batch answer for {node_id} has no JSON body")
        if not (isinstance(payload, dict) and "error" in payload):
            try:
                return _report(node_id, payload)
            except GraphBadResponse as exc:
                return exc
    return graph_error_from(status, payload, headers)
