"""Decide, without I/O, what a run must do for each window: skip, resume, fetch by job or by query.

Inputs are the planned windows, what the manifest says was written before, and the datalake
watermark (``dataAvailabilityDate``). Jobs hold data only up to the watermark, so windows that end
after it come from the sync query and stay provisional until a later run passes them. Windows
then form batches: consecutive windows one job fetches together (see ``batch_work``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from exporter.datasets import Dataset, select
from exporter.datasets.base import Windowed
from exporter.errors import ConfigError
from exporter.store.manifest import Source, WindowRecord
from exporter.windows import EPOCH, Slot, Window

DEFAULT_DATASETS = select("conversations")
_MS = timedelta(milliseconds=1)

Action = Literal["skip", "fetch", "resume"]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the windows holding [start, end) of the datasets chosen by a range, a
    snapshot of each listing, and how to treat what is on disk.

    ``since_last``: start each ranged dataset at its earliest window not complete; ``start``
    is then where a folder with no window begins, and a bound it never starts before.
    ``lookback``: also export again the complete windows that end within it of where fetching
    starts (with ``since_last``) or of ``end`` (otherwise)."""

    start: datetime | None
    end: datetime
    force: bool = False
    lookback: timedelta | None = None
    since_last: bool = False
    datasets: tuple[Dataset, ...] = DEFAULT_DATASETS


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One window's decision; ``resume`` is the checkpoint to continue from, if any."""

    slot: Slot
    action: Action
    source: Source
    reason: str
    resume: WindowRecord | None = None

    @property
    def name(self) -> str:
        """The window's name: its file's and its manifest entry's."""
        return self.slot.name

    @property
    def window(self) -> Window:
        """What this run fetches of the window: all of it, or up to now."""
        return self.slot.covered


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive windows of one dataset fetched by one job (or one window by the query),
    written to one file each and committed together."""

    dataset: Windowed
    items: tuple[WorkItem, ...]

    @property
    def source(self) -> Source:
        return self.items[0].source

    @property
    def windows(self) -> list[Window]:
        return [item.window for item in self.items]

    @property
    def span(self) -> Window:
        """The interval the batch's job covers."""
        return Window(self.items[0].window.start, self.items[-1].window.end)

    @property
    def name(self) -> str:
        first, last = self.items[0].name, self.items[-1].name
        return first if len(self.items) == 1 else f"{first}..{last}"

    def afresh(self) -> Batch:
        """The same windows as a new job from the first page (after an expiry or a lost file)."""
        items = tuple(replace(item, action="fetch", resume=None) for item in self.items)
        return Batch(self.dataset, items)

    def alone(self) -> list[Batch]:
        """Each window as a batch of its own, from the start."""
        return [Batch(self.dataset, (item,)) for item in self.afresh().items]


@dataclass(frozen=True, slots=True)
class Plan:
    """Every window's decision, and warnings about what was found on disk."""

    items: list[WorkItem]
    warnings: list[str]


def plan_work(
    slots: Sequence[Slot],
    records: Sequence[WindowRecord],
    *,
    watermark: datetime,
    on_disk: Mapping[str, int],
    compression: str,
    force: bool = False,
    redo_after: datetime | None = None,
) -> Plan:
    """Decide every window; ``redo_after`` re-exports windows ending after it (--lookback).

    ``on_disk`` maps each recorded file (relative path) to its size on disk; a complete window
    whose file is missing or not its recorded size is exported again, with a warning.
    """
    items, warnings = [], []
    for slot in slots:
        existing = _inside(slot.whole, records)
        item = _decide(slot, existing, watermark=watermark, force=force, redo_after=redo_after)
        if item.action == "skip":
            damage = _damage(existing, on_disk)
            if damage:
                warnings.append(f"window {slot.name} is recorded complete, but {damage}")
                item = WorkItem(slot, "fetch", item.source, damage)
        items.append(item)
    other = sorted(
        {r.compression for i in items if i.action == "skip" for r in _inside(i.slot.whole, records)}
        - {compression}
    )
    if other:
        skipped = sum(i.action == "skip" for i in items)
        warnings.append(
            f"complete windows stored with {' and '.join(other)} compression are kept as they "
            f"are ({skipped} skipped), though output.compression is {compression} now; "
            "--force exports them again in the new format"
        )
    return Plan(items, warnings)


def _damage(existing: list[WindowRecord], on_disk: Mapping[str, int]) -> str | None:
    """Why the files of complete ``existing`` windows cannot be trusted, if they cannot."""
    for record in existing:
        size = on_disk.get(record.file) if record.file else None
        if size is None:
            return f"its file {record.file} is missing: exporting it again"
        if size != record.bytes:
            return (
                f"its file {record.file} holds {size} bytes, not the {record.bytes} recorded: "
                "exporting it again"
            )
    return None


