"""Dates and windows, pure: parsing instants and durations, and planning half-open UTC windows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exporter.errors import ConfigError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_NAME_STAMP = "%Y%m%dT%H%M%SZ"


def parse_instant(text: str, *, what: str) -> datetime:
    """``YYYY-MM-DD`` (UTC midnight) or an ISO datetime; naive means UTC. Returns aware UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is not a date; use YYYY-MM-DD or an ISO datetime such as "
            "2026-11-01T00:00:00Z."
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_duration(text: str, *, what: str) -> timedelta:
    """``1d``, ``12h``, ``30m``, ``45s``, ``2w`` or combinations such as ``1d12h``."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ConfigError(f"{what} {text!r} is not a duration; use e.g. 1d, 12h, 30m or 1d12h.")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{what} {text!r} must be longer than zero.")
    return timedelta(seconds=seconds)


def format_instant(dt: datetime) -> str:
    """The API's instant format: ``2026-11-01T00:00:00.000Z``."""
    utc = dt.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_api_instant(text: str) -> int:
    """Epoch milliseconds of an API timestamp; runs per record, so the usual shape is fast."""
    if len(text) == 24 and text[10] == "T" and text[23] == "Z" and text[19] == ".":
        days = _days_from_civil(int(text[0:4]), int(text[5:7]), int(text[8:10]))
        seconds = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
        return (days * 86400 + seconds) * 1000 + int(text[20:23])
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(milliseconds=1)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A half-open UTC interval [start, end): a job, a file and a manifest entry."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return (self.start - EPOCH) // timedelta(milliseconds=1)

    @property
    def end_ms(self) -> int:
        return (self.end - EPOCH) // timedelta(milliseconds=1)

    @property
    def name(self) -> str:
        """``2026-11-01`` for one aligned UTC day, else ``<start>_<end>`` stamps."""
        if self.end - self.start == DAY and self.start == _midnight(self.start):
            return self.start.strftime("%Y-%m-%d")
        return f"{self.start.strftime(_NAME_STAMP)}_{self.end.strftime(_NAME_STAMP)}"

    @property
    def interval(self) -> str:
        return f"{format_instant(self.start)}/{format_instant(self.end)}"

    def contains_ms(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms

    def halves(self) -> tuple[Window, Window]:
        """Split in the middle, on a whole second."""
        middle = self.start + timedelta(seconds=(self.end - self.start).total_seconds() // 2)
        return Window(self.start, middle), Window(middle, self.end)

    @classmethod
    def from_name(cls, name: str) -> Window:
        if "_" in name:
            first, second = name.split("_")
            start = datetime.strptime(first, _NAME_STAMP).replace(tzinfo=UTC)
            return cls(start, datetime.strptime(second, _NAME_STAMP).replace(tzinfo=UTC))
        start = datetime.strptime(name, "%Y-%m-%d").replace(tzinfo=UTC)
        return cls(start, start + DAY)


def _midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


def plan_windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """Windows aligned to multiples of ``size`` since the epoch, clipped to [start, end)."""
    if end <= start:
        raise ConfigError(f"The end {end.isoformat()} is not after the start {start.isoformat()}.")
    if size <= timedelta(0):
        raise ConfigError("The window size must be longer than zero.")
    step = size // timedelta(microseconds=1)
    index = ((start - EPOCH) // timedelta(microseconds=1)) // step
    windows = []
    while (edge := EPOCH + timedelta(microseconds=index * step)) < end:
        windows.append(Window(max(edge, start), min(edge + size, end)))
        index += 1
    return windows


def validate_range(start: datetime, end: datetime, *, now: datetime) -> None:
    """Reject ranges that cannot hold data, with the fix."""
    if start > now:
        raise ConfigError(
            f"--start {start:%Y-%m-%dT%H:%M:%SZ} is in the future: nothing has happened yet. "
            "Give a start in the past."
        )
    if end <= start:
        raise ConfigError(
            f"--end {end:%Y-%m-%dT%H:%M:%SZ} is not after --start {start:%Y-%m-%dT%H:%M:%SZ}; "
            "give an end later than the start."
        )
