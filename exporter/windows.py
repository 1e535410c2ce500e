"""Dates and windows, pure: parsing instants and durations, and planning half-open UTC windows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exporter.errors import ConfigError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
_MS = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)
_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_FORMS = "a whole number of w, d, h, m or s, such as 1d, 12h, 30m, 45s, 2w or 1d12h"
_NAME_STAMP = "%Y%m%dT%H%M%S"
_NAME_DAY = "%Y-%m-%d"


def parse_instant(text: str, *, what: str) -> datetime:
    """``YYYY-MM-DD`` (UTC midnight) or an ISO datetime; naive means UTC. Returns aware UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
        return as_utc(value)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"{what} {text!r} is not a date; use YYYY-MM-DD or an ISO datetime such as "
            "2026-11-01T00:00:00Z."
        ) from None


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_duration(text: str, *, what: str) -> timedelta:
    """``1d``, ``12h``, ``30m``, ``45s``, ``2w`` or combinations such as ``1d12h`` or ``1d 12h``."""
    compact = "".join(str(text).split()).lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ConfigError(f"{what} {text!r} is not a duration; use {DURATION_FORMS}.")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{what} {text!r} must be longer than zero; use {DURATION_FORMS}.")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ConfigError(f"{what} {text!r} is too long; use {DURATION_FORMS}.") from None


def format_instant(dt: datetime) -> str:
    """The API's instant format, ``2026-11-01T00:00:00.000Z`` (naive means UTC)."""
    u = as_utc(dt)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
        f"{u.microsecond // 1000:03d}Z"
    )


def parse_api_instant(text: str) -> int:
    """Epoch milliseconds of an API timestamp such as ``2026-11-01T13:45:12.345Z``.

    This runs once per record. Measured (timeit, Python 3.11): datetime's C parser plus a float
    timestamp, ~0.6 us, beats hand-slicing the string into int()s, ~1.9 us, and exact timedelta
    arithmetic, ~1.3 us; so the fast path is that. round(), not int(): the float product can land
    a hair below the whole millisecond (...692.9998); its error is far below 0.5 ms up to 9999.
    Other shapes (offsets, microseconds, naive = UTC) take the exact path, flooring to the ms.
    """
    if len(text) == 24 and text[19] == "." and text[23] == "Z":
        return round(datetime.fromisoformat(text).timestamp() * 1000)
    value = datetime.fromisoformat(text)
    return (as_utc(value) - EPOCH) // _MS


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A half-open UTC interval [start, end): a job, a file and a manifest entry."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # Names and file paths are UTC; normalise so a window given in +02:00 names the same file.
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    @property
    def start_ms(self) -> int:
        return (self.start - EPOCH) // _MS

    @property
    def end_ms(self) -> int:
        return (self.end - EPOCH) // _MS

    @property
    def name(self) -> str:
        """``2026-11-01`` for one aligned UTC day, else ``20261101T060000Z_20261101T120000Z``."""
        if self.end - self.start == DAY and self.whole_days:
            return self.start.strftime(_NAME_DAY)
        return f"{_stamp(self.start)}_{_stamp(self.end)}"

    @property
    def whole_days(self) -> bool:
        """Whether the window starts and ends on UTC midnights."""
        return self.start == _midnight(self.start) and self.end == _midnight(self.end)

    @property
    def interval(self) -> str:
        """The API's interval form: ``<start>/<end>`` in ``format_instant`` form."""
        return f"{format_instant(self.start)}/{format_instant(self.end)}"

    def contains_ms(self, ms: int) -> bool:
        """Whether epoch millisecond ``ms`` lies in [start, end)."""
        return self.start_ms <= ms < self.end_ms

    def halves(self) -> tuple[Window, Window]:
        """Split in the middle, on a whole second, so both halves keep second-resolution names."""
        whole = (self.start + (self.end - self.start) / 2).replace(microsecond=0)
        if whole <= self.start:
            whole += timedelta(seconds=1)
        if whole >= self.end:
            raise ValueError(f"window {self.name} holds no whole second to split on")
        return Window(self.start, whole), Window(whole, self.end)

    @classmethod
    def from_interval(cls, text: str) -> Window:
        """The window of an ``interval`` string (``<start>/<end>``); ValueError if it is not."""
        start, sep, end = text.partition("/")
        if not sep:
            raise ValueError(f"{text!r} is not an interval such as <start>/<end>")
        return cls(as_utc(datetime.fromisoformat(start)), as_utc(datetime.fromisoformat(end)))

    @classmethod
    def from_name(cls, name: str) -> Window:
        """The window a ``name`` came from; ValueError when it is not a window name."""
        if "_" in name:
            first, _, second = name.partition("_")
            window = cls(_unstamp(first), _unstamp(second))
        else:
            start = datetime.strptime(name, _NAME_DAY).replace(tzinfo=UTC)
            window = cls(start, start + DAY)
        if window.name != name:  # strptime is lenient (2026-11-1); names are exact
            raise ValueError(f"{name!r} is not a window name; that window is {window.name!r}")
        return window


