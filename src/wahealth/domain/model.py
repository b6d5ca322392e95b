"""Health model: statuses, entities, reports and the overall-status rule.

Meta changes its API, so everything that comes from the wire is kept as the
string Meta sent: an unknown entity type or status travels through untouched.
Only aggregation needs to understand statuses, and it treats an unknown one as
LIMITED: we cannot vouch that it is AVAILABLE, and we must not invent a BLOCKED.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

_T = TypeVar("_T")


class Status(enum.StrEnum):
    """Whether a node can send messages, ordered by severity."""

    AVAILABLE = "AVAILABLE"
    LIMITED = "LIMITED"
    BLOCKED = "BLOCKED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @classmethod
    def from_wire(cls, value: str) -> Status:
        """The status for a wire value; an unknown value counts as LIMITED (see module doc)."""
        # A dict lookup: the enum's own call is several times slower, and a fleet refresh
        # asks this a few times per entity.
        return _BY_WIRE.get(value, Status.LIMITED)


_SEVERITY = {Status.AVAILABLE: 0, Status.LIMITED: 1, Status.BLOCKED: 2}
_BY_WIRE: dict[object, Status] = {status.value: status for status in Status}


class EntityType(enum.StrEnum):
    """Entity types Meta documents; others are kept as plain strings."""

    PHONE_NUMBER = "PHONE_NUMBER"
    WABA = "WABA"
    BUSINESS = "BUSINESS"
    APP = "APP"
    MESSAGE_TEMPLATE = "MESSAGE_TEMPLATE"


class NodeKind(enum.StrEnum):
    """What kind of node a health query targets."""

    PHONE_NUMBER = "PHONE_NUMBER"
    WABA = "WABA"
    MESSAGE_TEMPLATE = "MESSAGE_TEMPLATE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def from_entities(cls, node_id: str, entities: Iterable[Entity]) -> NodeKind:
        """Infer the queried node's kind from the entity that carries its id."""
        for entity in entities:
            if entity.id == node_id:
                try:
                    return cls(entity.entity_type)
                except ValueError:
                    return cls.UNKNOWN
        return cls.UNKNOWN


class ReportSource(enum.StrEnum):
    """Where an answer came from."""

    UPSTREAM = "upstream"
    CACHE = "cache"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class HealthError:
    """One reason an entity cannot (fully) send. `error_code` is kept as Meta sent it."""

    error_code: int | str
    error_description: str | None = None
    possible_solution: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.error_code)


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity of a health answer (phone number, WABA, business, app, template, …)."""

    entity_type: str
    id: str
    can_send_message: str
    can_receive_call_sip: str | None = None
    errors: tuple[HealthError, ...] = ()
    additional_info: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return Status.from_wire(self.can_send_message)


def overall_status(entities: Iterable[Entity]) -> Status:
    """Any entity BLOCKED -> BLOCKED; else any LIMITED -> LIMITED; else AVAILABLE."""
    worst = Status.AVAILABLE
    for entity in entities:
        status = entity.status
        if _SEVERITY[status] > _SEVERITY[worst]:
            worst = status
    return worst


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The health of one node, as fetched at one moment from one source.

    `can_send_message` is computed by us from the entities; what Meta said
    overall is kept in `upstream_can_send_message` for comparison.
    """

    node_id: str
    entities: tuple[Entity, ...]
    fetched_at: datetime
    source: ReportSource = ReportSource.UPSTREAM
    upstream_can_send_message: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # What is derived from the fields above, computed once on first use (a fleet refresh
    # asks each report's status, kind and wire form several times). Not part of the value.
    _derived: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def derived(self, name: str, compute: Callable[[], _T]) -> _T:
        """`compute()`, computed once per report under `name` (it must depend only on the
        report's fields, and its result must not be changed by the caller)."""
        try:
            value: _T = self._derived[name]
        except KeyError:
            value = self._derived[name] = compute()
        return value

    @property
    def can_send_message(self) -> Status:
        return self.derived("status", lambda: overall_status(self.entities))

    @property
    def node_kind(self) -> NodeKind:
        return self.derived("kind", lambda: NodeKind.from_entities(self.node_id, self.entities))

    def entity(self, entity_type: str) -> Entity | None:
        """The first entity of a type, if present."""
        return next((e for e in self.entities if e.entity_type == entity_type), None)

    def error_codes(self) -> tuple[str, ...]:
        """All error codes across entities, sorted, without duplicates."""
        return tuple(sorted({err.code for e in self.entities for err in e.errors}))
