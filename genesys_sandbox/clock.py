"""The sandbox's one clock: monotonic seconds for expiry and rate windows, and the wall time
derived from them, so that a test moving a fake clock moves token, job and availability time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SandboxClock:
    """Monotonic ``now()`` from a source (the event loop's ``time`` by default), anchored to UTC."""

    def __init__(self, source: Callable[[], float]) -> None:
        self._source = source
        self._anchor_mono = source()
        self._anchor_wall = datetime.now(UTC)

    def now(self) -> float:
        return self._source()

    @property
    def started(self) -> float:
        """The monotonic instant the sandbox started at."""
        return self._anchor_mono

    def wall(self, at: float | None = None) -> datetime:
        """UTC wall time at monotonic instant ``at`` (default: now)."""
        moment = self._source() if at is None else at
        return self._anchor_wall + timedelta(seconds=moment - self._anchor_mono)

    def at(self, wall: datetime) -> float:
        """The monotonic instant of UTC wall time ``wall`` (the inverse of ``wall``)."""
        return self._anchor_mono + (wall - self._anchor_wall).total_seconds()


class ManualClock:
    """A clock source that only moves when told to: ``Sandbox(settings, clock=ManualClock())``."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = start

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds
