"""Plan each round of the fleet refresh: which nodes to fetch now, within Meta's call budget.

Pure functions over plain values, so the budget rule can be property-tested:

- a node is due when it was never checked or its `due_at` has come (the
  recorder sets it to the last fetch + `interval_seconds`; failures push it
  out with `retry_delay`);
- due nodes go oldest first (never checked first of all);
- Meta counts every sub-request of a batch as one call, so each node costs one
  call, and the calls of any 60 s never exceed `calls_per_minute`. The ledger
  holds what was spent and when (the time a round *finished*: a call may reach
  Meta at any moment until then, so that is the moment that must leave the
  window);
- a round takes at most `round_quota` nodes, spreading the budget over the
  minute instead of spending it in one burst.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
MAX_RETRY_DELAY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node that may need a refresh; `due_at` None means it was never checked."""

    node_id: str
    due_at: float | None


@dataclass(frozen=True, slots=True)
class Spend:
    """Graph calls counted against the budget at a moment (epoch seconds)."""

    at: float
    calls: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The nodes to fetch this round, and how long to wait before planning the next one."""

    node_ids: tuple[str, ...]
    wait_seconds: float


def _age_key(candidate: Candidate) -> tuple[bool, float, str]:
    return (candidate.due_at is not None, candidate.due_at or 0.0, candidate.node_id)


def prune(ledger: Iterable[Spend], now: float) -> tuple[Spend, ...]:
    """The spends still inside the window ending now."""
    return tuple(spend for spend in ledger if spend.at > now - WINDOW_SECONDS)


def calls_in_window(ledger: Iterable[Spend], now: float) -> int:
    """Calls spent in the 60 s ending now."""
    return sum(spend.calls for spend in prune(ledger, now))


def allowance(ledger: Iterable[Spend], now: float, calls_per_minute: int) -> int:
    """Calls that may be made now without exceeding the budget."""
    return max(0, calls_per_minute - calls_in_window(ledger, now))


def budget_frees_in(
    ledger: Iterable[Spend], now: float, calls_per_minute: int, wanted: int = 1
) -> float:
    """Seconds until `wanted` calls fit in the budget again (0 if they fit now)."""
    recent = sorted(prune(ledger, now), key=lambda spend: spend.at)
    room = calls_per_minute - sum(spend.calls for spend in recent)
    wanted = min(wanted, calls_per_minute)
    for spend in recent:
        if room >= wanted:
            break
        room += spend.calls
        if room >= wanted:
            return max(0.0, spend.at + WINDOW_SECONDS - now)
    return 0.0


def round_quota(calls_per_minute: int, round_seconds: float) -> int:
    """Nodes per round that spread the budget evenly over the minute (at least one)."""
    return max(1, math.ceil(calls_per_minute * round_seconds / WINDOW_SECONDS))


def oldest_due(candidates: Iterable[Candidate], now: float) -> list[Candidate]:
    """The due candidates, oldest first (never checked first, then by `due_at`, then id)."""
    due = [c for c in candidates if c.due_at is None or c.due_at <= now]
    return sorted(due, key=_age_key)


def plan_round(
    candidates: Sequence[Candidate],
    *,
    now: float,
    ledger: Sequence[Spend],
    calls_per_minute: int,
    round_seconds: float,
) -> Plan:
    """The oldest due nodes that the budget allows now, and when to plan again."""
    due = oldest_due(candidates, now)
    room = min(
        allowance(ledger, now, calls_per_minute), round_quota(calls_per_minute, round_seconds)
    )
    chosen = tuple(c.node_id for c in due[:room])
    wait = round_seconds
    if len(due) > len(chosen):
        spent = (*ledger, Spend(now, len(chosen)))
        wait = max(wait, budget_frees_in(spent, now, calls_per_minute))
    return Plan(chosen, wait)


def retry_delay(failures: int, interval_seconds: float) -> float:
    """How long a node that failed `failures` times in a row waits: doubling, capped.

    The first failure waits one interval (the normal schedule); a node that keeps
    failing is asked about at most once an hour (or once per interval, if longer).
    """
    cap = max(interval_seconds, MAX_RETRY_DELAY_SECONDS)
    return min(cap, interval_seconds * 2.0 ** min(max(failures, 1) - 1, 32))


@dataclass(frozen=True, slots=True)
class BudgetShortfall:
    """The budget cannot refresh every node once per interval: what it would take."""

    nodes: int
    interval_seconds: float
    required_calls_per_minute: int
    configured_calls_per_minute: int

    @property
    def pass_seconds(self) -> float:
        """How long one pass over every node takes at the configured budget."""
        return self.nodes / self.configured_calls_per_minute * WINDOW_SECONDS


def required_calls_per_minute(nodes: int, interval_seconds: float) -> int:
    """Calls per minute that refresh `nodes` nodes once every `interval_seconds`."""
    if nodes <= 0:
        return 0
    return math.ceil(nodes * WINDOW_SECONDS / interval_seconds)


def budget_shortfall(
    nodes: int, interval_seconds: float, calls_per_minute: int
) -> BudgetShortfall | None:
    """None when `calls_per_minute` refreshes every node within the interval, else the gap."""
    required = required_calls_per_minute(nodes, interval_seconds)
    if required <= calls_per_minute:
        return None
    return BudgetShortfall(nodes, interval_seconds, required, calls_per_minute)
