"""Graph calls on each space's Meta connection: the right token (and appsecret_proof) per node.

`ConnectedGraph` has the Graph client's calls (health, batches, catalog edges, reads) and
sends each with the credentials of the connection its node's space names, or with the
default token (`upstream.access_token`) when the space names none. The connections come
from a `ConnectionBook` (reloaded from storage every few seconds); which node belongs to
which connection from `ConnectionRoutes` (storage).

Token trouble (Graph 190 / 200-299 / 10, or a wrong appsecret_proof) is the connection's,
told to `ConnectionEvents.refused`; the fleet refresh then skips that connection's nodes
(each answered `ConnectionPaused`, nothing sent) while the other connections carry on. A
later call that Meta answers on it (a query, or the monitor's check) is told to
`ConnectionEvents.accepted`, which resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from wahealth.domain import HealthReport, NodeKind
from wahealth.upstream.errors import ConnectionPaused, GraphAuthError, GraphError
from wahealth.upstream.graph import GraphClient
from wahealth.upstream.graph_credentials import GraphCredentials
from wahealth.upstream.records import PhoneNumberRecord, TemplateRecord

T = TypeVar("T")
BOOK_TTL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Connection:
    """A named connection as the router uses it: credentials, and whether Meta refused them."""

    name: str
    credentials: GraphCredentials
    refused: bool = False
    ok: bool = False  # Meta took its token last time (not refused, not unchecked)
    calls_per_minute: int | None = None  # its own Meta budget (None: the default per app)


class ConnectionRoutes(Protocol):
    """Which connection each node (phone number, template or WABA) is called with."""

    async def connections_of(self, node_ids: Sequence[str]) -> Mapping[str, str]:
        """node id -> connection name, for the nodes whose space names a connection."""
        ...


class ConnectionEvents(Protocol):
    """Told when Meta refuses a connection's token, and when it takes it again."""

    async def refused(self, name: str, error: GraphAuthError) -> None: ...

    async def accepted(self, name: str) -> None: ...


