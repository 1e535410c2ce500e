"""The windowed kind: analytics details exported by UTC windows.

Each dataset is planned window by window against its own watermark (``dataAvailabilityDate``)
and the org's retention; what is due is fetched in batches, one async job each (the sync
query for the tail past the watermark), by one ``ExportRun`` for every windowed dataset of
the run. Beside it, the ``Refresher`` asks again for the records still going on in windows
this run does not fetch.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exporter.client.http import ApiClient
from exporter.datasets.base import Windowed, denied_message
from exporter.engine import jobs
from exporter.engine.kinds.base import PlanContext, PlanLine, Preview, RunContext, Tally
from exporter.engine.refresh import Refresher
from exporter.engine.scheduler import ExportRun
from exporter.errors import ApiError, PermissionDenied
from exporter.org import not_an_api, retention_days
from exporter.plan import (
    Batch,
    ExportRequest,
    WorkItem,
    batch_work,
    before_pruned,
    jobs_for_budget,
    ms_instant,
    plan_work,
    range_start,
)
from exporter.store.manifest import Manifest, WindowRecord
from exporter.windows import Window, format_instant, plan_slots

log = logging.getLogger(__name__)
JOB_OVERHEAD = 3  # a job's requests beyond its pages: submit, one poll, delete


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """One windowed dataset's decisions."""

    dataset: Windowed
    items: list[WorkItem]
    batches: list[Batch]
    watermark: datetime


class WindowedKind:
    word = "windowed"
    ranged = True
    dated = True
    stage = 0

    def endpoint(self, dataset: Windowed) -> str:
        return f"POST {dataset.api.jobs} (+ {dataset.api.query})"

    async def reach(self, api: ApiClient, dataset: Windowed) -> str:
        """Its watermark; for a family reading another's watermark, its own sync query over
        the minute before it too (the watermark says nothing of the family's permission)."""
        watermark = await jobs.data_availability(api, dataset.api)
        if dataset.api.availability:
            minute = Window(watermark - timedelta(minutes=1), watermark)
            await jobs.query_once(api, dataset.api, minute)
        return f"jobs complete up to {watermark:%Y-%m-%dT%H:%M:%SZ}"

    def check(
        self, request: ExportRequest, manifest: Manifest, datasets: Sequence[Windowed]
    ) -> None:
        for dataset in datasets:
            records = manifest.records(dataset.name)
            range_start(request, records, dataset, _pruned(manifest, dataset))

    async def preview(self, context: PlanContext, datasets: Sequence[Windowed]) -> Preview:
        """Each window's decision; one to fetch gets the sync query's count of its records
        and the requests it would cost: its pages, plus the job's own for a job's first."""
        retention = await retention_days(context.api)
        lines: list[PlanLine] = []
        jobs_ = 0
        watermark = None
        for dataset in datasets:
            plan = await plan_export(context, dataset, retention=retention)
            firsts = {b.items[0].name for b in plan.batches if b.source == "jobs"}
            for item in plan.items:
                lines.append(await _line(context, dataset, item, item.name in firsts))
            jobs_ += sum(b.source == "jobs" for b in plan.batches)
            watermark = watermark or plan.watermark
        return Preview(tuple(lines), jobs_, watermark)

    async def prepare(self, context: RunContext, datasets: Sequence[Windowed]) -> WindowedWork:
        work = WindowedWork(context, datasets)
        retention = await retention_days(context.api) if datasets else None
        for dataset in datasets:
            try:
                work.plans.append(await plan_export(context, dataset, retention=retention))
            except PermissionDenied as exc:  # its watermark: this dataset fails, the others go on
                work.denied[dataset.name] = denied_message(dataset, exc)
                log.error("%s", work.denied[dataset.name])
        work.start()
        return work


