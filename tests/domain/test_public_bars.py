"""Daily bars: each day's worst status, checked against the intervals the statuses held."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from wahealth.domain.model import Status
from wahealth.domain.public import StatusChange, daily_bars, window_start

TODAY = date(2026, 12, 10)
END = datetime(2026, 12, 11, tzinfo=UTC)  # the end of today
STATUSES = st.sampled_from([s.value for s in Status])


def _held(changes: list[StatusChange], days: int) -> list[Status | None]:
    """Brute force: every interval a status was held, overlapped with every day."""
    first = window_start(TODAY, days)
    segments = []
    if changes and changes[0].before is not None:
        segments.append((datetime.min.replace(tzinfo=UTC), changes[0].occurred_at,
                         changes[0].before))  # fmt: skip
    for change, following in zip(changes, [*changes[1:], None], strict=False):
        until = following.occurred_at if following is not None else END
        # A zero-length segment still counts: the status was reported.
        segments.append((change.occurred_at, max(until, change.occurred_at), change.after))
    worst: list[Status | None] = []
    for offset in range(days):
        start = first + timedelta(days=offset)
        stop = start + timedelta(days=1)
        seen = [Status(s) for a, b, s in segments if a < stop and (b > start or a >= start)]
        worst.append(max(seen, key=lambda s: s.severity) if seen else None)
    return worst


@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.integers(min_value=0, max_value=200 * 24 * 60 - 1),
                st.integers(min_value=0, max_value=199).map(lambda day: day * 24 * 60),  # midnight
            ),
            STATUSES,
        ),
        max_size=25,
    ),
    st.one_of(st.none(), STATUSES),
    st.integers(min_value=1, max_value=100),
)
def test_each_day_is_the_worst_status_held_that_day(
    minutes: list[tuple[int, str]], first_before: str | None, days: int
) -> None:
    origin = END - timedelta(days=200)
    changes = []
    before = first_before
    for minute, status in sorted(minutes):
        changes.append(StatusChange(origin + timedelta(minutes=minute), before, status))
        before = status
    bars = daily_bars(changes, today=TODAY, days=days)
    assert [bar.day for bar in bars] == [TODAY - timedelta(days=days - 1 - i) for i in range(days)]
    assert [bar.status for bar in bars] == _held(changes, days)


def test_no_changes_no_data() -> None:
    assert {bar.status for bar in daily_bars([], today=TODAY)} == {None}


def test_a_change_stamped_after_today_counts_today() -> None:
    ahead = StatusChange(END + timedelta(hours=2), "AVAILABLE", "BLOCKED")
    bars = daily_bars([ahead], today=TODAY, days=3)
    assert [bar.status for bar in bars] == [Status.AVAILABLE, Status.AVAILABLE, Status.BLOCKED]


def test_a_change_at_midnight_is_the_days_status_from_its_start() -> None:
    midnight = datetime(2026, 12, 9, tzinfo=UTC)
    changes = [
        StatusChange(midnight - timedelta(hours=5), None, "BLOCKED"),
        StatusChange(midnight, "BLOCKED", "AVAILABLE"),
    ]
    bars = daily_bars(changes, today=TODAY, days=3)
    assert [bar.status for bar in bars] == [Status.BLOCKED, Status.AVAILABLE, Status.AVAILABLE]
