"""One export from start to end: lock, connect, read the manifest, plan, run, sum up.

The lock is taken first and held for the whole run. Windowed datasets (conversations) are
planned window by window against their own watermark and fetched by one ``ExportRun``;
listings are snapshotted by one ``SnapshotRun`` beside it, through the same client, pool and
limiter. A dataset the OAuth client may not read fails alone. Every outcome ends in a
``Summary`` whose counts come from the manifest (what this run committed, what it kept to
resume), so they are right on every exit; the CLI prints it as the last line of stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.datasets import Dataset, Listing, Windowed, select
from exporter.datasets.base import denied_message
from exporter.engine import jobs
from exporter.engine.refresh import Refresher
from exporter.engine.scheduler import ExportRun, RunCounters, new_run_id
from exporter.engine.snapshot import SnapshotCounters, SnapshotRun
from exporter.engine.writer import FilesThread
from exporter.errors import (
    ApiError,
    ConfigError,
    ExportError,
    Interrupted,
    OutputError,
    PermissionDenied,
)
from exporter.org import claim_folder, not_an_api, retention_days
from exporter.plan import Batch, WorkItem, batch_work, jobs_for_budget, plan_work
from exporter.progress import Progress
from exporter.store.ledger import Ledger
from exporter.store.lock import RunLock
from exporter.store.manifest import Manifest, WindowRecord
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


class DatasetFigures(TypedDict):
    """One dataset in the summary: the files, records and bytes this run committed, its
    windows or snapshots that failed, whether it was denied, and ``ok``: committed by a run
    that went to its end, without failure or denial. A windowed dataset adds its watermark
    and its windows in the manifest by status."""

    files: int
    records: int
    bytes: int
    failed: int
    denied: bool
    ok: bool
    watermark: NotRequired[str | None]
    windows_by_status: NotRequired[dict[str, int]]


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did; ``status`` is ok, failed, denied, interrupted, quota_exhausted,
    stalled, unreachable, locked, auth_failed, bad_input or error."""

    status: str
    exit_code: int
    records: int = 0  # in the windows and snapshots this run committed
    windows: int = 0  # windows committed by this run
    skipped: int = 0
    provisional: int = 0
    snapshots: int = 0  # snapshot files committed by this run
    failed_windows: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()  # one line per dataset the OAuth client may not read
    repeats_dropped: int = 0
    kept_windows: int = 0  # unfinished, checkpointed for the next run to continue
    kept_jobs: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    seconds: float = 0.0
    watermark: str | None = None  # the first windowed dataset's; each one's is in ``datasets``
    windows_by_status: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, DatasetFigures] = field(default_factory=dict)
    # Per windowed dataset: records still going on (tracked) and what the refresh did.
    open_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    run_id: str | None = None  # the manifest's run_id of what this run wrote; None: no run

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_windows"] = list(self.failed_windows)
        data["denied"] = list(self.denied)
        return data


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


@dataclass(slots=True)
class _Outcome:
    """What the summary is made of, filled in as the run goes."""

    run_id: str
    manifest: Manifest | None = None
    windowed: list[Windowed] = field(default_factory=list)
    counters: RunCounters = field(default_factory=RunCounters)
    snapshots: SnapshotCounters = field(default_factory=SnapshotCounters)
    skipped: int = 0
    watermarks: dict[str, datetime] = field(default_factory=dict)
    refresher: Refresher | None = None
    started: bool = False  # whether any work began


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
    outcome = _Outcome(new_run_id())
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
    return _summarize(outcome, stopper, error, api, time.monotonic() - began)