class WindowedWork:
    """The windowed datasets' work in one run: their batches, and the refresh of their open
    records, side by side."""

    def __init__(self, context: RunContext, datasets: Sequence[Windowed]) -> None:
        self._context = context
        self._datasets = tuple(datasets)
        self.plans: list[DatasetPlan] = []
        self.denied: dict[str, str] = {}
        self._run: ExportRun | None = None
        self._refresher: Refresher | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        """Once planned: the runs that fetch and refresh, counting from now."""
        c = self._context
        watermarks = {p.dataset.name: p.watermark for p in self.plans}
        self._run = ExportRun(c.settings, c.api, c.files, ledgers=c.ledgers,
                              watermarks=watermarks, progress=c.progress)  # fmt: skip
        self._refresher = Refresher(c.api, c.files, c.settings.jobs, c.ledgers, now=c.now)

    @property
    def _batches(self) -> list[Batch]:
        return [b for p in self.plans for b in p.batches]

    @property
    def windows(self) -> int:
        return sum(len(b.items) for b in self._batches)

    @property
    def resumed_records(self) -> int:
        return sum(i.resume.part_records for b in self._batches for i in b.items if i.resume)

    @property
    def busy(self) -> bool:
        manifest = self._context.manifest
        return bool(self._batches or any(manifest.opened(p.dataset.name) for p in self.plans))

    async def expected_records(self) -> int | None:
        """The query's count over each batch, summed (whole touched days: a little high)."""
        try:
            counts = [await jobs.count_records(self._context.api, b.dataset.api, b.span)
                      for b in self._batches]  # fmt: skip
        except (ApiError, PermissionDenied) as exc:
            log.info("could not estimate the records to fetch (%s); progress shows no total", exc)
            return None
        if any(count is None for count in counts):  # a family that cannot count: no total
            return None
        return sum(count or 0 for count in counts)

    async def run(self) -> None:
        assert self._run is not None and self._refresher is not None, "run before start"
        if self._stopped:
            return
        refresh = [_refresh_work(p) for p in self.plans]
        async with asyncio.TaskGroup() as group:
            self._refreshing = group.create_task(self._refresher.run(refresh))
            await self._run.run(self._batches)

    def stop(self) -> None:
        self._stopped = True
        if self._run is not None:
            self._run.stop()
        if self._refreshing is not None:
            self._refreshing.cancel()  # the open records stay tracked for the next run

    def tally(self) -> Tally:
        counters = self._run.counters if self._run else None
        refresher = self._refresher
        manifest = self._context.manifest
        open_records = {}
        for name in (d.name for d in self._datasets):
            opened = manifest.opened(name)
            entry = {"tracked": sum(len(records) for records in opened.values())}
            if refresher is not None and name in refresher.counts:
                entry.update(asdict(refresher.counts[name]))
            open_records[name] = entry
        return Tally(
            denied={**(refresher.denied if refresher else {}), **self.denied,
                    **(counters.denied if counters else {})},
            failed=list(counters.failed) if counters else [],
            stalled=dict(counters.stalled) if counters else {},
            repeats=counters.repeats if counters else 0,
            skipped=sum(i.action == "skip" for p in self.plans for i in p.items),
            watermarks={p.dataset.name: p.watermark for p in self.plans},
            open_records=open_records,
        )  # fmt: skip


async def plan_export(
    context: PlanContext, dataset: Windowed, *, retention: int | None = None
) -> DatasetPlan:
    """Decide every window of ``dataset``, then batch them into as many jobs as the rate
    budget can use. ``retention``: the org's analytics retention in days, when known."""
    settings, request, api, manifest = (context.settings, context.request, context.api,
                                        context.manifest)  # fmt: skip
    now = datetime.now(UTC)
    records = manifest.records(dataset.name)
    pruned = _pruned(manifest, dataset)
    start, redo_after = range_start(request, records, dataset, pruned)
    if pruned is not None and before_pruned(request, pruned):
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
    per_minute = api.limiter.statistics().allowed_per_minute
    count = jobs_for_budget(per_minute, round_trip_s, most=settings.jobs.max_concurrent_jobs)
    log.debug("%d jobs for %d requests/min at a %.3f s round trip", count, per_minute, round_trip_s)
    batches = batch_work(dataset, plan.items, jobs=count, max_span=settings.jobs.max_job_span)
    return DatasetPlan(dataset, plan.items, batches, watermark)


async def _line(context: PlanContext, dataset: Windowed, item: WorkItem, first: bool) -> PlanLine:
    if item.action == "skip":
        return PlanLine(dataset.name, item.name, item.action, item.source, item.reason)
    hits = await jobs.count_records(context.api, dataset.api, item.window)
    settings = context.settings.jobs
    if hits is None:  # a family whose query cannot count: at least one request, its size unknown
        requests = 1 + (JOB_OVERHEAD if first and item.source == "jobs" else 0)
    elif item.source == "query":
        requests = hits // settings.query_page_size + 2  # the last page is empty
    else:
        requests = max(1, math.ceil(hits / settings.page_size))
        requests += JOB_OVERHEAD if first else 0
    return PlanLine(dataset.name, item.name, item.action, item.source, item.reason, hits,
                    requests)  # fmt: skip


def _refresh_work(plan: DatasetPlan) -> tuple[Windowed, frozenset[str]]:
    """A dataset, and the windows this run fetches anyway: their open records need no refresh."""
    return plan.dataset, frozenset(item.name for item in plan.items if item.action != "skip")


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


def _pruned(manifest: Manifest, dataset: Windowed) -> datetime | None:
    mark = manifest.pruned_before(dataset.name)
    return None if mark is None else ms_instant(mark)


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


WINDOWED = WindowedKind()
