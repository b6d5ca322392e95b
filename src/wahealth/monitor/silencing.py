"""Silences and acknowledgements as the monitor applies them, and the alert a silence's end sends.

Pure rules first, then the thin loop:

- an alert whose node is covered by an active silence, or whose node is acknowledged
  and did not change status, is stored `suppressed` (visible, never delivered); it
  says why in `suppressed`;
- an acknowledgement holds while the node's overall status stays the one acknowledged:
  the first transition that changes it alerts as usual and drops the acknowledgement;
- when a silence ends (its time is up, or it was lifted) and nodes of its scope are
  still not AVAILABLE, each subscription that wants their status (or
  `SILENCE_ENDED`) gets one `SILENCE_ENDED` alert listing them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from wahealth.core.alerting import acknowledgement_json, silence_json
from wahealth.domain.records import (
    Acknowledgement,
    AlertEvent,
    AlertState,
    PlannedAlert,
    Silence,
    Subscription,
    Transition,
    iso_utc,
)
from wahealth.monitor.events import event_for
from wahealth.storage.errors import StorageError
from wahealth.storage.silences import SilencedNode, SilenceRepository

log = structlog.get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def suppression(
    transition: Transition,
    waba_id: str | None,
    silences: Iterable[Silence],
    acknowledgement: Acknowledgement | None,
    now: datetime,
) -> dict[str, Any] | None:
    """Why the alerts of this transition are not delivered, or None if they are."""
    for silence in silences:
        if silence.active_at(now) and silence.covers(
            transition.node_id, waba_id, transition.space_id
        ):
            return {"silence": silence_json(silence)}
    if acknowledgement is not None and holds(acknowledgement, transition):
        return {"acknowledgement": acknowledgement_json(acknowledgement)}
    return None


def holds(acknowledgement: Acknowledgement, transition: Transition) -> bool:
    """True while the node stays in the acknowledged status (a kept field's change too)."""
    if transition.field is not None:
        return True
    return transition.before == acknowledgement.status == transition.after


def suppressed(alerts: Iterable[PlannedAlert], why: Mapping[str, Any]) -> list[PlannedAlert]:
    """The alerts stored as suppressed, each saying why."""
    return [
        PlannedAlert(
            alert.subscription_id,
            alert.event,
            {**alert.payload, "suppressed": dict(why)},
            alert.alert_id,
            state=AlertState.SUPPRESSED,
        )
        for alert in alerts
    ]


def silence_ended_document(silence: Silence, nodes: Sequence[SilencedNode]) -> dict[str, Any]:
    """The `SILENCE_ENDED` alert: the silence, and its nodes still not AVAILABLE."""
    first = nodes[0]
    return {
        "event": AlertEvent.SILENCE_ENDED.value,
        "node_id": first.node_id,
        "node_kind": first.node_kind,
        "space_id": silence.space_id,
        "before": None,
        "after": first.status,
        "error_codes": list(first.error_codes),
        "errors": [],
        "additional_info": [],
        "cause": "silence",
        "occurred_at": iso_utc(silence.effective_end()),
        "transition_id": first.transition_id,
        "grouped": len(nodes),
        "silence": silence_json(silence),
        "nodes": [
            {
                "node_id": node.node_id,
                "node_kind": node.node_kind,
                "status": node.status,
                "error_codes": list(node.error_codes),
                "transition_id": node.transition_id,
            }
            for node in nodes
        ],
    }


def plan_silence_end(
    silence: Silence, nodes: Sequence[SilencedNode], subscriptions: Sequence[Subscription]
) -> list[PlannedAlert]:
    """One `SILENCE_ENDED` alert per subscription that wants any of these nodes' status."""
    planned = []
    for subscription in subscriptions:
        if subscription.disabled_at is not None:
            continue
        explicit = AlertEvent.SILENCE_ENDED in subscription.on_events
        wanted = [
            node
            for node in nodes
            if explicit or event_for(subscription.on_events, None, node.status) is not None
        ]
        if wanted:
            document = silence_ended_document(silence, wanted)
            planned.append(PlannedAlert(subscription.id, AlertEvent.SILENCE_ENDED.value, document))
    return planned


class SilenceWatch:
    """Plans the alerts of silences that ended; `run` is the loop, `step` one round."""

    def __init__(
        self,
        silences: SilenceRepository,
        *,
        poll_seconds: float,
        on_alerts: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._silences = silences
        self._poll = poll_seconds
        self._on_alerts = on_alerts
        self._clock = clock

    async def step(self) -> list[Silence]:
        """Handle every silence that ended by now; the silences handled."""
        ended = await self._silences.plan_ended(self._clock(), plan_silence_end)
        for silence in ended:
            log.info("silence ended", silence_id=silence.id, scope=silence.scope.value)
        if ended and self._on_alerts is not None:
            self._on_alerts()
        return ended

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except StorageError as exc:
                log.warning("silence round failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._poll)
