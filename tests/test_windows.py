"""Window planning and date parsing (pure; property-tested with Hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter.errors import ConfigError
from exporter.windows import (
    EPOCH,
    Window,
    format_instant,
    parse_api_instant,
    parse_duration,
    parse_instant,
    plan_slots,
    plan_windows,
    validate_range,
)

NOV1 = datetime(2026, 11, 1, tzinfo=UTC)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
ms_instants = instants.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
# Sizes from a second to ten days, most of which do not divide a day.
sizes = st.integers(min_value=1, max_value=10 * 86400).map(lambda s: timedelta(seconds=s))


@st.composite
def ranges(draw: st.DrawFn, starts: st.SearchStrategy[datetime] = instants) -> tuple:
    """(start, end, size) with up to ~60 windows, so each example stays fast."""
    start, size = draw(starts), draw(sizes)
    most_ms = min(40 * 86400, 60 * size.total_seconds()) * 1000
    length = timedelta(milliseconds=draw(st.integers(1, int(most_ms))))
    return start, start + length, size


@given(ranges())
def test_windows_cover_the_range_exactly_once(plan) -> None:
    """Windows tile [start, end) with no gap and no overlap, each at most one size long."""
    start, end, size = plan
    windows = plan_windows(start, end, size)
    assert windows[0].start == start and windows[-1].end == end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
    assert all(w.start < w.end and w.end - w.start <= size for w in windows)


@given(ranges())
def test_window_edges_are_multiples_of_the_size_since_the_epoch(plan) -> None:
    """Every inner edge lies on a multiple of the size since the epoch, so reruns line up."""
    size = plan[2]
    windows = plan_windows(*plan)
    for window in windows[1:]:
        assert (window.start - EPOCH) % size == timedelta(0)


@given(ranges(ms_instants), st.data())
def test_every_millisecond_falls_in_exactly_one_window(plan, data) -> None:
    """Any instant in [start, end) is contained by exactly one window; instants outside by none."""
    start, end, size = plan
    windows = plan_windows(start, end, size)
    inside = data.draw(st.integers(0, (end - start) // timedelta(milliseconds=1) - 1))
    ms = (start - EPOCH) // timedelta(milliseconds=1) + inside
    assert sum(w.contains_ms(ms) for w in windows) == 1
    end_ms = (end - EPOCH) // timedelta(milliseconds=1)
    assert not any(w.contains_ms(end_ms) for w in windows)


@given(ranges())
def test_window_names_round_trip_and_are_unique(plan) -> None:
    """Every window's name parses back to the same window, and no two names collide."""
    windows = plan_windows(*plan)
    assert [Window.from_name(w.name) for w in windows] == windows
    assert len({w.name for w in windows}) == len(windows)


@given(instants, st.integers(min_value=1001, max_value=40 * 86400 * 1000))
def test_halves_partition_the_window_on_a_whole_second(start, length_ms) -> None:
    """Both halves are non-empty, meet on a whole second near the middle, and cover the window."""
    window = Window(start, start + timedelta(milliseconds=length_ms))
    first, second = window.halves()
    assert first.start == window.start and second.end == window.end
    assert first.end == second.start and first.end.microsecond == 0
    middle = window.start + (window.end - window.start) / 2
    assert abs(first.end - middle) < timedelta(seconds=1)


def test_a_window_without_an_inner_second_cannot_be_halved() -> None:
    """A one-second window holds no whole second to split on: halves() refuses."""
    with pytest.raises(ValueError, match="no whole second"):
        Window(NOV1, NOV1 + timedelta(seconds=1)).halves()


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
@example(datetime(2039, 7, 6, 1, 24, 33, 693000, tzinfo=UTC))  # float product is ...692.9998
@example(datetime(2004, 3, 22, 1, 32, 9, 416000, tzinfo=UTC))  # float product is ...415.9999
def test_fast_instant_parse_agrees_with_datetime(moment) -> None:
    """The per-record fast path gives the same epoch ms as exact datetime arithmetic."""
    exact = (moment - EPOCH) // timedelta(milliseconds=1)
    assert parse_api_instant(format_instant(moment)) == exact


