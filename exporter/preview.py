"""``--plan``: what a run would do, window by window in date order, fetching no records.

Each window to fetch gets the sync query's count of its conversations (one cheap request per
window) and the requests it would cost: its pages, plus, for the first window of each job,
the job's submit, first poll and delete.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.engine import jobs as analytics
from exporter.plan import WorkItem
from exporter.runner import ExportRequest, plan_export
from exporter.store.manifest import Manifest

JOB_OVERHEAD = 3  # submit, one poll, delete


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
    jobs: int
    requests: int
    per_minute: int
    minutes: float | None
    watermark: str


async def plan_only(settings: Settings, request: ExportRequest) -> PlanReport:
    """What a run would do, with request and time estimates, fetching no records."""
    async with ApiClient(settings.connection, settings.http) as api:
        manifest = await asyncio.to_thread(Manifest.load, settings.output.out_dir)
        items, batches, watermark = await plan_export(api, settings, request, manifest)
        firsts = {batch.items[0].name for batch in batches if batch.source == "jobs"}
        lines = [await _line(api, settings, item, item.name in firsts) for item in items]
        per_minute = api.limiter.statistics().allowed_per_minute
    total = 1 + sum(line.requests for line in lines)  # +1: the run reads the watermark once
    minutes = total / per_minute if per_minute > 0 else None
    jobs = sum(batch.source == "jobs" for batch in batches)
    return PlanReport(tuple(lines), jobs, total, per_minute, minutes, watermark.isoformat())


async def _line(api: ApiClient, settings: Settings, item: WorkItem, first: bool) -> PlanLine:
    if item.action == "skip":
        return PlanLine(item.name, item.action, item.source, item.reason)
    hits = await analytics.count_conversations(api, item.window)
    if item.source == "query":
        requests = hits // settings.jobs.query_page_size + 1
    else:
        requests = max(1, math.ceil(hits / settings.jobs.page_size))
        requests += JOB_OVERHEAD if first else 0
    return PlanLine(item.name, item.action, item.source, item.reason, hits, requests)
