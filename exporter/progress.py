"""Progress for people: records against the plan's estimate, with a rate and time left.

A bar on a terminal, a log line every ``LOG_EVERY_S`` seconds otherwise (cron, pipes), or
nothing. The estimate is the sync query's ``totalHits`` over the windows to fetch, so the
count may end a little above or below it; numbers are printed plainly.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol

from tqdm import tqdm

log = logging.getLogger(__name__)
LOG_EVERY_S = 10.0


class Progress(Protocol):
    def start(self, *, records: int | None, windows: int, done: int = 0) -> None:
        """``records`` expected in all (None: unknown), ``done`` of them already on disk."""

    def advance(self, records: int) -> None: ...
    def windows_done(self, count: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    """Reports nothing (--no-progress, tests)."""

    def start(self, *, records: int | None, windows: int, done: int = 0) -> None: ...
    def advance(self, records: int) -> None: ...
    def windows_done(self, count: int) -> None: ...
    def close(self) -> None: ...


class BarProgress:
    """A tqdm bar over records, with windows done in its postfix."""

    def __init__(self) -> None:
        self._bar: tqdm[None] | None = None
        self._windows = 0
        self._done = 0

    def start(self, *, records: int | None, windows: int, done: int = 0) -> None:
        self._windows = windows
        self._bar = tqdm(
            total=max(records, done) if records is not None else None,
            initial=done,
            unit=" records",
            unit_scale=False,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self._show_windows()

    def advance(self, records: int) -> None:
        if self._bar is not None:
            if self._bar.total is not None and self._bar.n + records > self._bar.total:
                self._bar.total = self._bar.n + records  # the estimate was low
            self._bar.update(records)

    def windows_done(self, count: int) -> None:
        self._done += count
        self._show_windows()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _show_windows(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"windows {self._done}/{self._windows}")


class LogProgress:
    """A log line every LOG_EVERY_S seconds: records of the estimate, rate, time left."""

    def __init__(self) -> None:
        self._expected: int | None = None
        self._windows = self._windows_done = 0
        self._records = self._initial = 0
        self._started = self._last = time.monotonic()

    def start(self, *, records: int | None, windows: int, done: int = 0) -> None:
        self._expected, self._windows = records, windows
        self._records = self._initial = done
        self._started = self._last = time.monotonic()

    def advance(self, records: int) -> None:
        self._records += records
        if time.monotonic() - self._last >= LOG_EVERY_S:
            self._report()

    def windows_done(self, count: int) -> None:
        self._windows_done += count

    def close(self) -> None: ...

    def _report(self) -> None:
        self._last = time.monotonic()
        rate = (self._records - self._initial) / max(self._last - self._started, 1e-6)
        log.info("%s", describe(self._records, self._expected, rate, self._windows_done,
                                self._windows))  # fmt: skip


def describe(records: int, expected: int | None, rate: float, done: int, windows: int) -> str:
    """``12,345 of about 300,000 records (4%), 3/7 windows, 1,234 records/s, 4 min left``."""
    parts = [f"{records:,} records"]
    if expected:
        share = min(records / expected, 1.0)
        parts = [f"{records:,} of about {expected:,} records ({share:.0%})"]
    parts += [f"{done}/{windows} windows", f"{rate:,.0f} records/s"]
    if expected and rate > 0 and expected > records:
        parts.append(f"about {_duration((expected - records) / rate)} left")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def show_size(count: int) -> str:
    """``12.3 MB``: bytes as people read them (decimal units, as disks and buckets count)."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def choose_progress(enabled: bool, *, bar: bool = True) -> Progress:
    """A bar on a terminal (unless ``bar`` is False: JSON logs), log lines otherwise; nothing
    when disabled."""
    if not enabled:
        return NoProgress()
    return BarProgress() if bar and sys.stderr.isatty() else LogProgress()
