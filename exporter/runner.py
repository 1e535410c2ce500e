"""One export from start to end: lock, connect, read the watermark and manifest, plan, run, sum up.

The lock is taken first and held for the whole run. Every outcome, failures included, ends in
a ``Summary`` whose counts come from the manifest (what this run committed, what it kept to
resume), so they are right on every exit; the CLI prints it as the last line of stdout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.engine import jobs as analytics
from exporter.engine.scheduler import ENTITY, ExportRun, RunCounters, new_run_id
from exporter.errors import ApiError, ConfigError, ExportError, Interrupted, OutputError
from exporter.plan import Batch, WorkItem, batch_work, jobs_for_budget, plan_work
from exporter.progress import Progress
from exporter.store.ledger import Ledger
from exporter.store.lock import RunLock
from exporter.store.manifest import Manifest, WindowRecord
from exporter.windows import format_instant, plan_slots

log = logging.getLogger("exporter")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the windows holding [start, end), and how to treat those on disk.

    ``since_last``: start at the earliest window not complete (``start`` is then ignored).
    ``lookback``: also export again the complete windows that end within it of the start of
    the fetching (with ``since_last``) or of ``end`` (otherwise)."""

    start: datetime | None
    end: datetime
    force: bool = False
    lookback: timedelta | None = None
    since_last: bool = False


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did; ``status`` is ok, failed, interrupted, quota_exhausted, unreachable,
    locked, auth_failed, bad_input or error."""

    status: str
    exit_code: int
    records: int = 0  # in the windows this run committed
    windows: int = 0  # committed by this run
    skipped: int = 0
    provisional: int = 0
    failed_windows: tuple[str, ...] = ()
    repeats_dropped: int = 0
    kept_windows: int = 0  # unfinished, checkpointed for the next run to continue
    kept_jobs: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    seconds: float = 0.0
    watermark: str | None = None
    windows_by_status: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_windows"] = list(self.failed_windows)
        return data


@dataclass(slots=True)
class Stopper:
    """Lets a signal handler stop the run: no new work, open windows kept to resume."""

    requested: bool = False
    signal_name: str = ""
    _task: asyncio.Task[Any] | None = field(default=None, repr=False)
    _run: ExportRun | None = field(default=None, repr=False)

    def attach(self, task: asyncio.Task[Any]) -> None:
        self._task = task

    def attach_run(self, run: ExportRun) -> None:
        self._run = run
        if self.requested:
            run.stop()

    def stop(self, signal_name: str) -> None:
        if self.requested:
            return
        self.requested, self.signal_name = True, signal_name
        if self._run is not None:
            self._run.stop()  # the run ends itself, keeping its work
        elif self._task is not None:
            self._task.cancel()  # nothing fetched yet: stop planning at once


@dataclass(slots=True)
class _Outcome:
    """What the summary is made of, filled in as the run goes."""

    run_id: str
    manifest: Manifest | None = None
    counters: RunCounters = field(default_factory=RunCounters)
    skipped: int = 0
    watermark: datetime | None = None
    started: bool = False  # whether any batch began


async def export(
    settings: Settings,
    request: ExportRequest,
    *,
    progress: Progress,
    stopper: Stopper | None = None,
    estimate: bool = False,
) -> Summary:
    """Run one export and sum it up; errors become a Summary with their exit code.

    ``estimate``: count the records to fetch first (one cheap query per week), for progress."""
    began = time.monotonic()
    stopper = stopper or Stopper()
    outcome = _Outcome(new_run_id())
    api: ApiClient | None = None
    error: ExportError | None = None
    try:
        out = settings.output.out_dir
        await asyncio.to_thread(_make_dir, out)
        with RunLock(out, outcome.run_id):
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
    items, batches, watermark = await plan_export(api, settings, request, manifest)
    outcome.skipped = sum(item.action == "skip" for item in items)
    outcome.watermark = watermark
    ledger = Ledger(
        manifest, ENTITY, run_id=outcome.run_id, compression=settings.output.compression
    )
    run = ExportRun(settings, api, ledger, watermark=watermark, progress=progress)
    outcome.counters = run.counters
    stopper.attach_run(run)
    expected = await _expected_records(api, batches) if estimate and batches else None
    done = sum(item.resume.part_records for b in batches for item in b.items if item.resume)
    progress.start(records=expected, windows=sum(len(b.items) for b in batches), done=done)
    outcome.started = bool(batches)
    await run.run(batches)


async def plan_export(
    api: ApiClient, settings: Settings, request: ExportRequest, manifest: Manifest
) -> tuple[list[WorkItem], list[Batch], datetime]:
    """Decide every window, then batch them into as many jobs as the rate budget can use."""
    now = datetime.now(UTC)
    start, redo_after = _range_start(request, manifest.records(ENTITY))
    slots = plan_slots(start, request.end, settings.jobs.window, now=now) if start else []
    await api.tokens.get()  # mint first, so the request timed below is one API round trip
    clock = asyncio.get_running_loop().time
    began = clock()
    watermark = await _watermark(api)  # its headers announce the budget too
    round_trip_s = clock() - began
    records = manifest.records(ENTITY)
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
        log.warning("%s", warning)
    jobs = settings.jobs
    per_minute = api.limiter.statistics().allowed_per_minute
    count = jobs_for_budget(per_minute, round_trip_s, most=jobs.max_concurrent_jobs)
    log.debug("%d jobs for %d requests/min at a %.3f s round trip", count, per_minute, round_trip_s)
    batches = batch_work(plan.items, jobs=count, max_span=jobs.max_job_span)
    return plan.items, batches, watermark


def _range_start(
    request: ExportRequest, records: list[WindowRecord]
) -> tuple[datetime | None, datetime | None]:
    """(first instant to export or None for nothing, instant after which complete windows are
    exported again)."""
    if not request.since_last:
        assert request.start is not None
        redo = request.end - request.lookback if request.lookback else None
        return request.start, redo
    resume_at = since_last_start(records)
    if resume_at is None:
        raise ConfigError(
            "--since-last found no window in the output folder's manifest; run once with "
            "--start first."
        )
    start = resume_at - request.lookback if request.lookback else resume_at
    if start >= request.end:
        return None, None  # every window up to the end is complete
    return start, (start if request.lookback else None)


def since_last_start(records: list[WindowRecord]) -> datetime | None:
    """The start of the earliest window that is not complete (failed, provisional, unfinished,
    or missing between recorded ones); after the last window when all are; None when empty."""
    cursor: int | None = None
    for record in records:  # sorted by start
        if cursor is not None and record.start_ms > cursor:
            break  # a gap: a window nobody recorded
        if record.status != "complete":
            cursor = record.start_ms
            break
        cursor = record.end_ms
    return None if cursor is None else datetime.fromtimestamp(cursor / 1000, UTC)


async def _watermark(api: ApiClient) -> datetime:
    try:
        return await analytics.data_availability(api)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise ConfigError(
            f"The API at {exc.url} answered HTTP 404: it is not a Genesys Cloud API. Check the "
            "region (--region or GENESYSCLOUD_REGION) or --api-url."
        ) from exc


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
        return sum([await analytics.count_conversations(api, b.span) for b in batches])
    except ApiError as exc:
        log.info("could not estimate the records to fetch (%s); progress shows no total", exc)
        return None


def _summarize(
    outcome: _Outcome,
    stopper: Stopper,
    error: ExportError | None,
    api: ApiClient | None,
    seconds: float,
) -> Summary:
    records = outcome.manifest.records(ENTITY) if outcome.manifest else []
    ours = [r for r in records if r.run_id == outcome.run_id]
    committed = [r for r in ours if r.status in ("complete", "provisional")]
    kept = [r for r in ours if r.status == "in-progress"]
    counters = outcome.counters
    status, code, message = _verdict(outcome, stopper, error, len(committed), kept)
    stats = api.statistics() if api is not None else None
    return Summary(
        status=status,
        exit_code=code,
        records=sum(r.records for r in committed),
        windows=len(committed),
        skipped=outcome.skipped,
        provisional=sum(r.status == "provisional" for r in committed),
        failed_windows=tuple(sorted(counters.failed)),
        repeats_dropped=counters.repeats,
        kept_windows=len(kept),
        kept_jobs=len({r.job_id for r in kept}),
        requests=stats.requests if stats else 0,
        retries=stats.retries if stats else 0,
        rate_limited=stats.rate_limited if stats else 0,
        token_refreshes=stats.token_refreshes if stats else 0,
        seconds=round(seconds, 3),
        watermark=format_instant(outcome.watermark) if outcome.watermark else None,
        windows_by_status=dict(sorted(Counter(r.status for r in records).items())),
        error=message,
    )


def _verdict(
    outcome: _Outcome,
    stopper: Stopper,
    error: ExportError | None,
    committed: int,
    kept: list[WindowRecord],
) -> tuple[str, int, str | None]:
    kept_note = _kept_note(committed, kept)
    if error is not None:
        note = f" ({kept_note})" if outcome.started else ""
        return _status_of(error), error.exit_code, f"{error}{note}"
    if stopper.requested:
        if not outcome.started:
            what = (
                f"Stopped by {stopper.signal_name} before any window was fetched; nothing to keep."
            )
        else:
            what = (
                f"Stopped by {stopper.signal_name}: {kept_note}. Run the same command again "
                "to continue."
            )
        return "interrupted", Interrupted.exit_code, what
    if outcome.counters.failed:
        return "failed", 1, None
    return "ok", 0, None


def _kept_note(committed: int, kept: list[WindowRecord]) -> str:
    jobs = len({r.job_id for r in kept})
    unfinished = (
        f"{len(kept)} unfinished windows kept at their checkpoints, {jobs} jobs left running "
        "for the next run to continue"
        if kept
        else "no unfinished window to keep"
    )
    return f"{committed} windows committed this run; {unfinished}"


def _make_dir(path: Path) -> None:
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


def _status_of(exc: ExportError) -> str:
    names = {2: "bad_input", 3: "auth_failed", 4: "quota_exhausted", 5: "unreachable",
             75: "locked", 130: "interrupted"}  # fmt: skip
    return names.get(exc.exit_code, "error")


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
