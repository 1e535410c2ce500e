"""One export from start to end: lock, connect, read the manifest, plan, run, sum up.

The lock is taken first and held for the whole run. Windowed datasets (conversations) are
planned window by window against their own watermark and fetched by one ``ExportRun``;
listings are snapshotted by one ``SnapshotRun`` beside it, through the same client, pool and
limiter. A dataset the OAuth client may not read fails alone. Every outcome ends in a
``Summary`` (``exporter.summary``); the CLI prints it as the last line of stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.datasets import Dataset, Listing, Windowed, select
from exporter.datasets.base import denied_message
from exporter.engine import jobs
from exporter.engine.refresh import Refresher
from exporter.engine.scheduler import ExportRun, new_run_id
from exporter.engine.snapshot import SnapshotRun
from exporter.engine.writer import FilesThread
from exporter.errors import (
    ApiError,
    ConfigError,
    ExportError,
    OutputError,
    PermissionDenied,
)
from exporter.org import claim_folder, not_an_api, retention_days
from exporter.plan import Batch, WorkItem, batch_work, jobs_for_budget, plan_work
from exporter.progress import Progress
from exporter.store.ledger import Ledger
from exporter.store.lock import RunLock
from exporter.store.manifest import Manifest, WindowRecord
from exporter.summary import Outcome, Summary, summarize
from exporter.windows import EPOCH, format_instant, plan_slots

log = logging.getLogger(__name__)
DEFAULT_DATASETS = select("conversations")
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the windows holding [start, end) of the windowed datasets, a snapshot
    of each listing, and how to treat what is on disk.

    ``since_last``: start each windowed dataset at its earliest window not complete; ``start``
    is then where a folder with no window begins, and a bound it never starts before.
    ``lookback``: also export again the complete windows that end within it of where fetching
    starts (with ``since_last``) or of ``end`` (otherwise)."""

    start: datetime | None
    end: datetime
    force: bool = False
    lookback: timedelta | None = None
    since_last: bool = False
    datasets: tuple[Dataset, ...] = DEFAULT_DATASETS


@dataclass(slots=True)
class Stopper:
    """Lets a signal handler stop the run: no new work, open windows kept to resume."""

    requested: bool = False
    signal_name: str = ""
    _stop: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def attach(self, task: asyncio.Task[Any]) -> None:
        """Before any work starts, a stop cancels ``task`` (planning) at once."""
        self._stop = [lambda: _cancel(task)]

    def attach_work(self, *stops: Callable[[], None]) -> None:
        """Once work starts, a stop asks the work itself to end, keeping what it did."""
        self._stop = list(stops)
        if self.requested:
            self._fire()

    def stop(self, signal_name: str) -> None:
        if self.requested:
            return
        self.requested, self.signal_name = True, signal_name
        self._fire()

    def _fire(self) -> None:
        for stop in self._stop:
            stop()


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """One windowed dataset's decisions."""

    dataset: Windowed
    items: list[WorkItem]
    batches: list[Batch]
    watermark: datetime


async def export(
    settings: Settings,
    request: ExportRequest,
    *,
    progress: Progress,
    stopper: Stopper | None = None,
    estimate: bool = False,
    locked: bool = False,
) -> Summary:
    """Run one export and sum it up; errors become a Summary with their exit code.

    ``estimate``: count the records to fetch first (one cheap query per week), for progress.
    ``locked``: the caller holds the output folder's lock (``run``, for all its steps)."""
    began = time.monotonic()
    stopper = stopper or Stopper()
    outcome = Outcome(new_run_id())
    api: ApiClient | None = None
    error: ExportError | None = None
    try:
        out = settings.output.out_dir
        await asyncio.to_thread(make_output_dir, out)
        lock = contextlib.nullcontext() if locked else RunLock(out, outcome.run_id)
        with lock:
            async with ApiClient(settings.connection, settings.http) as api:
                await _export(api, settings, request, progress, stopper, outcome, estimate)
    except asyncio.CancelledError:
        if not stopper.requested:
            raise
        _uncancel()
    except ExportError as exc:
        error = exc
    except BaseExceptionGroup as group:
        error = _first_error(group)
    finally:
        progress.close()
    stats = api.statistics() if api is not None else None
    stopped_by = stopper.signal_name if stopper.requested else None
    return summarize(outcome, stopped_by, error, stats, time.monotonic() - began)


