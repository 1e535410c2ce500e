"""``--plan``: what a run would do, window by window in date order, fetching no records.

Each window to fetch gets the sync query's count of its records (one cheap request per window)
and the requests it would cost: its pages, plus, for the first window of each job, the job's
submit, first poll and delete. Each snapshot gets one line, its listing's total and the pages
of two walks (the second confirms nothing moved).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.datasets import Listing, Windowed
from exporter.engine.jobs import count_records
from exporter.engine.listing import first_page
from exporter.org import claim_folder, retention_days
from exporter.plan import WorkItem
from exporter.runner import ExportRequest, plan_export
from exporter.store.manifest import Manifest

JOB_OVERHEAD = 3  # submit, one poll, delete


@dataclass(frozen=True, slots=True)
class PlanLine:
    dataset: str
    name: str
    action: str
    source: str
    reason: str
    conversations: int | None = None
    requests: int = 0


@dataclass(frozen=True, slots=True)
class PlanReport:
    lines: tuple[PlanLine, ...]
    jobs: int
    requests: int
    per_minute: int
    minutes: float | None
    watermark: str


async def plan_only(settings: Settings, request: ExportRequest) -> PlanReport:
    """What a run would do, with request and time estimates, fetching no records."""
    async with ApiClient(settings.connection, settings.http) as api:
        manifest = await asyncio.to_thread(Manifest.load, settings.output.out_dir)
        await claim_folder(api, settings.connection, manifest, record=False)
        retention = await retention_days(api)
        lines: list[PlanLine] = []
        jobs = 0
        watermark = ""
        for dataset in request.datasets:
            if isinstance(dataset, Listing):
                lines.append(await _snapshot_line(api, dataset))
                continue
            plan = await plan_export(api, settings, request, manifest, dataset, retention=retention)
            firsts = {b.items[0].name for b in plan.batches if b.source == "jobs"}
            lines += [await _line(api, settings, dataset, i, i.name in firsts) for i in plan.items]
            jobs += sum(b.source == "jobs" for b in plan.batches)
            watermark = watermark or plan.watermark.isoformat()
        per_minute = api.limiter.statistics().allowed_per_minute
    total = len(request.datasets) + sum(line.requests for line in lines)  # + the watermarks
    minutes = total / per_minute if per_minute > 0 else None
    return PlanReport(tuple(lines), jobs, total, per_minute, minutes, watermark)


async def _line(
    api: ApiClient, settings: Settings, dataset: Windowed, item: WorkItem, first: bool
) -> PlanLine:
    if item.action == "skip":
        return PlanLine(dataset.name, item.name, item.action, item.source, item.reason)
    hits = await count_records(api, dataset.api, item.window)
    if item.source == "query":
        requests = hits // settings.jobs.query_page_size + 2  # the last page is empty
    else:
        requests = max(1, math.ceil(hits / settings.jobs.page_size))
        requests += JOB_OVERHEAD if first else 0
    return PlanLine(dataset.name, item.name, item.action, item.source, item.reason, hits,
                    requests)  # fmt: skip


async def _snapshot_line(api: ApiClient, dataset: Listing) -> PlanLine:
    """A snapshot's total (one one-entity page; per-parent listings are not counted)."""
    total = None
    if dataset.parent is None:
        first = await first_page(api, dataset.path, dataset.params, numbered=dataset.offset_paging)
        total = first.total
    walks = 2 if dataset.offset_paging else 1
    requests = walks * (math.ceil((total or 0) / dataset.page_size) + 1)
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    return PlanLine(dataset.name, today, "snapshot", "listing", "taken whole", total, requests)