async def _export(
    api: ApiClient,
    settings: Settings,
    request: ExportRequest,
    progress: Progress,
    stopper: Stopper,
    outcome: _Outcome,
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


def _summarize(
    outcome: _Outcome,
    stopper: Stopper,
    error: ExportError | None,
    api: ApiClient | None,
    seconds: float,
) -> Summary:
    manifest = outcome.manifest
    windowed = [r for d in outcome.windowed for r in (manifest.records(d.name) if manifest else [])]
    ours = [r for r in _all_records(manifest) if r.run_id == outcome.run_id]
    committed = [r for r in ours if r.status in ("complete", "provisional")]
    kept = [r for r in ours if r.status == "in-progress"]
    refreshed = outcome.refresher
    denied = {
        **(refreshed.denied if refreshed else {}),
        **outcome.counters.denied,
        **outcome.snapshots.denied,
    }
    status, code, message = _verdict(outcome, stopper, error, denied, committed, kept)
    stats = api.statistics() if api is not None else None
    watermark = next(iter(outcome.watermarks.values()), None)
    return Summary(
        status=status,
        exit_code=code,
        records=sum(r.records for r in committed),
        windows=sum(r.source != "listing" for r in committed),
        skipped=outcome.skipped,
        provisional=sum(r.status == "provisional" for r in committed),
        snapshots=sum(r.source == "listing" for r in committed),
        failed_windows=tuple(sorted(outcome.counters.failed + outcome.snapshots.failed)),
        denied=tuple(denied[name] for name in sorted(denied)),
        repeats_dropped=outcome.counters.repeats,
        kept_windows=len(kept),
        kept_jobs=len({r.job_id for r in kept}),
        requests=stats.requests if stats else 0,
        retries=stats.retries if stats else 0,
        rate_limited=stats.rate_limited if stats else 0,
        token_refreshes=stats.token_refreshes if stats else 0,
        seconds=round(seconds, 3),
        watermark=format_instant(watermark) if watermark else None,
        windows_by_status=dict(sorted(Counter(r.status for r in windowed).items())),
        datasets=_per_dataset(
            outcome, committed, denied, finished=not (error or stopper.requested)
        ),
        open_records=_open_records(manifest, outcome),
        error=message,
        run_id=outcome.run_id,
    )


def _open_records(manifest: Manifest | None, outcome: _Outcome) -> dict[str, dict[str, Any]]:
    """Per windowed dataset: the records still going on, tracked for the next run, and what
    this run's refresh did with those it had."""
    found: dict[str, dict[str, Any]] = {}
    counts = outcome.refresher.counts if outcome.refresher else {}
    for dataset in outcome.windowed:
        opened = manifest.opened(dataset.name) if manifest else {}
        entry: dict[str, Any] = {"tracked": sum(len(records) for records in opened.values())}
        if dataset.name in counts:
            entry.update(asdict(counts[dataset.name]))
        found[dataset.name] = entry
    return found


def _all_records(manifest: Manifest | None) -> list[WindowRecord]:
    if manifest is None:
        return []
    return [r for entity in manifest.entities() for r in manifest.records(entity)]


def _per_dataset(
    outcome: _Outcome, committed: list[WindowRecord], denied: dict[str, str], *, finished: bool
) -> dict[str, DatasetFigures]:
    """Per dataset this run committed, failed, was denied, or planned windows of."""
    manifest = outcome.manifest
    if manifest is None:
        return {}
    failed = outcome.counters.failed + outcome.snapshots.failed  # "name window: ..", "name: .."
    windowed = {d.name for d in outcome.windowed}
    found: dict[str, DatasetFigures] = {}
    for name in sorted({*manifest.entities(), *windowed, *denied}):
        ours = [r for r in committed if manifest.get(name, r.name) is r]
        lost = sum(line.startswith((f"{name} ", f"{name}:")) for line in failed)
        if not (ours or lost or name in denied or name in windowed):
            continue
        ok = finished and bool(ours) and not lost and name not in denied
        figures = DatasetFigures(files=len(ours), records=sum(r.records for r in ours),
                                 bytes=sum(r.bytes for r in ours), failed=lost,
                                 denied=name in denied, ok=ok)  # fmt: skip
        if name in windowed:
            watermark = outcome.watermarks.get(name)
            figures["watermark"] = format_instant(watermark) if watermark else None
            statuses = Counter(r.status for r in manifest.records(name))
            figures["windows_by_status"] = dict(sorted(statuses.items()))
        found[name] = figures
    return found


def _verdict(
    outcome: _Outcome,
    stopper: Stopper,
    error: ExportError | None,
    denied: dict[str, str],
    committed: list[WindowRecord],
    kept: list[WindowRecord],
) -> tuple[str, int, str | None]:
    kept_note = _kept_note(len(committed), kept)
    if error is not None:
        note = f" ({kept_note})" if outcome.started else ""
        return error.summary_status, error.exit_code, f"{error}{note}"
    if stopper.requested:
        if not outcome.started:
            what = f"Stopped by {stopper.signal_name} before anything was fetched; nothing to keep."
        else:
            what = (
                f"Stopped by {stopper.signal_name}: {kept_note}. Run the same command again "
                "to continue."
            )
        return "interrupted", Interrupted.exit_code, what
    if denied:
        return "denied", PermissionDenied.exit_code, None
    if outcome.counters.failed or outcome.snapshots.failed:
        return "failed", 1, None
    if outcome.counters.stalled:  # nothing is wrong but the service's pace: run again later
        stalled = "; ".join(f"{k}: {v}" for k, v in sorted(outcome.counters.stalled.items()))
        what = f"{stalled}; run the same command again later to continue ({kept_note})."
        return "stalled", jobs.JobStalled.exit_code, what
    return "ok", 0, None


def _kept_note(committed: int, kept: list[WindowRecord]) -> str:
    jobs_ = len({r.job_id for r in kept})
    unfinished = (
        f"{len(kept)} unfinished windows kept at their checkpoints, {jobs_} jobs left running "
        "for the next run to continue"
        if kept
        else "no unfinished window to keep"
    )
    return f"{committed} windows and snapshots committed this run; {unfinished}"


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