async def _export(
    api: ApiClient,
    settings: Settings,
    request: ExportRequest,
    progress: Progress,
    stopper: Stopper,
    outcome: Outcome,
    estimate: bool,
) -> None:
    manifest = outcome.manifest = await asyncio.to_thread(Manifest.load, settings.output.out_dir)
    outcome.windowed = [d for d in request.datasets if isinstance(d, Windowed)]
    for dataset in outcome.windowed:  # a range that cannot be planned fails before any request
        _range_start(request, manifest.records(dataset.name), dataset, _pruned(manifest, dataset))
    await claim_folder(api, settings.connection, manifest)
    listings = [d for d in request.datasets if isinstance(d, Listing)]
    plans = []
    retention = await retention_days(api) if outcome.windowed else None
    for dataset in outcome.windowed:
        try:
            plans.append(
                await plan_export(api, settings, request, manifest, dataset, retention=retention)
            )
        except PermissionDenied as exc:  # its watermark: this dataset fails, the others go on
            outcome.counters.denied[dataset.name] = denied_message(dataset, exc)
            log.error("%s", outcome.counters.denied[dataset.name])
    outcome.skipped = sum(i.action == "skip" for p in plans for i in p.items)
    outcome.watermarks = {p.dataset.name: p.watermark for p in plans}
    ledger = _ledgers(manifest, settings, outcome.run_id, request.datasets)
    batches = [b for p in plans for b in p.batches]
    files = FilesThread()
    try:
        run = ExportRun(settings, api, files, ledgers=ledger, watermarks=outcome.watermarks,
                        progress=progress)  # fmt: skip
        run.counters.denied.update(outcome.counters.denied)
        outcome.counters = run.counters
        snapshots = SnapshotRun(api, files, ledger, taken_at=datetime.now(UTC))
        outcome.snapshots = snapshots.counters
        refresher = outcome.refresher = Refresher(
            api, files, settings.jobs, ledger, now=datetime.now(UTC)
        )
        expected = await _expected_records(api, batches) if estimate and batches else None
        done = sum(i.resume.part_records for b in batches for i in b.items if i.resume)
        progress.start(records=expected, windows=sum(len(b.items) for b in batches), done=done)
        outcome.started = bool(batches or listings or any(manifest.opened(p.dataset.name)
                                                         for p in plans))  # fmt: skip
        async with asyncio.TaskGroup() as group:
            taking = group.create_task(snapshots.run(listings))
            refreshing = group.create_task(refresher.run([_refresh_work(p) for p in plans]))
            stopper.attach_work(run.stop, lambda: _cancel(taking), lambda: _cancel(refreshing))
            await run.run(batches)
    finally:
        files.close()  # even work whose await was cancelled is done after this


def _refresh_work(plan: DatasetPlan) -> tuple[Windowed, frozenset[str]]:
    """A dataset, and the windows this run fetches anyway: their open records need no refresh."""
    return plan.dataset, frozenset(item.name for item in plan.items if item.action != "skip")


def _ledgers(
    manifest: Manifest, settings: Settings, run_id: str, datasets: tuple[Dataset, ...]
) -> dict[str, Ledger]:
    compression = settings.output.compression
    return {
        d.name: Ledger(manifest, d.name, run_id=run_id, compression=compression) for d in datasets
    }


