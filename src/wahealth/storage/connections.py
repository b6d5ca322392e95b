"""Named Meta connections: their encrypted token and app secret, their state, their spaces.

A connection's state is `unchecked` (stored, not yet called), `ok` or `refused` (Meta
answered 190 / 200-299 / 10 or refused the appsecret_proof). A change between `ok` and
`refused` is made once, by a conditional update: whichever replica makes it writes, in
the same transaction, one transition per space that names the connection and one alert
per subscription of those spaces (the outbox delivers it), so the trouble is alerted once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wahealth.storage._session import Factory, insert_for, reading, rowcount, writing
from wahealth.storage.columns import utcnow
from wahealth.storage.errors import Conflict, NotFound, UnknownSpace
from wahealth.storage.models import (
    AlertSubscriptionRow,
    OutboxRow,
    PhoneNumberRow,
    SpaceRow,
    TemplateRow,
    TransitionRow,
    WabaRow,
)
from wahealth.storage.models_upstreams import MetaConnectionRow

UNCHECKED, OK, REFUSED = "unchecked", "ok", "refused"
CONNECTION_KIND = "CONNECTION"
CONNECTION_EVENT = "CONNECTION"
# What an alert document is made from: (connection, space, before, after, problem, code,
# when, transition id) -> the document (built by the monitor).
AlertDocument = Callable[
    [str, str, str, str, str | None, int | None, datetime, int], dict[str, Any]
]


def connection_node_id(name: str) -> str:
    """The id a connection's transitions and alerts are filed under (never a Graph id)."""
    return f"connection:{name}"


