"""Which alert a transition is, the document it becomes, and how a flapping node is grouped.

Everything here is pure: the recorder and the storage call these functions.

Events, from the overall status before and after a stored transition:

| event | when |
|---|---|
| `BLOCKED` | after is BLOCKED and before was not (a node first seen BLOCKED counts) |
| `LIMITED` | after is LIMITED and before was not: AVAILABLE, BLOCKED, or first seen |
| `RECOVERED` | after is AVAILABLE and before was LIMITED or BLOCKED |
| `ANY` | any stored transition (error codes or additional info may change alone) |

A change of a kept field (a transition with a `field`) is its field's event, by kind
of node:

| event | phone number fields | template fields |
|---|---|---|
| `QUALITY` | `quality_rating` | `quality_score` |
| `LIMIT` | `messaging_limit_tier`, `whatsapp_business_manager_messaging_limit`, `throughput` | |
| `NUMBER_STATUS` | `status`, `name_status`, `code_verification_status` | |
| `TEMPLATE_STATUS` | | `status`, `rejected_reason`, `category` |

Changes of `display_phone_number` and `verified_name` are recorded and sent to `ANY`
only. A field seen for the first time is a baseline, never a transition.

A node first seen AVAILABLE is a baseline, not news. A node first seen LIMITED
or BLOCKED is news: whoever subscribes wants to know what cannot fully send,
whether it just changed or was found that way. BLOCKED -> LIMITED is LIMITED
(not RECOVERED, which means "can send without limits"), so a subscriber to the
default events always learns the class of status a node ended in.

Flapping: a node that keeps changing must not send an alert storm, and the
receiver must still end up knowing the last state. Per node and subscription,
the newest alert not yet tried absorbs the older untried ones (`grouped`
counts the transitions it stands for), and it is held back until
`flap_window_seconds` after the last alert that went out. So the first change
of a burst goes out at once, at most one alert per window follows, and the
last one always carries the final state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from wahealth.domain import HealthReport, NodeKind, Status, fill_error
from wahealth.domain.records import (
    AlertEvent,
    AlertSnapshot,
    AlertState,
    FlapPolicy,
    FoldPlan,
    Subscription,
    Transition,
    iso_utc,
)


def classify(before: str | None, after: str) -> AlertEvent | None:
    """The specific event of a change of overall status, or None (only `ANY` then)."""
    if after == Status.BLOCKED and before != Status.BLOCKED:
        return AlertEvent.BLOCKED
    if after == Status.LIMITED and before != Status.LIMITED:
        return AlertEvent.LIMITED
    if after == Status.AVAILABLE and before in (Status.LIMITED, Status.BLOCKED):
        return AlertEvent.RECOVERED
    return None


_PHONE = NodeKind.PHONE_NUMBER.value
_TEMPLATE = NodeKind.MESSAGE_TEMPLATE.value
FIELD_EVENTS: dict[tuple[str, str], AlertEvent] = {
    (_PHONE, "quality_rating"): AlertEvent.QUALITY,
    (_PHONE, "messaging_limit_tier"): AlertEvent.LIMIT,
    (_PHONE, "whatsapp_business_manager_messaging_limit"): AlertEvent.LIMIT,
    (_PHONE, "throughput"): AlertEvent.LIMIT,
    (_PHONE, "status"): AlertEvent.NUMBER_STATUS,
    (_PHONE, "name_status"): AlertEvent.NUMBER_STATUS,
    (_PHONE, "code_verification_status"): AlertEvent.NUMBER_STATUS,
    (_TEMPLATE, "quality_score"): AlertEvent.QUALITY,
    (_TEMPLATE, "status"): AlertEvent.TEMPLATE_STATUS,
    (_TEMPLATE, "rejected_reason"): AlertEvent.TEMPLATE_STATUS,
    (_TEMPLATE, "category"): AlertEvent.TEMPLATE_STATUS,
}


def field_event(node_kind: str, field: str) -> AlertEvent | None:
    """The event of a change of a kept field, or None (only `ANY` then)."""
    return FIELD_EVENTS.get((node_kind, field))


def event_for(
    wanted: Iterable[str],
    before: str | None,
    after: str,
    *,
    field: str | None = None,
    node_kind: str = "",
) -> AlertEvent | None:
    """The event to alert a subscriber to `wanted` events with, or None for no alert.

    A transition gives at most one alert per subscription: the specific event
    when wanted, else `ANY` (named by the specific event when there is one). A
    transition of a kept `field` is that field's event, never a health one.
    """
    wanted = set(wanted)
    specific = classify(before, after) if field is None else field_event(node_kind, field)
    if specific is not None and specific in wanted:
        return specific
    if AlertEvent.ANY in wanted:
        return specific or AlertEvent.ANY
    return None


def field_alert_document(
    event: AlertEvent, transition: Transition, *, grouped: int = 1
) -> dict[str, Any]:
    """The alert for a change of a kept field: the health alert's keys, plus `field`."""
    return {
        "event": event.value,
        "node_id": transition.node_id,
        "node_kind": transition.node_kind,
        "space_id": transition.space_id,
        "field": transition.field,
        "before": transition.before,
        "after": transition.after,
        "error_codes": [],
        "errors": [],
        "additional_info": [],
        "cause": transition.cause.value,
        "occurred_at": iso_utc(transition.occurred_at),
        "transition_id": transition.id,
        "grouped": grouped,
    }