async def plan_export(
    api: ApiClient,
    settings: Settings,
    request: ExportRequest,
    manifest: Manifest,
    dataset: Windowed,
    *,
    retention: int | None = None,
) -> DatasetPlan:
    """Decide every window of ``dataset``, then batch them into as many jobs as the rate
    budget can use. ``retention``: the org's analytics retention in days, when known."""
    now = datetime.now(UTC)
    records = manifest.records(dataset.name)
    pruned = _pruned(manifest, dataset)
    start, redo_after = _range_start(request, records, dataset, pruned)
    if pruned is not None and _before_pruned(request, pruned):
        log.warning(
            "%s: the windows before %s were pruned from this folder: exporting from there "
            "(--force exports the pruned days again).", dataset.name, format_instant(pruned),
        )  # fmt: skip
    if start is not None and retention is not None:
        start = _within_retention(start, now, retention, dataset)
    slots = plan_slots(start, request.end, settings.jobs.window, now=now) if start else []
    watermark = await _watermark(api, dataset)  # its headers announce the budget too
    round_trip_s = api.statistics().last_round_trip_s  # the watermark's, on the wire
    on_disk = await asyncio.to_thread(_file_sizes, settings.output.out_dir, records)
    plan = plan_work(
        slots,
        records,
        watermark=watermark,
        on_disk=on_disk,
        compression=settings.output.compression,
        force=request.force,
        redo_after=redo_after,
    )
    for warning in plan.warnings:
        log.warning("%s: %s", dataset.name, warning)
    jobs_ = settings.jobs
    per_minute = api.limiter.statistics().allowed_per_minute
    count = jobs_for_budget(per_minute, round_trip_s, most=jobs_.max_concurrent_jobs)
    log.debug("%d jobs for %d requests/min at a %.3f s round trip", count, per_minute, round_trip_s)
    batches = batch_work(dataset, plan.items, jobs=count, max_span=jobs_.max_job_span)
    return DatasetPlan(dataset, plan.items, batches, watermark)


def _within_retention(start: datetime, now: datetime, days: int, dataset: Windowed) -> datetime:
    """``start``, moved up to the org's retention with a warning: older windows can only come
    back empty, and would be recorded complete as if they held nothing."""
    oldest = now - timedelta(days=days)
    if start >= oldest:
        return start
    log.warning(
        "%s: %s is older than the org's %d-day analytics retention: exporting from %s (the "
        "API holds nothing before it).", dataset.name, format_instant(start), days,
        format_instant(oldest),
    )  # fmt: skip
    return oldest


def _range_start(
    request: ExportRequest,
    records: list[WindowRecord],
    dataset: Windowed,
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
        if pruned is None or not _before_pruned(request, pruned):
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
    first = request.start or (_ms_instant(records[0].start_ms) if records else None)
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
    return None if cursor is None else _ms_instant(cursor)


def _pruned(manifest: Manifest, dataset: Windowed) -> datetime | None:
    mark = manifest.pruned_before(dataset.name)
    return None if mark is None else _ms_instant(mark)


def _before_pruned(request: ExportRequest, pruned: datetime) -> bool:
    """Whether an explicit --start (no --since-last, no --force) is moved up to ``pruned``."""
    if request.since_last or request.force or request.start is None:
        return False
    return request.start < pruned


def _ms_instant(ms: int) -> datetime:
    return EPOCH + ms * _MS


async def _watermark(api: ApiClient, dataset: Windowed) -> datetime:
    try:
        return await jobs.data_availability(api, dataset.api)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise not_an_api(exc.url) from exc


def _file_sizes(out: Path, records: list[WindowRecord]) -> dict[str, int]:
    sizes = {}
    for record in records:
        if record.file:
            try:
                sizes[record.file] = (out / record.file).stat().st_size
            except OSError:
                continue
    return sizes


async def _expected_records(api: ApiClient, batches: list[Batch]) -> int | None:
    """The query's count over each batch, summed (whole touched days: a little high)."""
    try:
        return sum([await jobs.count_records(api, b.dataset.api, b.span) for b in batches])
    except (ApiError, PermissionDenied) as exc:
        log.info("could not estimate the records to fetch (%s); progress shows no total", exc)
        return None


def make_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot create the output folder {path} ({exc.strerror}); choose another --out or "
            "fix its permissions."
        ) from exc


def _first_error(group: BaseExceptionGroup[BaseException]) -> ExportError:
    leaves = list(_leaves(group))
    for exc in leaves:
        if isinstance(exc, ExportError):
            return exc
    raise group  # a bug, not an export error: let it show


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        elif not isinstance(exc, asyncio.CancelledError):
            found.append(exc)
    return found


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
