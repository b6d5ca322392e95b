"""The Graph read API: nodes, edges and multi-id reads for an authenticated, rate-limited caller.

What wahealth keeps is answered from the catalog (numbers, templates, WABAs with Meta's
field names) and the health core (`health_status`); any other field, and any page the
catalog cannot give, is read from Meta on the caller's behalf: GET only, only nodes and
edges of the caller's own WABAs, cached per node and field set for `ttl_seconds`,
coalesced, and paid from the Meta call budget. Meta's refusal (a field it does not have)
reaches the caller as Meta said it.

Every read is admitted first: one request of the account's limit for a node or an edge,
`bulk_cost` for a multi-id read or a batch.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from wahealth.core.coalesce import SingleFlight
from wahealth.core.directory import Directory
from wahealth.core.errors import (
    InvalidRequest,
    NodeNotFound,
    ServiceUnavailable,
    Throttled,
    UpstreamUnavailable,
)
from wahealth.core.graph_edges import (
    EDGES,
    FORWARDED_PARAMS,
    catalog_can_serve,
    catalog_page,
    is_our_cursor,
    link_builder,
    relinked,
)
from wahealth.core.graph_fields import (
    GRAPH_NODE_TYPES,
    HEALTH_STATUS,
    AliasesNotFound,
    Field,
    MetaRefused,
    NonexistingField,
    kept_value,
    parse_fields,
    without_links,
)
from wahealth.core.health import HealthService
from wahealth.core.lru import BoundedLru
from wahealth.core.ports import (
    BackendUnavailable,
    CatalogNode,
    GraphCatalog,
    GraphReadUpstream,
    MetaBudget,
    Principal,
    RateLimiter,
    UpstreamAuthFailure,
    UpstreamFailure,
    UpstreamNotFound,
    UpstreamRejected,
)
from wahealth.core.validate import is_node_id
from wahealth.domain import render_health_status
from wahealth.domain.catalog import localize
from wahealth.domain.model import NodeKind

log = structlog.get_logger(__name__)

MAX_IDS = 50
NODES_PER_REQUEST = 100  # a bulk call counts one request of the limit per this many nodes
READS_MAX_ENTRIES = 10_000
READS_MAX_BYTES = 32 * 1024 * 1024
BACKEND_RETRY_AFTER_SECONDS = 1.0


def bulk_cost(qps: int, nodes: int) -> int:
    """What a call naming `nodes` nodes costs: min(qps, ceil(nodes / 100)), at least 1."""
    return max(1, min(qps, math.ceil(nodes / NODES_PER_REQUEST)))


def parse_ids(raw: str) -> list[str]:
    """`ids=A,B,…`: each once, in order; at most `MAX_IDS`."""
    ids = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not ids:
        raise InvalidRequest("Cannot specify an empty identifier", parameter="ids")
    if len(ids) > MAX_IDS:
        raise InvalidRequest(
            f"Too many IDs. Maximum: {MAX_IDS}. Provided: {len(ids)}.", parameter="ids"
        )
    return ids


@dataclass(frozen=True, slots=True)
class EdgeRead:
    """`GET /<waba>/<edge>?…` as asked: the parameters and where links to other pages go.

    `link_params` are added to every link (the caller's `access_token` when it came in the
    query, as Meta's links carry it).
    """

    waba_id: str
    edge: str
    params: Mapping[str, str]
    link_base: str
    link_params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Remembered:
    expires_at: float
    answer: Any  # the decoded JSON, or the MetaRefused to raise again


class GraphReads:
    """Graph reads of nodes and edges the caller's account owns."""

    def __init__(
        self,
        *,
        directory: Directory,
        health: HealthService,
        catalog: GraphCatalog,
        upstream: GraphReadUpstream,
        limiter: RateLimiter,
        budget: MetaBudget,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._health = health
        self._catalog = catalog
        self._upstream = upstream
        self._limiter = limiter
        self._budget = budget
        self._ttl = ttl_seconds
        self._clock = clock
        self._reads: BoundedLru[Hashable, _Remembered] = BoundedLru(
            READS_MAX_ENTRIES, READS_MAX_BYTES
        )
        self._flight: SingleFlight[Hashable, Any] = SingleFlight()

    # --- who asks, and what it costs ------------------------------------------------------

    async def principal(self, token: str | None) -> Principal:
        """The account behind a Graph token (`Unauthenticated` when there is none)."""
        return await self._directory.graph_principal(token)

    async def admit(self, principal: Principal, nodes: int = 1) -> None:
        """Count the call against the account's limit; `Throttled` past it.

        A limiter that cannot be asked refuses the call (`ServiceUnavailable`).
        """
        cost = bulk_cost(principal.qps, nodes)
        try:
            decision = await self._limiter.acquire(principal.account, principal.qps, cost)
        except BackendUnavailable as exc:
            log.warning("rate limiter unavailable; refusing the request", error=str(exc))
            raise ServiceUnavailable(
                "the rate limiter is temporarily unavailable",
                retry_after=BACKEND_RETRY_AFTER_SECONDS,
            ) from exc
        if not decision.allowed:
            raise Throttled(decision.retry_after)

    # --- nodes ----------------------------------------------------------------------------

    async def node(self, principal: Principal, node_id: str, fields: str | None) -> dict[str, Any]:
        """`GET /<node>?fields=…` for a phone number, template or WABA the account owns."""
        return await self._read_node(await self._owned(principal, node_id), fields)

    async def many(self, principal: Principal, ids: Sequence[str], fields: str | None) -> Any:
        """`GET /?ids=…&fields=…`: each node's answer keyed by its id, in the order asked.

        As at Meta, one id the caller cannot see fails the whole read (code 803, naming them).
        """
        owned: list[CatalogNode] = []
        missing: list[str] = []
        for node_id in ids:
            try:
                owned.append(await self._owned(principal, node_id))
            except NodeNotFound:
                missing.append(node_id)
        if missing:
            raise AliasesNotFound(",".join(missing))
        # Side by side: a cold node's health or a read from Meta does not hold up the others.
        answers = await asyncio.gather(
            *(self._read_node(node, fields) for node in owned), return_exceptions=True
        )
        for found in answers:
            if isinstance(found, BaseException):
                raise found
        return {node.node_id: found for node, found in zip(owned, answers, strict=True)}

    async def _owned(self, principal: Principal, node_id: str) -> CatalogNode:
        if not is_node_id(node_id):
            raise NodeNotFound(f"{node_id[:40]!r} cannot be a node id")
        await self._directory.check_node(principal, node_id)
        node = await self._catalog.node(node_id)
        if node is None:
            raise NodeNotFound(f"node {node_id} left the catalog")
        return node

    async def _read_node(self, node: CatalogNode, raw_fields: str | None) -> dict[str, Any]:
        fields = parse_fields(raw_fields, GRAPH_NODE_TYPES[node.kind])
        if fields is None:
            # Meta's default fields for the node type: Meta says which.
            defaults = self._object(await self._read_through(node.node_id, {}), node.node_id)
            return {k: v for k, v in defaults.items() if k != "paging"}
        remote = [f for f in fields if not self._local(f, node)]
        fetched: dict[str, Any] = {}
        if remote:
            expression = ",".join(f.expression for f in remote)
            fetched = self._object(
                await self._read_through(node.node_id, {"fields": expression}), node.node_id
            )
        answer: dict[str, Any] = {}
        for f in fields:
            if f in remote:
                value = None if f.name == "paging" else fetched.get(f.name)
            elif f.name == HEALTH_STATUS:
                report = await self._health.get(node.node_id, waba_id=node.waba_id)
                # The catalog fills the texts Meta left out, as on the hot path.
                value = render_health_status(localize(report))[HEALTH_STATUS]
            else:
                value = kept_value(f.name, node.fields)
            if value is not None:
                answer[f.name] = value
        answer.setdefault("id", node.node_id)
        return answer

    @staticmethod
    def _local(f: Field, node: CatalogNode) -> bool:
        if not f.plain:
            return False
        return f.name == HEALTH_STATUS or kept_value(f.name, node.fields) is not None

    @staticmethod
    def _object(payload: Any, node_id: str) -> dict[str, Any]:
        if not isinstance(payload, dict):
            log.warning("Meta answered a node read with no object", node_id=node_id)
            raise UpstreamUnavailable("Meta's answer was not an object")
        return payload

    # --- edges ----------------------------------------------------------------------------

    async def edge(self, principal: Principal, read: EdgeRead) -> dict[str, Any]:
        """One page of a WABA's `phone_numbers` or `message_templates`."""
        node = await self._owned(principal, read.waba_id)
        node_type = GRAPH_NODE_TYPES[node.kind]
        if node.kind != NodeKind.WABA.value:
            raise NonexistingField(read.edge, node_type)
        if read.edge not in EDGES:
            raise NodeNotFound(f"the edge {read.edge[:40]!r} is not served", what="edge")
        params = {k: v for k, v in read.params.items() if k in FORWARDED_PARAMS}
        fields = parse_fields(params.get("fields"), GRAPH_NODE_TYPES[_ITEM_KINDS[read.edge]])
        link = link_builder(read.link_base, {**params, **read.link_params})
        items = await self._catalog.edge(read.waba_id, read.edge)
        if fields is not None and catalog_can_serve(read.edge, items, fields, params):
            return catalog_page(read.edge, items, fields, params, link)
        if is_our_cursor(params):
            # Our cursor names a catalog position that Meta's pages know nothing of.
            raise InvalidRequest("Invalid cursor: this page needs fields the catalog lacks")
        payload = self._object(
            await self._read_through(f"{read.waba_id}/{read.edge}", params), read.waba_id
        )
        return relinked(payload, link)

    # --- reading from Meta ----------------------------------------------------------------

    async def _read_through(self, path: str, params: Mapping[str, str]) -> Any:
        key = (path, tuple(sorted(params.items())))
        hit = self._reads.get(key)
        if hit is None or hit.expires_at <= self._clock():
            hit = await self._flight.run(key, lambda: self._fetch(key, path, params))
        if isinstance(hit.answer, MetaRefused):
            raise hit.answer
        return hit.answer

    async def _fetch(self, key: Hashable, path: str, params: Mapping[str, str]) -> _Remembered:
        try:
            grant = await self._budget.spend(1)
        except BackendUnavailable as exc:
            raise UpstreamUnavailable("the Meta call budget cannot be asked") from exc
        if grant.calls < 1:
            raise UpstreamUnavailable(
                "the Meta call budget is spent", retry_after=max(1.0, grant.retry_after)
            )
        answer: Any
        try:
            answer = without_links(await self._upstream.read(path, dict(params)))
        except UpstreamRejected as exc:
            answer = MetaRefused(
                exc.message,
                http_status=exc.http_status,
                code=exc.code,
                subcode=exc.subcode,
                error_type=exc.error_type,
            )
        except UpstreamNotFound as exc:
            raise NodeNotFound(f"Meta does not know {path}") from exc
        except UpstreamAuthFailure as exc:
            log.error("Meta refused our credential for a read-through", path=path, error=str(exc))
            raise UpstreamUnavailable("Meta refused the gateway's credential") from exc
        except UpstreamFailure as exc:
            raise UpstreamUnavailable(
                f"Meta did not answer: {exc}", retry_after=exc.retry_after or 1.0
            ) from exc
        remembered = _Remembered(self._clock() + self._ttl, answer)
        self._reads.put(key, remembered, len(repr(key)) + len(repr(answer)))
        return remembered


_ITEM_KINDS = {
    "phone_numbers": NodeKind.PHONE_NUMBER.value,
    "message_templates": NodeKind.MESSAGE_TEMPLATE.value,
}
