"""Many nodes of one space in one call: each node's health, or why it has none.

A bulk call costs `bulk_cost(qps, nodes)` requests of the account's limit, as the Graph
dialect's multi-id reads and batches do: one per 100 nodes (rounded up), but never more
than the account's whole limit, so even the largest call is admissible to an account
that has been idle for a second.
A call the limiter refuses costs nothing, like any refused request; a malformed one
costs one request, like any bad query.

Nodes are answered in the order given. A node that cannot be answered (not in the space,
unknown at Meta, Meta down with nothing cached) gets its own error and the others are
still answered; only a problem with the call itself (credential, limit, space, body) is
an error for the whole call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from wahealth.core.errors import AccessDenied, CoreError, NodeNotFound, UpstreamUnavailable
from wahealth.core.graph_read import bulk_cost
from wahealth.core.ports import Principal
from wahealth.core.queries import ByNodeId, ByPhoneNumber, ByTemplate, Credential, HealthQueries
from wahealth.domain import HealthReport

MAX_BULK_NODES = 500

BulkNode = ByNodeId | ByPhoneNumber | ByTemplate


@dataclass(frozen=True, slots=True)
class BulkQuery:
    """Up to `MAX_BULK_NODES` nodes of one space."""

    space_id: str
    nodes: tuple[BulkNode, ...]


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    """A node's report, and its age (seconds) when answered."""

    node: BulkNode
    node_id: str
    report: HealthReport
    age_seconds: float


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """Why one node has no answer: `NodeNotFound` or `UpstreamUnavailable`."""

    node: BulkNode
    error: CoreError


BulkResult = NodeAnswer | NodeFailure


class BulkHealth:
    """The bulk use case: authenticate, admit at the bulk cost, answer each node."""

    def __init__(self, queries: HealthQueries, *, clock: Callable[[], float] = time.time) -> None:
        self._queries = queries
        self._clock = clock

    async def check(
        self, credential: Credential, query: BulkQuery | Callable[[], BulkQuery]
    ) -> list[BulkResult]:
        """One result per node, in order; a `CoreError` when the call itself is refused."""
        queries = self._queries
        principal = await queries.authenticate(credential)
        try:
            parsed = query() if callable(query) else query
        except CoreError:
            await queries.admit(principal)  # a bad call counts one, as any bad query
            raise
        await queries.admit(principal, bulk_cost(principal.qps, len(parsed.nodes)))
        try:
            await queries.directory.check_space(principal, parsed.space_id)
        except AccessDenied:
            raise NodeNotFound(
                f"space {parsed.space_id!r} is not known to this account", what="space"
            ) from None
        return list(
            await asyncio.gather(*(self._one(principal, parsed.space_id, n) for n in parsed.nodes))
        )

    async def _one(self, principal: Principal, space_id: str, node: BulkNode) -> BulkResult:
        queries = self._queries
        try:
            node_id, waba_id = await queries.resolve_in_space(principal, space_id, node)
            report = await queries.health.get(node_id, waba_id=waba_id)
        except (NodeNotFound, UpstreamUnavailable) as exc:
            return NodeFailure(node, exc)
        age = self._clock() - report.fetched_at.timestamp()
        return NodeAnswer(node, node_id, report, max(0.0, age))