@given(instants, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_other_instant_shapes_take_the_exact_path(moment, offset_min) -> None:
    """Offsets and microseconds parse exactly, flooring to the millisecond."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_min)))
    exact = (moment - EPOCH) // timedelta(milliseconds=1)
    assert parse_api_instant(local.isoformat()) == exact
    assert parse_api_instant(moment.replace(tzinfo=None).isoformat()) == exact


def test_bad_api_instants_raise_value_error() -> None:
    """A malformed timestamp is a ValueError, on the fast path and off it."""
    for text in ("2026-13-01T00:00:00.000Z", "2026-11-01T25:00:00.000Z", "yesterday"):
        with pytest.raises(ValueError):
            parse_api_instant(text)


def test_format_instant_is_the_api_form() -> None:
    """Milliseconds, Z, UTC whatever the input zone; naive input is taken as UTC."""
    cet = timezone(timedelta(hours=1))
    assert format_instant(datetime(2026, 11, 1, 1, 0, 0, 123999, cet)) == "2026-11-01T00:00:00.123Z"
    assert format_instant(datetime(2026, 11, 1)) == "2026-11-01T00:00:00.000Z"


def test_one_day_windows_are_utc_days_named_by_date() -> None:
    """Day windows align to UTC midnight and are named YYYY-MM-DD; clipped ones by stamps."""
    start = NOV1 + timedelta(hours=6)
    names = [w.name for w in plan_windows(start, start + timedelta(days=2), timedelta(days=1))]
    assert names == [
        "20261101T060000Z_20261102T000000Z",
        "2026-11-02",
        "20261103T000000Z_20261103T060000Z",
    ]


def test_window_properties() -> None:
    """ms bounds, the API interval, half-open containment, and UTC normalisation."""
    window = Window(NOV1, NOV1 + timedelta(days=1))
    assert window.start_ms == 1_793_491_200_000 and window.end_ms == window.start_ms + 86_400_000
    assert window.interval == "2026-11-01T00:00:00.000Z/2026-11-02T00:00:00.000Z"
    assert window.contains_ms(window.start_ms) and not window.contains_ms(window.end_ms)
    plus2 = timezone(timedelta(hours=2))
    assert Window(NOV1.astimezone(plus2), window.end.astimezone(plus2)).name == "2026-11-01"


def test_sub_second_edges_keep_exact_names() -> None:
    """A start with milliseconds names its window exactly, and the name parses back."""
    start = NOV1 + timedelta(milliseconds=250)
    window = plan_windows(start, NOV1 + timedelta(hours=1), timedelta(hours=1))[0]
    assert window.name == "20261101T000000.250Z_20261101T010000Z"
    assert Window.from_name(window.name) == window


@pytest.mark.parametrize(
    "name", ["2026-11-1", "2026-11-01T00", "20261101T000000_20261102T000000Z", "x_y", "2026-02-30"]
)
def test_from_name_rejects_what_is_not_a_window_name(name) -> None:
    """Lenient or malformed names are refused rather than mapped to a nearby window."""
    with pytest.raises(ValueError):
        Window.from_name(name)


def test_windows_refuse_to_be_empty() -> None:
    """A window whose end is not after its start is a programming error."""
    with pytest.raises(ValueError):
        Window(NOV1, NOV1)


def test_plan_windows_refuses_empty_ranges_and_tiny_sizes() -> None:
    """end <= start and a sub-second size are ConfigErrors with the fix."""
    with pytest.raises(ConfigError, match="not after the start"):
        plan_windows(NOV1, NOV1, timedelta(days=1))
    with pytest.raises(ConfigError, match="shorter than one second"):
        plan_windows(NOV1, NOV1 + timedelta(days=1), timedelta(milliseconds=10))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", NOV1),
        (" 2026-11-01 ", NOV1),
        ("2026-11-01T10:00:00+02:00", NOV1 + timedelta(hours=8)),
        ("2026-11-01T10:00:00Z", NOV1 + timedelta(hours=10)),
        ("2026-11-01T10:00:00.250Z", NOV1 + timedelta(hours=10, milliseconds=250)),
        ("2026-11-01T10:00:00", NOV1 + timedelta(hours=10)),
        ("2026-11-01 10:00", NOV1 + timedelta(hours=10)),
    ],
)
def test_instants_parse_to_utc(text, expected) -> None:
    """Dates, offsets, Z, fractions and naive datetimes all become aware UTC instants."""
    parsed = parse_instant(text, what="--start")
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["2026-13-01", "01/11/2026", "", "tomorrow", "0001-01-01T00:00+01"]
)
def test_bad_dates_name_the_flag_and_the_forms(text) -> None:
    """Unparseable dates are one ConfigError naming the flag and the accepted forms."""
    with pytest.raises(ConfigError) as info:
        parse_instant(text, what="--start")
    assert str(info.value) == (
        f"--start {text!r} is not a date; use YYYY-MM-DD or an ISO datetime such as "
        "2026-11-01T00:00:00Z."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(hours=36)),
        ("1D 12H", timedelta(hours=36)),
        ("1h30m15s", timedelta(hours=1, minutes=30, seconds=15)),
    ],
)
def test_durations_parse(text, expected) -> None:
    """Each unit and combinations of them parse, in any case and with spaces between parts."""
    assert parse_duration(text, what="--window") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("soon", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("-1d", "is not a duration"),
        ("1x", "is not a duration"),
        ("d", "is not a duration"),
        ("", "is not a duration"),
        ("0d", "must be longer than zero"),
        ("0h0m", "must be longer than zero"),
        ("99999999999w", "is too long"),
    ],
)
def test_bad_durations_name_the_flag_and_the_forms(text, problem) -> None:
    """Garbage, zero, negative and huge durations are refused, naming the accepted forms."""
    with pytest.raises(ConfigError) as info:
        parse_duration(text, what="--lookback")
    message = str(info.value)
    assert message.startswith(f"--lookback {text!r} {problem}")
    assert "1d, 12h, 30m, 45s, 2w or 1d12h" in message


def test_impossible_ranges_are_refused_with_the_fix() -> None:
    """A start in the future, and an end not after the start, are one sentence each."""
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    with pytest.raises(ConfigError) as info:
        validate_range(now + timedelta(days=1), now + timedelta(days=2), now=now)
    assert str(info.value) == (
        "--start 2026-11-26T12:00:00Z is in the future: nothing has happened yet. Give a start "
        "before now (2026-11-25T12:00:00Z)."
    )
    with pytest.raises(ConfigError) as info:
        validate_range(NOV1 + timedelta(days=4), NOV1, now=now)
    assert str(info.value) == (
        "--end 2026-11-01 is not after --start 2026-11-05; give an end later than the start "
        "(the end is exclusive)."
    )
    with pytest.raises(ConfigError, match="not after"):
        validate_range(NOV1, NOV1, now=now)


def test_an_end_after_now_is_allowed() -> None:
    """The last window may reach past now: it is the fresh tail, exported provisionally."""
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    validate_range(NOV1, now + timedelta(days=1), now=now)
    validate_range(now, now + timedelta(seconds=1), now=now)


def test_whole_days_needs_both_edges_on_utc_midnight() -> None:
    """Only windows from one UTC midnight to another may ask jobs for start-day matching."""
    midnight = NOV1
    assert Window(midnight, midnight + timedelta(days=2)).whole_days
    assert not Window(midnight, midnight + timedelta(hours=6)).whole_days
    assert not Window(midnight + timedelta(hours=6), midnight + timedelta(days=1)).whole_days
    paris = timezone(timedelta(hours=1))
    assert not Window(datetime(2026, 11, 1, tzinfo=paris), midnight + timedelta(days=1)).whole_days


def test_slots_are_whole_windows_and_only_the_one_holding_now_is_cut() -> None:
    """A start or end inside a day selects the whole day; the day holding now is covered up
    to now (it stays provisional); days after now are left out."""
    now = datetime(2026, 11, 3, 7, 15, tzinfo=UTC)
    slots = plan_slots(NOV1 + timedelta(hours=6), now + timedelta(days=2), timedelta(days=1),
                       now=now)  # fmt: skip
    assert [s.name for s in slots] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [s.full for s in slots] == [True, True, False]
    assert slots[0].covered == Window(NOV1, NOV1 + timedelta(days=1))
    assert slots[2].covered == Window(NOV1 + timedelta(days=2), now)
    mid = plan_slots(NOV1, NOV1 + timedelta(hours=12), timedelta(days=1), now=now)
    assert [(s.name, s.full) for s in mid] == [("2026-11-01", True)]