def _inside(window: Window, records: Sequence[WindowRecord]) -> list[WindowRecord]:
    found = []
    for record in records:
        if record.end_ms <= window.start_ms or record.start_ms >= window.end_ms:
            continue
        if record.start_ms < window.start_ms or record.end_ms > window.end_ms:
            raise ConfigError(
                f"The output folder already holds window {record.name}, which straddles the "
                f"planned window {window.name}: it was written with another window size. Use "
                "the same --window as before, or a new --out folder."
            )
        found.append(record)
    return found


def _decide(
    slot: Slot,
    existing: list[WindowRecord],
    *,
    watermark: datetime,
    force: bool,
    redo_after: datetime | None,
) -> WorkItem:
    source: Source = "query" if slot.covered.end > watermark else "jobs"
    if force:
        return WorkItem(slot, "fetch", source, "--force")
    checkpoint = _resumable(slot, existing, source)
    if checkpoint is not None:  # within --lookback too: what a stop kept is never thrown away
        return WorkItem(slot, "resume", "jobs", "continue job from checkpoint", checkpoint)
    if redo_after is not None and slot.whole.end > redo_after:
        return WorkItem(slot, "fetch", source, "within --lookback")
    whole = slot.whole
    if existing and _tiles(whole, existing) and all(r.status == "complete" for r in existing):
        return WorkItem(slot, "skip", "jobs", "complete")
    if any(r.status == "provisional" for r in existing):
        why = "provisional, watermark passed" if source == "jobs" else "provisional, refresh"
        return WorkItem(slot, "fetch", source, why)
    if any(r.status == "failed" for r in existing):
        return WorkItem(slot, "fetch", source, "failed before")
    return WorkItem(slot, "fetch", source, "new" if not existing else "incomplete")


def _tiles(window: Window, records: list[WindowRecord]) -> bool:
    """Whether the records cover the window exactly, end to end."""
    cursor = window.start_ms
    for record in sorted(records, key=lambda r: r.start_ms):
        if record.start_ms != cursor:
            return False
        cursor = record.end_ms
    return cursor == window.end_ms


def _resumable(slot: Slot, existing: list[WindowRecord], source: Source) -> WindowRecord | None:
    if source != "jobs" or len(existing) != 1:
        return None
    record = existing[0]
    same = record.name == slot.name and (record.start_ms, record.end_ms) == (
        slot.covered.start_ms,
        slot.covered.end_ms,
    )
    return record if same and record.status == "in-progress" and record.job_id else None


# A results page (about 5 MB) takes a small request's round trip plus its transfer and parsing.
PAGE_EXTRA_S = 0.25
# Cursors beyond the estimate: page times vary, and jobs that end early leave the others to
# keep the budget busy.
CURSOR_HEADROOM = 1.5


def jobs_for_budget(per_minute: int, round_trip_s: float, most: int) -> int:
    """How many jobs (one cursor each, read page by page) keep a ``per_minute`` budget busy.

    A cursor sends its next page request when the last page arrives, so it manages about one
    request per page time. Jobs beyond what the budget needs buy nothing and cost requests:
    each adds a submit, a poll, a delete and a partial last page (measured at 300/min: seven
    jobs over 14 days spent 5% of the budget on that). ``round_trip_s`` is a small request's
    round trip; the first one also sets up the connection, so it errs towards more cursors.
    No limit (0): ``most``.
    """
    if per_minute <= 0:
        return most
    page_s = round_trip_s + PAGE_EXTRA_S
    return min(most, max(1, math.ceil(per_minute / 60 * page_s * CURSOR_HEADROOM)))


def batch_work(
    dataset: Windowed, items: Sequence[WorkItem], *, jobs: int, max_span: timedelta
) -> list[Batch]:
    """Group what must be fetched into batches, one job each; skipped windows are left out.

    Each job costs a submit, a poll or more and a delete, and ends on a partial page: one job
    per window spends a tenth of a 300/min budget on that when a day holds 20 pages. So fresh
    job windows go in runs of consecutive windows, as evenly as the run allows, sized so about
    ``jobs`` jobs share the work (``jobs_for_budget``: each job is one cursor). No job spans
    more than ``max_span`` (the API documents no maximum job interval; a week bounds what a
    failed or expired job costs to redo). Windows resuming one job at one cursor form their
    batch again; query windows go alone, since the query serves at most 7 days and needs its
    own paging.
    """
    todo = [item for item in items if item.action != "skip"]
    fresh = sum(_groupable(item) for item in todo)
    size = max(1, math.ceil(fresh / max(1, jobs)))
    batches: list[Batch] = []
    for run in _runs(todo):
        if _groupable(run[0]):
            batches.extend(_even_groups(dataset, run, size, max_span))
        else:
            batches.append(Batch(dataset, tuple(run)))
    return batches