class ConnectionBook:
    """The connections by name, reloaded through `load` when older than `ttl_seconds`."""

    def __init__(
        self,
        load: Callable[[], Awaitable[Sequence[Connection]]] | None = None,
        *,
        ttl_seconds: float = BOOK_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._clock = clock
        self._by_name: dict[str, Connection] = {}
        self._loaded_at: float | None = None

    def replace(self, connections: Sequence[Connection]) -> None:
        self._by_name = {c.name: c for c in connections}
        self._loaded_at = self._clock()

    def forget(self) -> None:
        """Reload on next use (a connection was added, changed or deleted here)."""
        self._loaded_at = None

    def set_refused(self, name: str, refused: bool) -> None:
        found = self._by_name.get(name)
        if found is not None and (found.refused, found.ok) != (refused, not refused):
            self._by_name[name] = replace(found, refused=refused, ok=not refused)

    async def current(self) -> Mapping[str, Connection]:
        now = self._clock()
        if self._load is not None and (
            self._loaded_at is None or now - self._loaded_at > self._ttl
        ):
            self.replace(await self._load())
        return self._by_name


class ConnectedGraph:
    """The Graph client's calls, each on its node's connection."""

    def __init__(
        self,
        default: GraphClient,
        book: ConnectionBook,
        routes: ConnectionRoutes | None = None,
        events: ConnectionEvents | None = None,
    ) -> None:
        self.default = default
        self.book = book
        self._routes = routes
        self._events = events
        self._views: dict[tuple[str, GraphCredentials], GraphClient] = {}

    @property
    def api_version(self) -> str:
        return self.default.api_version

    async def aclose(self) -> None:
        await self.default.aclose()

    async def app_secrets(self) -> list[str]:
        """The app secrets of the connections that have one (their apps sign webhooks)."""
        return [
            secret
            for connection in (await self.book.current()).values()
            if (secret := connection.credentials.app_secret)
        ]

    def client(self, connection: Connection | None) -> GraphClient:
        """The Graph client calling with this connection's credentials (None: the default)."""
        if connection is None:
            return self.default
        key = (connection.name, connection.credentials)
        view = self._views.get(key)
        if view is None:
            self._views = {k: v for k, v in self._views.items() if k[0] != connection.name}
            view = self._views[key] = self.default.with_credentials(connection.credentials)
        return view

    async def _routed(self, node_ids: Sequence[str]) -> dict[str, Connection]:
        """The connection of each node that has one (none looked up when there are none)."""
        book = await self.book.current()
        if not book or self._routes is None:
            return {}
        names = await self._routes.connections_of(node_ids)
        return {n: book[name] for n, name in names.items() if name in book}

    async def _on(self, connection: Connection | None, call: Awaitable[T]) -> T:
        """Run one call on a connection, telling the events how Meta took its token."""
        try:
            result = await call
        except GraphAuthError as exc:
            if connection is not None:
                await self._refused(connection, exc)
            raise
        except GraphError:
            raise
        if connection is not None and not connection.ok:
            await self._accepted(connection)
        return result

    async def _refused(self, connection: Connection, error: GraphAuthError) -> None:
        self.book.set_refused(connection.name, True)
        if self._events is not None:
            await self._events.refused(connection.name, error)

    async def _accepted(self, connection: Connection) -> None:
        self.book.set_refused(connection.name, False)
        if self._events is not None:
            await self._events.accepted(connection.name)

    async def _one(self, node_id: str) -> tuple[Connection | None, GraphClient]:
        connection = (await self._routed([node_id])).get(node_id)
        return connection, self.client(connection)

    async def health(
        self, node_id: str, *, attempts: int | None = None, kind: NodeKind | None = None
    ) -> HealthReport:
        connection, client = await self._one(node_id)
        return await self._on(connection, client.health(node_id, attempts=attempts, kind=kind))

    async def phone_numbers(self, waba_id: str) -> list[PhoneNumberRecord]:
        connection, client = await self._one(waba_id)
        return await self._on(connection, client.phone_numbers(waba_id))

    async def message_templates(
        self, waba_id: str, *, name: str | None = None, language: str | None = None
    ) -> list[TemplateRecord]:
        connection, client = await self._one(waba_id)
        call = client.message_templates(waba_id, name=name, language=language)
        return await self._on(connection, call)

    async def read(self, path: str, params: Mapping[str, str]) -> Any:
        connection, client = await self._one(path.split("/", 1)[0])
        return await self._on(connection, client.read(path, params))

    async def batch_health(
        self, node_ids: Sequence[str], *, kinds: Mapping[str, NodeKind] | None = None
    ) -> dict[str, HealthReport | GraphError]:
        """Each connection's nodes in batches of their own; a refused connection's nodes are
        `ConnectionPaused` (not sent), and its auth error stays its own. With no connection
        at all, a refused default token is raised, as `GraphClient.batch_health` does;
        with connections, it is only the default token's nodes' error."""
        if not await self.book.current():
            # Every node is on the default token: a refusal of it is everyone's (raised).
            return await self.default.batch_health(node_ids, kinds=kinds)
        routed = await self._routed(node_ids)
        groups: dict[str | None, list[str]] = {}
        for node_id in dict.fromkeys(node_ids):
            connection = routed.get(node_id)
            groups.setdefault(None if connection is None else connection.name, []).append(node_id)
        results: dict[str, HealthReport | GraphError] = {}
        for name, members in groups.items():
            connection = None if name is None else routed[members[0]]
            results.update(await self._group(connection, members, kinds))
        return {node_id: results[node_id] for node_id in dict.fromkeys(node_ids)}

    async def _group(
        self,
        connection: Connection | None,
        node_ids: list[str],
        kinds: Mapping[str, NodeKind] | None,
    ) -> dict[str, HealthReport | GraphError]:
        if connection is not None and connection.refused:
            paused = ConnectionPaused(connection.name)
            return dict.fromkeys(node_ids, paused)
        try:
            results = await self.client(connection).batch_health(node_ids, kinds=kinds)
        except GraphAuthError as exc:
            if connection is not None:
                await self._refused(connection, exc)
            return dict.fromkeys(node_ids, exc)
        if connection is not None:
            refusal = next((r for r in results.values() if isinstance(r, GraphAuthError)), None)
            if refusal is not None:
                await self._refused(connection, refusal)
            elif not connection.ok:
                await self._accepted(connection)
        return results