class UnknownConnection(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__("Meta connection", name)


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """A connection as stored (secrets still encrypted) and the spaces that name it."""

    name: str
    token_encrypted: str
    app_secret_encrypted: str | None
    state: str
    problem: str | None
    checked_at: datetime | None
    changed_at: datetime
    created_at: datetime
    spaces: tuple[str, ...] = ()
    calls_per_minute: int | None = None  # its own Meta budget (None: the default per app)

    @property
    def refused(self) -> bool:
        return self.state == REFUSED


def _stored(row: MetaConnectionRow, spaces: Sequence[str] = ()) -> StoredConnection:
    return StoredConnection(
        row.name,
        row.token_encrypted,
        row.app_secret_encrypted,
        row.state,
        row.problem,
        row.checked_at,
        row.changed_at,
        row.created_at,
        tuple(spaces),
        row.calls_per_minute,
    )


class ConnectionRepository:
    """Meta connections and which space uses which."""

    def __init__(self, sessions: Factory) -> None:
        self._sessions = sessions

    async def put(
        self,
        name: str,
        token_encrypted: str,
        app_secret_encrypted: str | None,
        *,
        same: bool,
        calls_per_minute: int | None = None,
    ) -> StoredConnection:
        """Create or replace a connection; `same` (the secrets did not change) keeps its state.
        `calls_per_minute` is its own Meta budget (None: the default per app)."""
        now = utcnow()
        async with writing(self._sessions) as session:
            row = await session.get(MetaConnectionRow, name)
            if row is None:
                row = MetaConnectionRow(name=name, state=UNCHECKED, changed_at=now, created_at=now)
                session.add(row)
            elif not same:
                row.state, row.problem, row.checked_at, row.changed_at = UNCHECKED, None, None, now
            row.token_encrypted = token_encrypted
            row.app_secret_encrypted = app_secret_encrypted
            row.calls_per_minute = calls_per_minute
            await session.flush()
            return _stored(row, await _spaces_of(session, name))

    async def get(self, name: str) -> StoredConnection | None:
        async with reading(self._sessions) as session:
            row = await session.get(MetaConnectionRow, name)
            return None if row is None else _stored(row, await _spaces_of(session, name))

    async def list_connections(self) -> list[StoredConnection]:
        async with reading(self._sessions) as session:
            rows = list(await session.scalars(select(MetaConnectionRow).order_by("name")))
            users = await session.execute(
                select(SpaceRow.connection, SpaceRow.id)
                .where(SpaceRow.connection.is_not(None), SpaceRow.deleted_at.is_(None))
                .order_by(SpaceRow.id)
            )
            spaces: dict[str, list[str]] = {}
            for connection, space_id in users:
                if connection is not None:
                    spaces.setdefault(connection, []).append(space_id)
            return [_stored(row, spaces.get(row.name, ())) for row in rows]

    async def refused_for(
        self, space_ids: Sequence[str]
    ) -> list[tuple[str, str | None, tuple[str, ...]]]:
        """Refused connections these spaces use: (name, problem, which of the spaces)."""
        wanted = set(space_ids)
        return [
            (c.name, c.problem, tuple(s for s in c.spaces if s in wanted))
            for c in await self.list_connections()
            if c.refused and wanted.intersection(c.spaces)
        ]

    async def states(self) -> list[tuple[str, str]]:
        """(name, state) of every connection, by name: for metrics and the fleet page."""
        async with reading(self._sessions) as session:
            rows = await session.execute(
                select(MetaConnectionRow.name, MetaConnectionRow.state).order_by("name")
            )
            return [(name, state) for name, state in rows]

    async def delete(self, name: str) -> StoredConnection:
        """Delete a connection no space names (Conflict otherwise)."""
        async with writing(self._sessions) as session:
            row = await session.get(MetaConnectionRow, name)
            if row is None:
                raise UnknownConnection(name)
            users = await _spaces_of(session, name)
            if users:
                raise Conflict(f"Meta connection {name!r} is used by space(s) {', '.join(users)}")
            gone = _stored(row)
            await session.delete(row)
            return gone

    async def set_space_connection(self, space_id: str, name: str | None) -> None:
        """Name the connection a space's Graph calls use (None: the default token)."""
        async with writing(self._sessions) as session:
            if name is not None and await session.get(MetaConnectionRow, name) is None:
                raise UnknownConnection(name)
            result = await session.execute(
                update(SpaceRow)
                .where(SpaceRow.id == space_id, SpaceRow.deleted_at.is_(None))
                .values(connection=name)
            )
            if rowcount(result) == 0:
                raise UnknownSpace(space_id)

    async def space_connection(self, space_id: str) -> str | None:
        async with reading(self._sessions) as session:
            found: str | None = await session.scalar(
                select(SpaceRow.connection).where(SpaceRow.id == space_id)
            )
            return found

    async def connections_of(self, node_ids: Sequence[str]) -> Mapping[str, str]:
        """node id (phone number, template or WABA) -> its space's connection, where named."""
        ids = list(dict.fromkeys(node_ids))
        if not ids:
            return {}
        found: dict[str, str] = {}
        async with reading(self._sessions) as session:
            named = SpaceRow.connection.is_not(None), SpaceRow.deleted_at.is_(None)
            wabas = select(WabaRow.id, SpaceRow.connection).join(
                SpaceRow, SpaceRow.id == WabaRow.space_id
            )
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                queries = (
                    wabas.where(WabaRow.id.in_(chunk), *named),
                    select(PhoneNumberRow.id, SpaceRow.connection)
                    .join(WabaRow, WabaRow.id == PhoneNumberRow.waba_id)
                    .join(SpaceRow, SpaceRow.id == WabaRow.space_id)
                    .where(PhoneNumberRow.id.in_(chunk), *named),
                    select(TemplateRow.id, SpaceRow.connection)
                    .join(WabaRow, WabaRow.id == TemplateRow.waba_id)
                    .join(SpaceRow, SpaceRow.id == WabaRow.space_id)
                    .where(TemplateRow.id.in_(chunk), *named),
                )
                for query in queries:
                    for node_id, connection in await session.execute(query):
                        if connection is not None:
                            found[node_id] = connection
        return found

    async def mark(
        self,
        name: str,
        *,
        refused: bool,
        problem: str | None,
        code: int | None,
        document: AlertDocument,
    ) -> bool:
        """Record Meta's verdict on the connection's token; True when its state changed now
        (then its spaces' subscriptions got one alert each)."""
        now = utcnow()
        after = REFUSED if refused else OK
        async with writing(self._sessions) as session:
            row = await session.get(MetaConnectionRow, name)
            if row is None:
                return False
            before = row.state
            row.checked_at = now
            if before == after:
                return False
            row.state, row.problem, row.changed_at = after, problem if refused else None, now
            # Unchecked -> ok is no news; unchecked -> refused is.
            if before == UNCHECKED and not refused:
                return True
            for space_id in await _spaces_of(session, name):
                await _alert(session, name, space_id, before, after, problem, code, now, document)
            return True


async def _spaces_of(session: AsyncSession, name: str) -> list[str]:
    found = await session.scalars(
        select(SpaceRow.id)
        .where(SpaceRow.connection == name, SpaceRow.deleted_at.is_(None))
        .order_by(SpaceRow.id)
    )
    return list(found)


async def _alert(
    session: AsyncSession,
    name: str,
    space_id: str,
    before: str,
    after: str,
    problem: str | None,
    code: int | None,
    now: datetime,
    document: AlertDocument,
) -> None:
    """One transition of the connection in this space, and its alert to every subscription."""
    transition = TransitionRow(
        node_id=connection_node_id(name),
        node_kind=CONNECTION_KIND,
        space_id=space_id,
        before=before.upper(),
        after=after.upper(),
        changes={"connection": name, "problem": problem},
        error_codes=[] if code is None else [str(code)],
        cause="monitor",
        occurred_at=now,
        field="token",
    )
    session.add(transition)
    await session.flush()
    payload = document(name, space_id, before, after, problem, code, now, transition.id)
    subscriptions = await session.scalars(
        select(AlertSubscriptionRow.id).where(
            AlertSubscriptionRow.space_id == space_id, AlertSubscriptionRow.disabled_at.is_(None)
        )
    )
    rows = [
        {
            "id": uuid.uuid4().hex,
            "subscription_id": subscription_id,
            "transition_id": transition.id,
            "event": CONNECTION_EVENT,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "created_at": now,
            "delivered_at": None,
            "group_key": None,
        }
        for subscription_id in subscriptions
    ]
    if rows:
        await session.execute(insert_for(session)(OutboxRow), rows)
