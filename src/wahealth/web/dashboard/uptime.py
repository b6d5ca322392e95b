"""A node's uptime over a window, computed from its status transitions.

Between two transitions a node is in the status the first one went to. Time before the
first known status (a node added during the window, or history pruned) is not counted
either way: the shares are of the time whose status we know, and `known` says how much
of the window that is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class Change(Protocol):
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Uptime:
    """Shares (0..1) of the known time a node was not BLOCKED, and AVAILABLE."""

    label: str
    known: float  # share of the window whose status is known
    not_blocked: float | None
    available: float | None


WINDOWS = (("24 h", timedelta(hours=24)), ("7 d", timedelta(days=7)), ("30 d", timedelta(days=30)))


def uptime(
    label: str, start: datetime, end: datetime, prior: str | None, changes: Sequence[Change]
) -> Uptime:
    """Uptime over [start, end]; `prior` is the status before the oldest of `changes`
    (oldest first, any of them may be before `start`)."""
    seconds = {"AVAILABLE": 0.0, "LIMITED": 0.0, "BLOCKED": 0.0}
    current = prior if prior is not None else (changes[0].before if changes else None)
    cursor = start
    for change in changes:
        at = min(max(change.occurred_at, start), end)
        if at > cursor and current is not None:
            _add(seconds, current, (at - cursor).total_seconds())
        cursor = max(cursor, at)
        current = change.after
    if current is not None and end > cursor:
        _add(seconds, current, (end - cursor).total_seconds())
    known = sum(seconds.values())
    window = (end - start).total_seconds()
    if known <= 0:
        return Uptime(label, 0.0, None, None)
    return Uptime(
        label,
        min(1.0, known / window) if window > 0 else 0.0,
        (known - seconds["BLOCKED"]) / known,
        seconds["AVAILABLE"] / known,
    )


def _add(seconds: dict[str, float], status: str, span: float) -> None:
    # Statuses we do not know count as LIMITED, as the overall rule treats them.
    seconds[status if status in seconds else "LIMITED"] += span


def uptimes(now: datetime, prior: str | None, changes: Sequence[Change]) -> list[Uptime]:
    """Uptime over each of `WINDOWS` ending now, from the changes of the longest one."""
    return [uptime(label, now - span, now, prior, changes) for label, span in WINDOWS]
