"""One export from start to end: connect, read the watermark and manifest, plan, lock, run, sum up.

Every outcome, failures included, ends in a ``Summary``: the CLI prints it as the last line of
stdout, so cron wrappers can parse what happened whatever the exit code.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from exporter import analytics
from exporter.config import Settings
from exporter.engine import ENTITY, ExportRun, RunCounters, new_run_id
from exporter.errors import ExportError, Interrupted
from exporter.http import ApiClient
from exporter.lock import RunLock
from exporter.manifest import Manifest
from exporter.plan import Batch, WorkItem, batch_work, jobs_for_budget, lookback_start, plan_work
from exporter.progress import Progress
from exporter.windows import plan_windows

log = logging.getLogger("exporter")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: [start, end), and how to treat windows already on disk."""

    start: datetime
    end: datetime
    force: bool = False
    lookback: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did; ``status`` is ok, failed, interrupted, quota_exhausted or error."""

    status: str
    exit_code: int
    records: int = 0
    windows: int = 0
    skipped: int = 0
    provisional: int = 0
    failed_windows: tuple[str, ...] = ()
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    seconds: float = 0.0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_windows"] = list(self.failed_windows)
        return data


@dataclass(frozen=True, slots=True)
class PlanLine:
    name: str
    action: str
    source: str
    reason: str
    conversations: int | None = None
    requests: int = 0


@dataclass(frozen=True, slots=True)
class PlanReport:
    lines: tuple[PlanLine, ...]
    requests: int
    per_minute: int
    minutes: float | None
    watermark: str


@dataclass(slots=True)
class Stopper:
    """Lets a signal handler stop the run: no new work, jobs deleted, manifest consistent."""

    requested: bool = False
    signal_name: str = ""
    _task: asyncio.Task[Any] | None = field(default=None, repr=False)
    _run: ExportRun | None = field(default=None, repr=False)

    def attach(self, task: asyncio.Task[Any]) -> None:
        self._task = task

    def stop(self, signal_name: str) -> None:
        if self.requested:
            return
        self.requested, self.signal_name = True, signal_name
        if self._run is not None:
            self._run.stopping = True
        if self._task is not None:
            self._task.cancel()


async def export(
    settings: Settings,
    request: ExportRequest,
    *,
    progress: Progress,
    stopper: Stopper | None = None,
) -> Summary:
    """Run one export and sum it up; errors become a Summary with their exit code."""
    started = time.monotonic()
    stopper = stopper or Stopper()
    counters = RunCounters()
    skipped = 0
    api: ApiClient | None = None
    try:
        async with ApiClient(settings.connection, settings.http) as api:
            plan = await _plan(api, settings, request)
            skipped = sum(item.action == "skip" for item in plan.items)
            counters = await _run(api, settings, plan.batches, plan.watermark, progress, stopper)
        status, code, error = ("failed", 1, None) if counters.failed else ("ok", 0, None)
    except asyncio.CancelledError:
        if not stopper.requested:
            raise
        _uncancel()
        status, code = "interrupted", Interrupted.exit_code
        error = (
            f"Stopped by {stopper.signal_name}: submitted jobs were deleted and the manifest is "
            "consistent; run the same command again to continue."
        )
    except ExportError as exc:
        status, code, error = _status_of(exc), exc.exit_code, str(exc)
    finally:
        progress.close()
    stats = api.statistics() if api is not None else None
    return Summary(
        status=status,
        exit_code=code,
        records=counters.records,
        windows=counters.windows_done,
        skipped=skipped,
        provisional=counters.provisional,
        failed_windows=tuple(sorted(counters.failed)),
        requests=stats.requests if stats else 0,
        retries=stats.retries if stats else 0,
        rate_limited=stats.rate_limited if stats else 0,
        token_refreshes=stats.token_refreshes if stats else 0,
        seconds=round(time.monotonic() - started, 3),
        error=error,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    items: list[WorkItem]
    batches: list[Batch]
    watermark: datetime


async def _plan(api: ApiClient, settings: Settings, request: ExportRequest) -> _Plan:
    """Decide every window, then batch them into as many jobs as the rate budget can use."""
    windows = plan_windows(request.start, request.end, settings.jobs.window)
    await api.tokens.get()  # mint first, so the request timed below is one API round trip
    clock = asyncio.get_running_loop().time
    began = clock()
    watermark = await analytics.data_availability(api)  # its headers announce the budget too
    round_trip_s = clock() - began
    manifest = await asyncio.to_thread(Manifest.load, settings.output.out_dir)
    items = plan_work(
        windows,
        manifest.records(ENTITY),
        watermark=watermark,
        force=request.force,
        redo_after=lookback_start(request.end, request.lookback),
    )
    jobs = settings.jobs
    per_minute = api.limiter.statistics().allowed_per_minute
    count = jobs_for_budget(per_minute, round_trip_s, most=jobs.max_concurrent_jobs)
    log.debug("%d jobs for %d requests/min at a %.3f s round trip", count, per_minute, round_trip_s)
    return _Plan(items, batch_work(items, jobs=count, max_span=jobs.max_job_span), watermark)


async def _run(
    api: ApiClient,
    settings: Settings,
    batches: list[Batch],
    watermark: datetime,
    progress: Progress,
    stopper: Stopper,
) -> RunCounters:
    out = settings.output.out_dir
    run_id = new_run_id()
    lock = RunLock(out, run_id)
    await asyncio.to_thread(_make_dir, out)
    lock.acquire()
    try:
        manifest = await asyncio.to_thread(Manifest.load, out)  # again, now under the lock
        run = ExportRun(
            settings, api, manifest, run_id=run_id, watermark=watermark, progress=progress
        )
        stopper._run = run
        progress.start(sum(len(batch.items) for batch in batches))
        try:
            return await run.run(batches)
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
    finally:
        lock.release()


def _make_dir(path: Any) -> None:
    from exporter.errors import OutputError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot create the output folder {path} ({exc.strerror}); choose another --out or "
            "fix its permissions."
        ) from exc


async def plan_only(settings: Settings, request: ExportRequest) -> PlanReport:
    """What a run would do, with request and time estimates, fetching no records."""
    async with ApiClient(settings.connection, settings.http) as api:
        plan = await _plan(api, settings, request)
        skips = [
            PlanLine(i.window.name, i.action, i.source, i.reason)
            for i in plan.items
            if i.action == "skip"
        ]
        fetches = [await _estimate(api, settings, batch) for batch in plan.batches]
        lines = sorted(skips + fetches, key=lambda line: line.name)  # names sort by start
        per_minute = api.limiter.statistics().allowed_per_minute
    total = 1 + sum(line.requests for line in lines)  # +1: the run reads the watermark once
    minutes = total / per_minute if per_minute > 0 else None
    return PlanReport(tuple(lines), total, per_minute, minutes, plan.watermark.isoformat())


async def _estimate(api: ApiClient, settings: Settings, batch: Batch) -> PlanLine:
    """One line per job (or query window): its conversations and the requests it will send."""
    hits = await analytics.count_conversations(api, batch.span)
    if batch.source == "query":
        requests = hits // settings.jobs.query_page_size + 1
    else:  # submit + one poll + result pages + delete
        requests = 3 + max(1, math.ceil(hits / settings.jobs.page_size))
    first = batch.items[0]
    return PlanLine(batch.name, first.action, batch.source, first.reason, hits, requests)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves = list(_leaves(group))
    for exc in leaves:
        if isinstance(exc, ExportError):
            return exc
    return leaves[0] if leaves else group


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        elif not isinstance(exc, asyncio.CancelledError):
            yield exc


def _status_of(exc: ExportError) -> str:
    return {2: "bad_input", 3: "auth_failed", 4: "quota_exhausted", 130: "interrupted"}.get(
        exc.exit_code, "error"
    )


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