def alert_document(
    event: AlertEvent, transition: Transition, report: HealthReport, *, grouped: int = 1
) -> dict[str, Any]:
    """The format-neutral alert (the sender adds the alert id and renders json or slack)."""
    errors = []
    for entity in report.entities:
        for error in entity.errors:
            filled = fill_error(error)
            errors.append(
                {
                    "entity_type": entity.entity_type,
                    "entity_id": entity.id,
                    "error_code": filled.error_code,
                    "error_description": filled.error_description,
                    "possible_solution": filled.possible_solution,
                }
            )
    info = [line for entity in report.entities for line in entity.additional_info]
    return {
        "event": event.value,
        "node_id": transition.node_id,
        "node_kind": transition.node_kind,
        "space_id": transition.space_id,
        "before": transition.before,
        "after": transition.after,
        "error_codes": list(transition.error_codes),
        "errors": errors,
        "additional_info": list(dict.fromkeys(info)),
        "cause": transition.cause.value,
        "occurred_at": iso_utc(transition.occurred_at),
        "transition_id": transition.id,
        "grouped": grouped,
    }


def _last_sent(alerts: Iterable[AlertSnapshot], now: datetime) -> datetime | None:
    """When the receiver last got (or may be getting) an alert of this node."""
    moments = []
    for alert in alerts:
        if alert.state is AlertState.DELIVERED and alert.delivered_at is not None:
            moments.append(alert.delivered_at)
        elif alert.state is AlertState.PENDING and alert.attempts > 0:
            moments.append(now)  # on the wire, or being retried: as good as sent now
    return max(moments, default=None)


def plan_fold(
    new: AlertSnapshot,
    others: Sequence[AlertSnapshot],
    now: datetime,
    window_seconds: float,
) -> FoldPlan | None:
    """Group the untried alerts of one node and subscription; None leaves them as they are.

    The newest untried alert absorbs the others; it is due once the window since
    the last alert sent has passed, but never later than an absorbed alert was
    already due, so a node that never stops flapping still reports every window.
    """
    if window_seconds <= 0:
        return None
    untried = [new, *(alert for alert in others if alert.untried and alert.id != new.id)]
    keep = max(untried, key=lambda alert: (alert.transition_id, alert.id))
    last = _last_sent(others, now)
    due = now if last is None else max(now, last + timedelta(seconds=window_seconds))
    planned = [alert.next_attempt_at for alert in untried if alert.id != new.id]
    if planned:
        due = min(due, *planned)
    return FoldPlan(
        keep_id=keep.id,
        drop_ids=tuple(alert.id for alert in untried if alert.id != keep.id),
        grouped=sum(alert.grouped for alert in untried),
        due_at=due,
    )


def flap_policy(window_seconds: float) -> FlapPolicy:
    """`plan_fold` with the configured window, as `FlapRepository.fold` takes it."""

    def policy(
        new: AlertSnapshot, others: Sequence[AlertSnapshot], now: datetime
    ) -> FoldPlan | None:
        return plan_fold(new, others, now, window_seconds)

    return policy


def subscriptions_wanting(
    subscriptions: Iterable[Subscription],
    before: str | None,
    after: str,
    *,
    field: str | None = None,
    node_kind: str = "",
) -> list[tuple[Subscription, AlertEvent]]:
    """(subscription, event) for each active subscription this change should alert."""
    chosen = []
    for subscription in subscriptions:
        if subscription.disabled_at is not None:
            continue
        event = event_for(subscription.on_events, before, after, field=field, node_kind=node_kind)
        if event is not None:
            chosen.append((subscription, event))
    return chosen