def _groupable(item: WorkItem) -> bool:
    return item.source == "jobs" and item.action == "fetch"


def _runs(items: list[WorkItem]) -> Iterator[list[WorkItem]]:
    """Maximal runs of consecutive windows that may share one job."""
    run: list[WorkItem] = []
    for item in items:
        if run and not _joins(run[-1], item):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _joins(last: WorkItem, item: WorkItem) -> bool:
    if last.window.end != item.window.start:
        return False
    if _groupable(last) and _groupable(item):
        return True
    # Resumed windows rejoin the job and cursor they were saved with, together.
    a, b = last.resume, item.resume
    return (
        a is not None
        and b is not None
        and (a.job_id, a.cursor, a.job_interval) == (b.job_id, b.cursor, b.job_interval)
    )


def _even_groups(
    dataset: Windowed, run: list[WorkItem], size: int, max_span: timedelta
) -> Iterator[Batch]:
    longest = max(item.window.end - item.window.start for item in run)
    per_span = max(1, int(max_span / longest))
    count = math.ceil(len(run) / min(size, per_span))
    for i in range(count):
        group = run[len(run) * i // count : len(run) * (i + 1) // count]
        yield Batch(dataset, tuple(group))


def range_start(
    request: ExportRequest,
    records: list[WindowRecord],
    dataset: Dataset,
    pruned: datetime | None = None,
) -> tuple[datetime | None, datetime | None]:
    """(first instant to export or None for nothing, instant after which complete windows are
    exported again). ``pruned``: the dataset's windows up to it were pruned; no run goes
    before it (an explicit --start is moved up to it with a warning, unless --force)."""
    if not request.since_last:
        if request.start is None:
            raise ConfigError(
                f"{dataset.name} needs --start (or --since-last); only snapshots need none."
            )
        redo = request.end - request.lookback if request.lookback else None
        if pruned is None or not before_pruned(request, pruned):
            return request.start, redo
        return (pruned, redo) if pruned < request.end else (None, None)  # all of it pruned
    resume_at = since_last_start(records, pruned)
    if resume_at is None:  # a folder with no window yet: the schedule's first run
        if request.start is None:
            raise ConfigError(
                f"--since-last found no {dataset.name} window in the output folder; add "
                "--start YYYY-MM-DD, the first day to export when the folder is new."
            )
        return request.start, None
    start = resume_at - request.lookback if request.lookback else resume_at
    # Never before the first day asked for, nor (without one) before the folder's first window,
    # nor before what was pruned: the lookback exports again, it does not reach back into days
    # never exported or removed on purpose.
    first = request.start or (ms_instant(records[0].start_ms) if records else None)
    start = max(b for b in (start, first, pruned) if b is not None)
    if start >= request.end:
        return None, None  # every window up to the end is complete
    return start, (start if request.lookback else None)


def since_last_start(
    records: list[WindowRecord], pruned: datetime | None = None
) -> datetime | None:
    """The start of the earliest window that is not complete (failed, provisional, unfinished,
    or missing between recorded ones); after the last window when all are; None when empty.

    ``pruned``: history up to it was pruned, so it counts as complete: windows ending by it are
    passed over, and a day missing after it is a gap."""
    cursor = None if pruned is None else (pruned - EPOCH) // _MS
    for record in records:  # sorted by start
        if cursor is not None and record.end_ms <= cursor:
            continue  # exported again by --force after a prune: behind the mark
        if cursor is not None and record.start_ms > cursor:
            break  # a gap: a window nobody recorded
        if record.status != "complete":
            cursor = record.start_ms
            break
        cursor = record.end_ms
    return None if cursor is None else ms_instant(cursor)


def before_pruned(request: ExportRequest, pruned: datetime) -> bool:
    """Whether an explicit --start (no --since-last, no --force) is moved up to ``pruned``."""
    if request.since_last or request.force or request.start is None:
        return False
    return request.start < pruned


def ms_instant(ms: int) -> datetime:
    return EPOCH + ms * _MS


def read_again(
    source: WindowRecord,
    own: WindowRecord | None,
    *,
    now: datetime,
    edited_within: timedelta,
    every: timedelta,
) -> str | None:
    """Why a window read by ids must be read (again) from ``source``, the window of the same
    name that names its records; None when it need not be.

    It is read when it never was, or did not finish; when its source's file changed since (a
    window exported again, a provisional one made complete); and, while records of its window
    are still edited (``edited_within`` of its end), once every ``every``."""
    if own is None:
        return "never read"
    if own.status not in ("complete", "provisional"):
        return f"{own.status} before"
    if own.derived_from != source.sha256:
        return "its source window changed"
    if own.status != source.status:
        return f"its source window is {source.status} now"
    recent = now - ms_instant(source.end_ms) < edited_within
    if recent and now - datetime.fromisoformat(own.updated) >= every:
        return "still edited: read again"
    return None
