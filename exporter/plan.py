"""Decide, without I/O, what a run must do for each window: skip, resume, fetch by job or by query.

Inputs are the planned windows, what the manifest says was written before, and the datalake
watermark (``dataAvailabilityDate``). Jobs hold data only up to the watermark, so windows that end
after it come from the sync query and stay provisional until a later run passes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from exporter.errors import ConfigError
from exporter.manifest import WindowRecord
from exporter.windows import Window, parse_api_instant

Source = Literal["jobs", "query"]
Action = Literal["skip", "fetch", "resume"]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One window's decision; ``resume`` is the checkpoint to continue from, if any."""

    window: Window
    action: Action
    source: Source
    reason: str
    resume: WindowRecord | None = None


def plan_work(
    windows: Sequence[Window],
    records: Sequence[WindowRecord],
    *,
    watermark: datetime,
    force: bool = False,
    redo_after: datetime | None = None,
) -> list[WorkItem]:
    """Decide every window; ``redo_after`` re-exports windows ending after it (--lookback)."""
    return [
        _decide(w, _inside(w, records), watermark=watermark, force=force, redo_after=redo_after)
        for w in windows
    ]


def _inside(window: Window, records: Sequence[WindowRecord]) -> list[WindowRecord]:
    found = []
    for record in records:
        start, end = parse_api_instant(record.start), parse_api_instant(record.end)
        if end <= window.start_ms or start >= window.end_ms:
            continue
        if start < window.start_ms or end > window.end_ms:
            raise ConfigError(
                f"The output folder already holds window {record.name}, which straddles the "
                f"planned window {window.name}: it was written with another window size. Use "
                "the same --window as before, or a new --out folder."
            )
        found.append(record)
    return found


def _decide(
    window: Window,
    existing: list[WindowRecord],
    *,
    watermark: datetime,
    force: bool,
    redo_after: datetime | None,
) -> WorkItem:
    source: Source = "query" if window.end > watermark else "jobs"
    if force:
        return WorkItem(window, "fetch", source, "--force")
    if redo_after is not None and window.end > redo_after:
        return WorkItem(window, "fetch", source, "within --lookback")
    if existing and _tiles(window, existing) and all(r.status == "complete" for r in existing):
        return WorkItem(window, "skip", "jobs", "complete")
    checkpoint = _resumable(window, existing, source)
    if checkpoint is not None:
        return WorkItem(window, "resume", "jobs", "continue job from checkpoint", checkpoint)
    if any(r.status == "provisional" for r in existing):
        why = "provisional, watermark passed" if source == "jobs" else "provisional, refresh"
        return WorkItem(window, "fetch", source, why)
    return WorkItem(window, "fetch", source, "new" if not existing else "incomplete")


def _tiles(window: Window, records: list[WindowRecord]) -> bool:
    """Whether the records cover the window exactly, end to end."""
    cursor = window.start_ms
    for record in sorted(records, key=lambda r: parse_api_instant(r.start)):
        if parse_api_instant(record.start) != cursor:
            return False
        cursor = parse_api_instant(record.end)
    return cursor == window.end_ms


def _resumable(window: Window, existing: list[WindowRecord], source: Source) -> WindowRecord | None:
    if source != "jobs" or len(existing) != 1:
        return None
    record = existing[0]
    same = record.name == window.name
    return record if same and record.status == "in-progress" and record.job_id else None


def lookback_start(end: datetime, lookback: timedelta | None) -> datetime | None:
    """The instant after which complete windows are exported again."""
    return None if lookback is None else end - lookback