def _midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


def _stamp(dt: datetime) -> str:
    """``20261101T060000Z``; a fraction, when there is one, keeps the name exact."""
    if not dt.microsecond:
        return f"{dt.strftime(_NAME_STAMP)}Z"
    fraction = f"{dt.microsecond:06d}"
    return f"{dt.strftime(_NAME_STAMP)}.{fraction[:3] if fraction.endswith('000') else fraction}Z"


def _unstamp(text: str) -> datetime:
    if not text.endswith("Z"):
        raise ValueError(f"{text!r} is not a window stamp such as 20261101T060000Z")
    body = text[:-1]
    form = f"{_NAME_STAMP}.%f" if "." in body else _NAME_STAMP
    return datetime.strptime(body, form).replace(tzinfo=UTC)


def plan_windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """Windows aligned to multiples of ``size`` since the epoch, clipped to [start, end).

    Alignment to the epoch makes one-day windows UTC days, and the same window for the same
    instant on every run, whatever the start: files from earlier runs line up with new ones.
    """
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ConfigError(
            f"The end {format_instant(end)} is not after the start {format_instant(start)}; "
            "give an end later than the start."
        )
    if size < timedelta(seconds=1):
        raise ConfigError(f"The window size {size} is shorter than one second; use e.g. 1d or 6h.")
    step = size // _US
    index = ((start - EPOCH) // _US) // step
    windows = []
    while (edge := EPOCH + timedelta(microseconds=index * step)) < end:
        windows.append(Window(max(edge, start), min(edge + size, end)))
        index += 1
    return windows


@dataclass(frozen=True, slots=True)
class Slot:
    """A planned window: the whole aligned window (its name, file and manifest key) and the
    part of it a run can cover, which is all of it unless the window holds ``now``."""

    whole: Window
    covered: Window

    @property
    def name(self) -> str:
        return self.whole.name

    @property
    def full(self) -> bool:
        return self.covered == self.whole


def plan_slots(start: datetime, end: datetime, size: timedelta, *, now: datetime) -> list[Slot]:
    """The aligned windows that hold any of [start, end), each covered up to ``now`` at most.

    Files always hold whole windows (UTC days by default): a start or end inside a window
    selects that whole window, so a day's file never shrinks to a fragment of a later run's
    range. Only the window holding ``now`` is cut short, and stays provisional until it
    closes. Windows that have not begun by ``now`` are left out.
    """
    plan_windows(start, end, size)  # the same checks: end after start, size of a second
    slots = []
    edge = _align_down(start, size)
    while edge < min(as_utc(end), now):
        whole = Window(edge, edge + size)
        slots.append(Slot(whole, whole if whole.end <= now else Window(edge, now)))
        edge = whole.end
    return slots


def _align_down(moment: datetime, size: timedelta) -> datetime:
    step = size // _US
    return EPOCH + timedelta(microseconds=((as_utc(moment) - EPOCH) // _US) // step * step)


def validate_range(start: datetime, end: datetime, *, now: datetime) -> None:
    """Reject ranges that cannot hold data, each with the fix; an end after ``now`` is fine.

    A future start is checked first: with a start in the future the order of start and end is
    beside the point, and "nothing has happened yet" is the fix the user needs.
    """
    if start > now:
        raise ConfigError(
            f"--start {show_instant(start)} is in the future: nothing has happened yet. Give a "
            f"start before now ({show_instant(now)})."
        )
    if end <= start:
        raise ConfigError(
            f"--end {show_instant(end)} is not after --start {show_instant(start)}; give an end "
            "later than the start (the end is exclusive)."
        )


def show_instant(dt: datetime) -> str:
    """A date when the instant is UTC midnight, else a second-resolution UTC datetime."""
    u = as_utc(dt)
    return u.strftime(_NAME_DAY) if u == _midnight(u) else u.strftime("%Y-%m-%dT%H:%M:%SZ")
