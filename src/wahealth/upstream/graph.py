"""The Graph API client: health, catalog edges and batches.

One `GraphClient` per upstream; its calls go through `GraphHttp` (one httpx client with
a transport seam and bounded retries, see `graph_http`), so the same client talks to
Meta, to the emulator over a socket, or to the emulator in-process
(`httpx.ASGITransport`). The token travels only in the `Authorization` header and is
never logged; `with_credentials` gives a view of the client calling with another
connection's token (and `appsecret_proof`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote_plus

import httpx

from wahealth.core.ports import UpstreamRejected
from wahealth.domain import HealthReport, NodeKind
from wahealth.upstream.errors import (
    WABA_RATE_LIMIT_CODES,
    GraphAuthError,
    GraphBadResponse,
    GraphError,
    GraphNotFound,
    GraphRateLimited,
    GraphTransientError,
)
from wahealth.upstream.graph_answers import batch_item, batch_json, health_report
from wahealth.upstream.graph_credentials import GraphCredentials
from wahealth.upstream.graph_http import MAX_BODY_BYTES, GraphHttp, RetryLogger, Sleep
from wahealth.upstream.records import (
    PhoneNumberRecord,
    TemplateRecord,
    kept_fields,
    phone_number_from_graph,
    template_from_graph,
)

__all__ = ["MAX_BATCH", "MAX_BODY_BYTES", "GraphClient", "RetryLogger"]

MAX_BATCH = 50
_NODE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


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
        app_secret: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        sleep: Sleep = asyncio.sleep,
        page_size: int = 100,
        logger: RetryLogger | None = None,
        on_call: Callable[[str, BaseException | None], None] | None = None,
        edge_health: bool = True,
    ) -> None:
        self.api_version = api_version
        self.page_size = page_size
        # Whether `phone_numbers` asks each number's health too (`catalog.sync_health`).
        self.edge_health = edge_health
        self._credentials = GraphCredentials(access_token, app_secret)
        self._http = GraphHttp(
            base_url=base_url,
            credentials=self._credentials,
            transport=transport,
            timeout=timeout,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
            logger=logger,
        )
        # Told about every public call (its method name, and its error if it failed): metrics.
        self._on_call = on_call

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
        await self._http.aclose()

    def with_credentials(self, credentials: GraphCredentials) -> GraphClient:
        """The same client (connections, retries, metrics) calling with other credentials.

        The view shares this client's HTTP pool: close this client, not the view.
        """
        view = copy.copy(self)
        view._credentials = credentials
        return view

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """`GET /<version>/<path>` as is (a node, an edge, `me`, `debug_token`)."""
        with self._observing("get"):
            return await self._call("GET", path, params=params)

    async def post(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """`POST /<version>/<path>` (e.g. `<waba>/subscribed_apps`)."""
        with self._observing("post"):
            return await self._call("POST", path, params=params, attempts=1)

    async def paged(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Every item of an edge, following Graph's cursors."""
        with self._observing("paged"):
            return await self._paged(f"/{self.api_version}/{path.lstrip('/')}", params or {})

    async def _call(self, method: str, path: str, **options: Any) -> Any:
        full = f"/{self.api_version}/{path.lstrip('/')}"
        return await self._http.call(method, full, credentials=self._credentials, **options)

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
            payload = await self._http.call(
                "GET", path, params=params, attempts=attempts, credentials=self._credentials
            )
            return health_report(node_id, payload)

    def _fields(self, kind: NodeKind | None) -> str:
        kept = kept_fields(kind, self.api_version) if kind is not None else ()
        return ",".join(("health_status", *kept))

    async def phone_numbers(self, waba_id: str) -> list[PhoneNumberRecord]:
        """Every phone number of a WABA (all pages), each with its health unless
        `edge_health` is off: the edge is asked `health_status` beside the kept fields, so
        one call per page brings a hundred numbers' health (each record's `health`, fetched
        when its page arrived)."""
        with self._observing("phone_numbers"):
            path = f"/{self.api_version}/{_check_node_id(waba_id)}/phone_numbers"
            kept = kept_fields(NodeKind.PHONE_NUMBER, self.api_version)
            health = ("health_status",) if self.edge_health else ()
            fields = ",".join(("id", *kept, *health))
            records: list[PhoneNumberRecord] = []
            async for page, fetched_at in self._pages(path, {"fields": fields}):
                records.extend(phone_number_from_graph(item, fetched_at) for item in page)
            return records

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
                return await self._http.call(
                    "GET",
                    f"/{self.api_version}/{checked}",
                    params=params,
                    credentials=self._credentials,
                )
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
        form = _batch_form(self.api_version, [(n, self._fields(kinds.get(n))) for n in chunk])
        path = f"/{self.api_version}/"
        answers = await self._http.call(
            "POST",
            path,
            form=form,
            decode=batch_json,
            meta_calls=len(chunk),
            credentials=self._credentials,
        )
        if not isinstance(answers, list) or len(answers) != len(chunk):
            raise GraphBadResponse("a batch answer must be a list with one item per request")
        fetched_at = datetime.now(UTC)  # every sub-response arrived with this answer
        return {
            node_id: batch_item(node_id, answer, fetched_at)
            for node_id, answer in zip(chunk, answers, strict=True)
        }

    async def _paged(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return [item async for page, _ in self._pages(path, params) for item in page]

    async def _pages(
        self, path: str, params: Mapping[str, str]
    ) -> AsyncIterator[tuple[list[dict[str, Any]], datetime]]:
        """Each page's items, and when the page arrived."""
        seen: set[str] = set()
        query = {**params, "limit": str(self.page_size)}
        while True:
            page = await self._http.call("GET", path, params=query, credentials=self._credentials)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
                raise GraphBadResponse(f"{path}: a page must have a data list of objects")
            yield data, datetime.now(UTC)
            paging = page.get("paging")
            if not isinstance(paging, dict) or not paging.get("next"):
                return
            cursors = paging.get("cursors")
            after = cursors.get("after") if isinstance(cursors, dict) else None
            if not isinstance(after, str) or not after or after in seen:
                raise GraphBadResponse(f"{path}: a next page without a new after cursor")
            seen.add(after)
            query = {**query, "after": after}


def _rejected(exc: GraphError) -> UpstreamRejected:
    assert exc.code is not None
    return UpstreamRejected(
        exc.message,
        http_status=exc.http_status or 400,
        code=exc.code,
        subcode=exc.subcode,
        error_type=exc.error_type,
    )


def _batch_form(api_version: str, requests: Sequence[tuple[str, str]]) -> bytes:
    """The urlencoded body of a batch of GETs: `batch=[{"method","relative_url"},...]`.

    Built from quoted pieces cached per field list: quoting the whole JSON per request
    costs more than the rest of a batch call. Node ids need no quoting (`_check_node_id`).
    """
    items = []
    for node_id, fields in requests:
        before, after = _batch_item_pieces(api_version, fields)
        items.append(before + node_id + after)
    return f"batch=%5B{'%2C'.join(items)}%5D&include_headers=true".encode("ascii")


@functools.lru_cache(maxsize=64)
def _batch_item_pieces(api_version: str, fields: str) -> tuple[str, str]:
    """One batch item, urlencoded, split where its node id goes."""
    marker = "\x00"
    item = {"method": "GET", "relative_url": f"{api_version}/{marker}?fields={fields}"}
    before, after = json.dumps(item, separators=(",", ":")).split(json.dumps(marker)[1:-1])
    return quote_plus(before), quote_plus(after)
