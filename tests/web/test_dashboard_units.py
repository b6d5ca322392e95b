"""The dashboard's pure parts: uptime from transitions, and the session cookie's life."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from wahealth.web.dashboard.render import age, percent, target
from wahealth.web.dashboard.session import SessionCodec
from wahealth.web.dashboard.uptime import uptime, uptimes

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Change:
    occurred_at: datetime
    before: str | None
    after: str


def _hours(n: float) -> datetime:
    return NOW - timedelta(hours=n)


def test_uptime_counts_each_status_from_its_transition_to_the_next() -> None:
    changes = [
        Change(_hours(100), None, "AVAILABLE"),
        Change(_hours(20), "AVAILABLE", "BLOCKED"),
        Change(_hours(14), "BLOCKED", "LIMITED"),
        Change(_hours(8), "LIMITED", "AVAILABLE"),
    ]
    day = uptime("24 h", _hours(24), NOW, None, changes)
    # 4 h AVAILABLE, 6 h BLOCKED, 6 h LIMITED, 8 h AVAILABLE.
    assert day.known == 1.0
    assert day.not_blocked == pytest.approx(18 / 24)
    assert day.available == pytest.approx(12 / 24)
    week, month = uptimes(NOW, None, changes)[1:]
    # Known only since the first report, 100 h ago.
    assert week.known == pytest.approx(100 / 168)
    assert week.not_blocked == pytest.approx(94 / 100)
    assert month.known == pytest.approx(100 / 720)


def test_uptime_starts_from_the_status_before_the_window() -> None:
    assert uptime("24 h", _hours(24), NOW, "BLOCKED", []).not_blocked == 0.0
    one = [Change(_hours(6), "BLOCKED", "AVAILABLE")]
    # Prior unknown (history pruned): the first change's `before` says what it was.
    found = uptime("24 h", _hours(24), NOW, None, one)
    assert (found.known, found.not_blocked) == (1.0, pytest.approx(6 / 24))
    nothing = uptime("24 h", _hours(24), NOW, None, [])
    assert (nothing.known, nothing.not_blocked, nothing.available) == (0.0, None, None)
    # A status nobody knows counts as LIMITED: not BLOCKED, not AVAILABLE.
    odd = uptime("24 h", _hours(24), NOW, "THROTTLED", [])
    assert (odd.not_blocked, odd.available) == (1.0, 0.0)


def test_a_session_expires_and_another_key_cannot_open_it() -> None:
    clock = [1_000_000.0]
    key = os.urandom(32)
    codec = SessionCodec(key, session_seconds=3600, clock=lambda: clock[0])
    session = codec.start("demo", "digest", None)
    sealed = codec.seal(session)
    assert codec.open(sealed) == session
    assert "digest" not in sealed
    assert SessionCodec(os.urandom(32)).open(sealed) is None
    clock[0] += 3601
    assert codec.open(sealed) is None
    assert codec.open_login(codec.seal(session)) is None  # a session is no login form token
    assert codec.open(codec.seal_login("x")) is None
    with pytest.raises(ValueError, match="32 bytes"):
        SessionCodec(b"short")


def test_how_the_pages_write_ages_shares_and_targets() -> None:
    assert age(None) == "never"
    assert age(NOW - timedelta(seconds=30), NOW) == "30 s"
    assert age(NOW - timedelta(minutes=12), NOW) == "12 min"
    assert age(NOW - timedelta(hours=5), NOW) == "5 h"
    assert age(NOW - timedelta(days=3), NOW) == "3 d"
    assert percent(None) == "—"
    assert percent(0.99999) == "99.99 %"  # never rounded up to 100
    assert percent(1.0) == "100 %"
    assert target("https://user:pw@hooks.slack.com/services/T0/B0/XYZ") == (
        "https://hooks.slack.com/services/…"
    )
    assert target("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"
    assert target("https://x.example/?key=secret") == "https://x.example/…"
    assert target("https://x.example") == "https://x.example/"
