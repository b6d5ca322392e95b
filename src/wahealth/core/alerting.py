"""Acknowledge a node's problem, silence a node, WABA or space: for a caller, in its spaces.

The JSON API, the dashboard and the CLI call these. A caller (a `Principal`) sees and
changes only its account's spaces; any other node, WABA, space or silence is simply not
found. The CLI acts as the operator (`principal` None): every space. "Who" is the
credential's label, or what the CLI was told with `--by`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from wahealth.core.errors import InvalidRequest, NodeNotFound
from wahealth.core.ports import Principal
from wahealth.domain.records import Acknowledgement, Silence, SilenceScope, iso_utc

MAX_SILENCE = timedelta(days=366)
MAX_TEXT = 1000


class NothingToAcknowledge(InvalidRequest):
    """The node is AVAILABLE (or was never seen): there is no problem to acknowledge."""


class SilenceNotFound(NodeNotFound):
    def __init__(self, message: str) -> None:
        super().__init__(message, what="silence")


class Owners(Protocol):
    """Which space a node, WABA or space is in, within an account (None: any account)."""

    async def space_of(self, account: str | None, scope: SilenceScope, scope_id: str) -> str | None:
        """The space id, or None when it is not the account's (or not known at all)."""
        ...

    async def spaces_of(self, account: str) -> Sequence[str]:
        """The account's spaces."""
        ...


class SilenceStore(Protocol):
    """Storage of silences and acknowledgements (`wahealth.storage.silences`)."""

    async def add(
        self,
        space_id: str,
        scope: SilenceScope,
        scope_id: str,
        *,
        starts_at: datetime,
        ends_at: datetime,
        reason: str | None,
        created_by: str | None,
    ) -> Silence: ...

    async def get(self, silence_id: int) -> Silence | None: ...

    async def current(
        self, now: datetime, space_ids: Sequence[str] | None = None
    ) -> list[Silence]: ...

    async def end(self, silence_id: int, now: datetime) -> Silence: ...

    async def acknowledge(
        self, node_id: str, *, by: str | None, note: str | None, now: datetime
    ) -> Acknowledgement | None: ...

    async def acknowledgement_of(self, node_id: str) -> Acknowledgement | None: ...

    async def acknowledgements_in_force(
        self, node_ids: Iterable[str]
    ) -> Mapping[str, Acknowledgement]: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """What to silence: a node, a WABA or a space, by id."""

    kind: SilenceScope
    id: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{name} is longer than {MAX_TEXT} characters", parameter=name)
    return value.strip()


@dataclass(frozen=True, slots=True)
class Alerting:
    """The acknowledge and silence use cases."""

    owners: Owners
    store: SilenceStore
    clock: Callable[[], datetime] = _utcnow

    async def _space_of(self, principal: Principal | None, scope: Scope) -> str:
        account = principal.account if principal is not None else None
        space_id = await self.owners.space_of(account, scope.kind, scope.id)
        if space_id is None:
            what = scope.kind.value
            raise NodeNotFound(f"{what} {scope.id[:64]} is not known to this account", what=what)
        return space_id

    async def _spaces(self, principal: Principal | None) -> Sequence[str] | None:
        return None if principal is None else await self.owners.spaces_of(principal.account)

    async def ack(
        self,
        principal: Principal | None,
        node_id: str,
        note: str | None = None,
        *,
        by: str | None = None,
    ) -> Acknowledgement:
        """Acknowledge the node's current problem: no repeat alert until its status changes."""
        await self._space_of(principal, Scope(SilenceScope.NODE, node_id))
        who = by or (principal.label if principal is not None else None)
        ack = await self.store.acknowledge(
            node_id, by=_text(who, "by"), note=_text(note, "note"), now=self.clock()
        )
        if ack is None:
            raise NothingToAcknowledge(f"node {node_id} is AVAILABLE or not checked yet")
        return ack

    async def silence(
        self,
        principal: Principal | None,
        scope: Scope,
        until: datetime,
        reason: str | None = None,
        *,
        by: str | None = None,
    ) -> Silence:
        """Silence a node, WABA or space until `until` (in the future, at most a year ahead)."""
        now = self.clock()
        if until.tzinfo is None:
            raise InvalidRequest("the end of a silence needs a time zone", parameter="until")
        if until <= now:
            raise InvalidRequest("the end of a silence must be in the future", parameter="until")
        if until - now > MAX_SILENCE:
            raise InvalidRequest("a silence lasts at most 366 days", parameter="until")
        space_id = await self._space_of(principal, scope)
        who = by or (principal.label if principal is not None else None)
        return await self.store.add(
            space_id,
            scope.kind,
            scope.id,
            starts_at=now,
            ends_at=until,
            reason=_text(reason, "reason"),
            created_by=_text(who, "by"),
        )

    async def silences(self, principal: Principal | None) -> list[Silence]:
        """The silences not over yet, in the caller's spaces."""
        return await self.store.current(self.clock(), await self._spaces(principal))

    async def unsilence(self, principal: Principal | None, silence_id: int) -> Silence:
        """Lift a silence now; its end alert follows if nodes are still not AVAILABLE."""
        found = await self.store.get(silence_id)
        spaces = await self._spaces(principal)
        if found is None or (spaces is not None and found.space_id not in spaces):
            raise SilenceNotFound(f"silence {silence_id} is not known to this account")
        return await self.store.end(silence_id, self.clock())

    async def acknowledgement_of(self, node_id: str) -> Acknowledgement | None:
        """The node's acknowledgement while its status is still the one acknowledged."""
        return await self.store.acknowledgement_of(node_id)

    async def acknowledgements(self, node_ids: Iterable[str]) -> Mapping[str, Acknowledgement]:
        """Of these nodes, the acknowledgements that still hold, by node id (the caller
        has checked that the nodes are its own)."""
        return await self.store.acknowledgements_in_force(node_ids)


def silence_json(silence: Silence) -> dict[str, Any]:
    """A silence as alerts, the API and `wahealth alerts silences --json` show it."""
    return {
        "id": silence.id,
        "space_id": silence.space_id,
        "scope": silence.scope.value,
        "scope_id": silence.scope_id,
        "starts_at": iso_utc(silence.starts_at),
        "ends_at": iso_utc(silence.effective_end()),
        "reason": silence.reason,
        "created_by": silence.created_by,
        "lifted_at": None if silence.ended_at is None else iso_utc(silence.ended_at),
    }


def acknowledgement_json(ack: Acknowledgement) -> dict[str, Any]:
    """An acknowledgement as alerts, the API and the CLI show it."""
    return {
        "node_id": ack.node_id,
        "status": ack.status,
        "transition_id": ack.transition_id,
        "acknowledged_by": ack.acknowledged_by,
        "note": ack.note,
        "acknowledged_at": iso_utc(ack.acknowledged_at),
    }


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d` (or a sum like `1h30m`) as a duration."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total, number = 0.0, ""
    for char in text.strip().lower():
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            raise InvalidRequest(f"{text!r} is not a duration like 2h or 30m", parameter="for")
    if number or total <= 0:
        raise InvalidRequest(f"{text!r} is not a duration like 2h or 30m", parameter="for")
    return timedelta(seconds=total)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with a zone (`2026-12-24T18:00:00Z`)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{text!r} is not an ISO 8601 time", parameter="until") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{text!r} has no time zone (add Z or +00:00)", parameter="until")
    return moment
