"""The records the monitor, the console and storage exchange: plain values, no I/O.

Transitions, last known health, due nodes, alert subscriptions and outbox items, and
what the flap policy sees of them. Storage maps its rows to these; everything else
reads them without knowing about rows or sessions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from wahealth.domain.model import HealthReport, NodeKind
from wahealth.domain.nodes import normalize_phone_number


@dataclass(frozen=True, slots=True)
class PhoneNumberRecord:
    """A business phone number, as a WABA's `phone_numbers` edge lists it.

    Values are Meta's strings; `throughput` is its `level`. None means "not known"
    (Meta did not send it), never "cleared". `health` is the number's health report when
    the edge was asked `health_status` too (the catalog sync asks it): it is not part of
    the catalog, so records compare without it.
    """

    id: str
    display_phone_number: str
    verified_name: str | None = None
    quality_rating: str | None = None
    messaging_limit_tier: str | None = None
    whatsapp_business_manager_messaging_limit: str | None = None
    throughput: str | None = None
    status: str | None = None
    name_status: str | None = None
    code_verification_status: str | None = None
    health: HealthReport | None = field(default=None, compare=False, repr=False)

    @property
    def phone_number(self) -> str:
        """`display_phone_number` as digits only (how callers' numbers are matched)."""
        return normalize_phone_number(self.display_phone_number)


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """A message template; (name, language) is what CAMS calls (TemplateCode, Language)."""

    id: str
    name: str
    language: str
    status: str | None = None
    category: str | None = None
    quality_score: str | None = None  # Meta's `quality_score.score`
    rejected_reason: str | None = None


class TransitionCause(enum.StrEnum):
    """Why we looked at the node when the change was seen."""

    POLL = "poll"
    WEBHOOK = "webhook"
    QUERY = "query"
    MANUAL = "manual"
    SYNC = "sync"


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """A node's last known state; `payload` is None until a first successful fetch."""

    node_id: str
    node_kind: str
    space_id: str | None
    can_send_message: str | None
    payload: Mapping[str, Any] | None
    error_codes: tuple[str, ...]
    fetched_at: datetime | None
    checked_at: datetime | None
    next_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class Transition:
    """A stored change of a node.

    `field` is None for a change of health (`before`/`after` are overall statuses),
    else the Meta field that changed (`quality_rating`, `status`, ...) and
    `before`/`after` are its values.
    """

    id: int
    node_id: str
    node_kind: str
    space_id: str | None
    before: str | None
    after: str
    changes: Mapping[str, Any]
    error_codes: tuple[str, ...]
    cause: TransitionCause
    occurred_at: datetime
    field: str | None = None


@dataclass(frozen=True, slots=True)
class PropertyObservation:
    """Values of a node's catalog fields as seen at one moment (None: not seen)."""

    node_id: str
    values: Mapping[str, str | None]
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """An alert to enqueue for a transition, due from the report's `fetched_at`.

    `alert_id` defaults to a fresh uuid4 hex.
    """

    subscription_id: int
    event: str
    payload: Mapping[str, Any]
    alert_id: str | None = None
    state: AlertState | None = None  # PENDING unless suppressed
    group_key: str | None = None  # alerts of one WABA-level change share it
    due_at: datetime | None = None  # later than the report's `fetched_at` to wait for a group


class DueNode(NamedTuple):
    """A catalog node to refresh; `next_due_at` is None when it was never scheduled.

    `claim` is this replica's hold on it when the schedule is shared (None when one
    process refreshes the fleet): its outcome is recorded under that claim.
    """

    node_id: str
    kind: NodeKind
    space_id: str
    next_due_at: datetime | None
    claim: Claim | None = None


class AlertEvent(enum.StrEnum):
    """What an alert subscription can be sent (see `wahealth.monitor.events`)."""

    BLOCKED = "BLOCKED"
    LIMITED = "LIMITED"
    RECOVERED = "RECOVERED"
    QUALITY = "QUALITY"
    LIMIT = "LIMIT"
    NUMBER_STATUS = "NUMBER_STATUS"
    TEMPLATE_STATUS = "TEMPLATE_STATUS"
    SILENCE_ENDED = "SILENCE_ENDED"
    # A Meta connection's token was refused (or works again): sent to every subscription
    # of its spaces, whatever they chose, since no other alert can come while it lasts.
    CONNECTION = "CONNECTION"
    ANY = "ANY"


DEFAULT_ALERT_EVENTS: tuple[AlertEvent, ...] = (
    AlertEvent.BLOCKED,
    AlertEvent.LIMITED,
    AlertEvent.RECOVERED,
)


class AlertState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    # Stored and shown, never delivered: it fell inside a silence or under an acknowledgement.
    SUPPRESSED = "suppressed"


class AlertFormat(enum.StrEnum):
    JSON = "json"
    SLACK = "slack"
    EMAIL = "email"


class SilenceScope(enum.StrEnum):
    """What a silence covers: one node, every node of a WABA, or a whole space."""

    NODE = "node"
    WABA = "waba"
    SPACE = "space"


@dataclass(frozen=True, slots=True)
class Silence:
    """No alert is delivered for nodes in scope from `starts_at` until `ends_at`.

    `ended_at` is set when it was lifted early; `end_alerted_at` once the alert for
    nodes still not AVAILABLE at its end was planned (so it is planned only once).
    """

    id: int
    space_id: str
    scope: SilenceScope
    scope_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    created_by: str | None
    created_at: datetime
    ended_at: datetime | None = None
    end_alerted_at: datetime | None = None

    def effective_end(self) -> datetime:
        """When the silence stops (lifted early, or as planned)."""
        return min(self.ended_at, self.ends_at) if self.ended_at is not None else self.ends_at

    def active_at(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.effective_end()

    def covers(self, node_id: str, waba_id: str | None, space_id: str | None) -> bool:
        """True when a node of this WABA and space is in the silence's scope."""
        if self.scope is SilenceScope.NODE:
            return node_id == self.scope_id
        if self.scope is SilenceScope.WABA:
            return waba_id == self.scope_id or node_id == self.scope_id
        return space_id == self.scope_id


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Someone saw a node's problem: no repeat alert while its status stays `status`."""

    node_id: str
    status: str
    transition_id: int | None
    acknowledged_by: str | None
    note: str | None
    acknowledged_at: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    space_id: str
    url: str
    secret_encrypted: str | None
    on_events: tuple[str, ...]
    format: AlertFormat
    created_at: datetime
    disabled_at: datetime | None

    def wants(self, event: str) -> bool:
        return self.disabled_at is None and event in self.on_events


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One alert; `id` is the alert id its receiver sees."""

    id: str
    subscription_id: int
    transition_id: int
    event: str
    payload: Mapping[str, Any]
    state: AlertState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    # The sender delivering it (its replica id) and until when; None when nobody holds it.
    claimed_by: str | None = None
    claimed_until: datetime | None = None

    @property
    def claim(self) -> Claim | None:
        if self.claimed_by is None or self.claimed_until is None:
            return None
        return Claim(self.claimed_by, self.claimed_until)


@dataclass(frozen=True, slots=True)
class Claim:
    """A replica's hold on an alert (its sender's) or a due node (its refresh): the
    replica id and the end of the lease.

    Together they name one claim: a later claim of the same row, even by the same
    replica, ends later, so an outcome is recorded only by the claim that is current.
    """

    by: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """An alert together with where and how to send it."""

    item: OutboxItem
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """One alert of a node for one subscription, as the flap policy sees it."""

    id: str
    transition_id: int
    state: AlertState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    grouped: int

    @property
    def untried(self) -> bool:
        """Pending and never claimed: nobody can be sending it, so it may be folded."""
        return self.state is AlertState.PENDING and self.attempts == 0


@dataclass(frozen=True, slots=True)
class FoldPlan:
    """Keep `keep_id` (with `grouped` and due at `due_at`); delete `drop_ids` into it."""

    keep_id: str
    drop_ids: tuple[str, ...]
    grouped: int
    due_at: datetime


# (the alert just enqueued, the other alerts of its node and subscription, now) -> plan
FlapPolicy = Callable[[AlertSnapshot, Sequence[AlertSnapshot], datetime], FoldPlan | None]


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as receivers parse most easily."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
