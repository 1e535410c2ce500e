"""Window planning and date parsing (pure; property-tested with Hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.errors import ConfigError
from exporter.windows import (
    EPOCH,
    Window,
    format_instant,
    parse_api_instant,
    parse_duration,
    parse_instant,
    plan_windows,
    validate_range,
)

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
sizes = st.integers(min_value=60, max_value=10 * 86400).map(lambda s: timedelta(seconds=s))


@given(instants, st.integers(min_value=1, max_value=40 * 86400), sizes)
def test_windows_cover_the_range_exactly_once(start, length_s, size) -> None:
    """Windows tile [start, end) with no gap and no overlap, each at most one size long."""
    end = start + timedelta(seconds=length_s)
    windows = plan_windows(start, end, size)
    assert windows[0].start == start and windows[-1].end == end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
    assert all(w.start < w.end and w.end - w.start <= size for w in windows)


@given(instants.map(lambda d: d.replace(microsecond=0)), sizes)
def test_window_names_round_trip(start, size) -> None:
    """Every window's name parses back to the same window; halves partition it."""
    window = plan_windows(start, start + size, size)[0]
    assert Window.from_name(window.name) == window
    first, second = window.halves()
    assert first.start == window.start and second.end == window.end and first.end == second.start


@given(instants)
def test_fast_instant_parse_agrees_with_datetime(moment) -> None:
    """The per-record fast path gives the same epoch ms as datetime arithmetic."""
    text = format_instant(moment)
    assert parse_api_instant(text) == (moment - EPOCH) // timedelta(milliseconds=1)


def test_one_day_windows_are_utc_days_named_by_date() -> None:
    """Day windows align to UTC midnight and are named YYYY-MM-DD; clipped ones by stamps."""
    start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    names = [w.name for w in plan_windows(start, start + timedelta(days=2), timedelta(days=1))]
    assert names == [
        "20261101T060000Z_20261102T000000Z",
        "2026-11-02",
        "20261103T000000Z_20261103T060000Z",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00+02:00", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T10:00:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T10:00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
    ],
)
def test_instants_parse_to_utc(text, expected) -> None:
    """Dates, offsets, Z and naive datetimes all become aware UTC instants."""
    assert parse_instant(text, what="--start") == expected


def test_bad_dates_and_durations_name_the_flag() -> None:
    """Unparseable input is a ConfigError naming the flag and the accepted forms."""
    with pytest.raises(ConfigError, match=r"--start.*YYYY-MM-DD"):
        parse_instant("2026-13-01", what="--start")
    with pytest.raises(ConfigError, match=r"--lookback.*1d"):
        parse_duration("soon", what="--lookback")
    assert parse_duration("1d12h", what="x") == timedelta(hours=36)


def test_impossible_ranges_are_refused() -> None:
    """End before start, and a start in the future, are refused with the fix."""
    now = datetime(2026, 11, 25, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not after"):
        validate_range(now - timedelta(days=1), now - timedelta(days=2), now=now)
    with pytest.raises(ConfigError, match="future"):
        validate_range(now + timedelta(days=1), now + timedelta(days=2), now=now)
