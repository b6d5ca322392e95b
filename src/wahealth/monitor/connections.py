"""Meta connections as a health fact: refused tokens recorded and alerted once, checks resume.

`ConnectionHealth` is told by the Graph router when Meta refuses a connection's token
(190 / 200-299 / 10, a wrong appsecret_proof) or takes it again; it records the change
(storage makes it once across replicas, with one alert per subscription of the
connection's spaces) and wakes the alert sender. While refused, that connection's nodes
are not sent by the fleet refresh; `ConnectionWatch` checks each refused or unchecked
connection every `check_seconds` (`/debug_token`), and a check Meta accepts resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.domain.records import AlertEvent, iso_utc
from wahealth.storage.connections import (
    CONNECTION_KIND,
    ConnectionRepository,
    StoredConnection,
    connection_node_id,
)
from wahealth.storage.errors import StorageError
from wahealth.upstream.connections import ConnectedGraph, Connection, ConnectionBook
from wahealth.upstream.discovery import check_token
from wahealth.upstream.errors import GraphAuthError, GraphError
from wahealth.upstream.graph import GraphClient
from wahealth.upstream.graph_credentials import GraphCredentials

log = structlog.get_logger(__name__)

FIX = (
    "Issue a new system user token with the whatsapp_business_management permission "
    "(and the app secret of its app), then update the connection; its refresh resumes at "
    "the next check."
)


def problem_of(error: GraphAuthError) -> str:
    """Meta's refusal in one line: code and message (never the token)."""
    code = "" if error.code is None else f"({error.code}) "
    return f"{code}{error.message}"[:500]


def connection_alert(
    name: str,
    space_id: str,
    before: str,
    after: str,
    problem: str | None,
    code: int | None,
    occurred_at: datetime,
    transition_id: int,
) -> dict[str, Any]:
    """The `CONNECTION` alert: a connection's token was refused, or works again."""
    errors = []
    if after == "refused":
        errors.append(
            {
                "entity_type": CONNECTION_KIND,
                "entity_id": name,
                "error_code": code,
                "error_description": problem,
                "possible_solution": FIX,
            }
        )
    return {
        "event": AlertEvent.CONNECTION.value,
        "node_id": connection_node_id(name),
        "node_kind": CONNECTION_KIND,
        "space_id": space_id,
        "connection": name,
        "field": "token",
        "before": before.upper(),
        "after": after.upper(),
        "error_codes": [] if code is None else [str(code)],
        "errors": errors,
        "additional_info": [],
        "cause": "monitor",
        "occurred_at": iso_utc(occurred_at),
        "transition_id": transition_id,
        "grouped": 1,
    }


def book_loader(connections: ConnectionRepository, secretbox: SecretBox) -> Callable[[], Any]:
    """Loads the router's connections from storage, secrets decrypted in memory only."""

    async def load() -> list[Connection]:
        loaded = []
        for stored in await connections.list_connections():
            credentials = credentials_of(stored, secretbox)
            if credentials is not None:
                ok = stored.state == "ok"
                loaded.append(
                    Connection(
                        stored.name, credentials, stored.refused, ok, stored.calls_per_minute
                    )
                )
        return loaded

    return load


def decrypted(stored: StoredConnection, secretbox: SecretBox) -> tuple[str, str | None] | None:
    """The connection's token and app secret in the clear; None if this key cannot open them."""
    try:
        token = secretbox.decrypt(stored.token_encrypted)
        secret = (
            None
            if stored.app_secret_encrypted is None
            else secretbox.decrypt(stored.app_secret_encrypted)
        )
    except SecretBoxError:
        return None
    return token, secret


def credentials_of(stored: StoredConnection, secretbox: SecretBox) -> GraphCredentials | None:
    opened = decrypted(stored, secretbox)
    if opened is None:
        log.error("cannot decrypt a Meta connection's secrets", connection=stored.name)
        return None
    return GraphCredentials(*opened)


class ConnectionHealth:
    """Records Meta's verdicts on connections (the router's `ConnectionEvents`)."""

    def __init__(
        self, connections: ConnectionRepository, wake: Callable[[], None] | None = None
    ) -> None:
        self._connections = connections
        self._wake = wake

    async def refused(self, name: str, error: GraphAuthError) -> None:
        await self._mark(name, refused=True, problem=problem_of(error), code=error.code)

    async def accepted(self, name: str) -> None:
        await self._mark(name, refused=False, problem=None, code=None)

    async def _mark(
        self, name: str, *, refused: bool, problem: str | None, code: int | None
    ) -> None:
        try:
            changed = await self._connections.mark(
                name, refused=refused, problem=problem, code=code, document=connection_alert
            )
        except StorageError as exc:
            log.warning("cannot record a Meta connection's state", connection=name, error=str(exc))
            return
        if not changed:
            return
        if refused:
            log.error("Meta refused a connection's token; its refresh pauses", connection=name,
                      problem=problem)  # fmt: skip
        else:
            log.info("Meta accepts a connection's token again; its refresh resumes",
                     connection=name)  # fmt: skip
        if self._wake is not None:
            self._wake()


class ConnectionWatch:
    """Checks refused and unchecked connections; `run` is the loop, `step` one round."""

    def __init__(
        self,
        graph: ConnectedGraph,
        connections: ConnectionRepository,
        health: ConnectionHealth,
        secretbox: SecretBox,
        *,
        check_seconds: float,
    ) -> None:
        self._graph = graph
        self._connections = connections
        self._health = health
        self._secretbox = secretbox
        self._check_seconds = check_seconds

    async def step(self) -> list[str]:
        """Check every connection not known to work; the names Meta accepted."""
        self._graph.book.forget()
        accepted = []
        for stored in await self._connections.list_connections():
            if stored.state != "ok" and await self._check(stored):
                accepted.append(stored.name)
        return accepted

    async def check(self, name: str) -> None:
        """Check one connection now, whatever its state (the admin API's and CLI's check)."""
        self._graph.book.forget()
        stored = await self._connections.get(name)
        if stored is not None:
            await self._check(stored)

    async def _check(self, stored: StoredConnection) -> bool:
        """Ask Meta about the token; record the verdict. True when Meta took it."""
        credentials = credentials_of(stored, self._secretbox)
        if credentials is None:
            return False
        client = self._graph.client(Connection(stored.name, credentials, stored.refused))
        try:
            await check_token(client, credentials.access_token)
        except GraphAuthError as exc:
            self._graph.book.set_refused(stored.name, True)
            await self._health.refused(stored.name, exc)
            return False
        except GraphError as exc:  # Meta unreachable: nothing learnt about the token
            log.info("cannot check a Meta connection", connection=stored.name, error=str(exc))
            return False
        self._graph.book.set_refused(stored.name, False)
        await self._health.accepted(stored.name)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except StorageError as exc:
                log.warning("Meta connection check failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._check_seconds)


def connected(
    graph: GraphClient,
    connections: ConnectionRepository,
    secretbox: SecretBox,
    wake: Callable[[], None],
    check_seconds: float,
) -> tuple[ConnectedGraph, ConnectionWatch]:
    """The Graph client on each space's connection, and the loop that checks refused ones."""
    health = ConnectionHealth(connections, wake)
    book = ConnectionBook(book_loader(connections, secretbox))
    upstream = ConnectedGraph(graph, book, routes=connections, events=health)
    watch = ConnectionWatch(upstream, connections, health, secretbox, check_seconds=check_seconds)
    return upstream, watch
