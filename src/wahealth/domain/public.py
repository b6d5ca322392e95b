"""What the public views (badges, status pages) show of a node, and its daily status bars.

A status page shows, like Atlassian Statuspage, one bar per UTC day: the worst status the
node had that day. It is computed from the node's stored transitions alone: the status
in force at a day's start (the last change before it) and every change during the day.
Before the node's first known status there is no data, and such days say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from wahealth.domain.model import NodeKind, Status

BAR_DAYS = 90


@dataclass(frozen=True, slots=True)
class PublicNode:
    """A node as a public view may show it: its name, never another space's ids."""

    node_id: str
    kind: NodeKind
    name: str  # the display number and verified name, the template's name and language
    status: Status | None  # None: no report yet
    error_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A stored transition of a node's overall status."""

    occurred_at: datetime
    before: str | None
    after: str


@dataclass(frozen=True, slots=True)
class DayBar:
    day: date
    status: Status | None  # the worst status of the day; None: no data


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def window_start(today: date, days: int = BAR_DAYS) -> datetime:
    """The first moment the bars cover (midnight UTC, `days - 1` days before today)."""
    first = today - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def _status(value: str | None) -> Status | None:
    return None if value is None else Status.from_wire(value)


def _worse(a: Status | None, b: Status) -> Status:
    return b if a is None or b.severity > a.severity else a


def daily_bars(
    changes: Sequence[StatusChange], *, today: date, days: int = BAR_DAYS
) -> list[DayBar]:
    """One bar per day, oldest first, ending today.

    `changes` are in time order and may start before the window: the last one before it
    gives the status at its start. Without one, the first change's `before` does (a
    node's first report has none: no data before it).
    """
    first = today - timedelta(days=days - 1)
    index = 0
    current = _status(changes[0].before) if changes else None
    bars = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        while index < len(changes) and changes[index].occurred_at < start:
            current = _status(changes[index].after)
            index += 1
        # The status the day starts with, unless a change replaces it at its first instant.
        replaced = index < len(changes) and changes[index].occurred_at == start
        worst = None if replaced else current
        # A change stamped after today (a clock ahead of ours) counts today.
        while index < len(changes) and (
            utc_day(changes[index].occurred_at) <= day or offset == days - 1
        ):
            current = _status(changes[index].after)
            if current is not None:
                worst = _worse(worst, current)
            index += 1
        bars.append(DayBar(day, worst))
    return bars
