"""Progress for people: a bar on a terminal, periodic log lines otherwise, or nothing."""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol

from tqdm import tqdm

log = logging.getLogger("exporter")
LOG_EVERY_S = 10.0


class Progress(Protocol):
    def start(self, windows: int) -> None: ...
    def window_started(self, name: str) -> None: ...
    def advance(self, records: int) -> None: ...
    def window_done(self, name: str) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    """Reports nothing (--no-progress, tests)."""

    def start(self, windows: int) -> None: ...
    def window_started(self, name: str) -> None: ...
    def advance(self, records: int) -> None: ...
    def window_done(self, name: str) -> None: ...
    def close(self) -> None: ...


class BarProgress:
    """A tqdm bar over windows, with records and the current rate in its postfix."""

    def __init__(self) -> None:
        self._bar: tqdm[None] | None = None
        self._records = 0
        self._started = time.monotonic()

    def start(self, windows: int) -> None:
        self._bar = tqdm(total=windows, unit="window", file=sys.stderr, dynamic_ncols=True)

    def window_started(self, name: str) -> None: ...

    def advance(self, records: int) -> None:
        self._records += records
        if self._bar is not None:
            rate = self._records / max(time.monotonic() - self._started, 1e-6)
            self._bar.set_postfix(records=self._records, rate=f"{rate:,.0f}/s", refresh=False)
            self._bar.refresh()

    def window_done(self, name: str) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class LogProgress:
    """A log line every LOG_EVERY_S seconds and one per finished window (cron, pipes)."""

    def __init__(self) -> None:
        self._windows = 0
        self._done = 0
        self._records = 0
        self._started = self._last = time.monotonic()

    def start(self, windows: int) -> None:
        self._windows = windows

    def window_started(self, name: str) -> None: ...

    def advance(self, records: int) -> None:
        self._records += records
        if time.monotonic() - self._last >= LOG_EVERY_S:
            self._report()

    def window_done(self, name: str) -> None:
        self._done += 1
        log.info("window %s done (%d/%d windows)", name, self._done, self._windows)

    def close(self) -> None: ...

    def _report(self) -> None:
        self._last = time.monotonic()
        rate = self._records / max(self._last - self._started, 1e-6)
        log.info(
            "%d records, %d/%d windows, %.0f records/s",
            self._records,
            self._done,
            self._windows,
            rate,
        )


def choose_progress(enabled: bool) -> Progress:
    """A bar on a terminal, log lines otherwise; nothing when disabled."""
    if not enabled:
        return NoProgress()
    return BarProgress() if sys.stderr.isatty() else LogProgress()
