"""``--plan``: what a run would do, window by window in date order, fetching no records.

Each kind previews its datasets (``Kind.preview``): a window to fetch gets the sync query's
count of its records and the requests it would cost; a snapshot its listing's total and the
pages of its walks. The report adds the requests and minutes at the announced rate limit, and
renders itself as lines and as JSON.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.engine.kinds import PlanContext, PlanLine, by_kind
from exporter.org import claim_folder
from exporter.plan import ExportRequest
from exporter.store.manifest import Manifest
from exporter.windows import format_instant


@dataclass(frozen=True, slots=True)
class PlanReport:
    lines: tuple[PlanLine, ...]
    jobs: int
    requests: int
    per_minute: int
    minutes: float | None
    watermark: str

    @property
    def to_fetch(self) -> int:
        return sum(line.action != "skip" for line in self.lines)

    def text(self) -> list[str]:
        """The table, window by window, and the estimate under it."""
        header = (f"{'dataset':<24} {'window':<36} {'action':<8} {'source':<7} {'records':>8} "
                  f"{'requests':>8}  reason")  # fmt: skip
        rows = [
            f"{line.dataset:<24} {line.name:<36} {line.action:<8} {line.source:<7} "
            f"{'' if line.records is None else line.records:>8} {line.requests:>8}  {line.reason}"
            for line in self.lines
        ]
        pace = f"{self.per_minute}/min" if self.per_minute else "no announced limit"
        minutes = f"{self.minutes:.1f} min" if self.minutes is not None else "n/a"
        return [
            f"data availability (watermark): {self.watermark or 'n/a'}",
            header,
            *rows,
            f"estimate: {len(self.lines)} windows, {self.to_fetch} to fetch in {self.jobs} jobs; "
            f"{self.requests} requests, {minutes} at {pace}",
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "windows": len(self.lines),
            "to_fetch": self.to_fetch,
            "jobs": self.jobs,
            "requests": self.requests,
            "minutes": self.minutes,
            "per_minute": self.per_minute,
        }


async def plan_only(settings: Settings, request: ExportRequest) -> PlanReport:
    """What a run would do, with request and time estimates, fetching no records."""
    async with ApiClient(settings.connection, settings.http) as api:
        manifest = await asyncio.to_thread(Manifest.load, settings.output.out_dir)
        await claim_folder(api, settings.connection, manifest, record=False)
        context = PlanContext(settings, request, api, manifest)
        lines: list[PlanLine] = []
        jobs = 0
        watermark = None
        for kind, datasets in by_kind(request.datasets):
            kind.check(request, manifest, datasets)
            preview = await kind.preview(context, datasets)
            lines += preview.lines
            jobs += preview.jobs
            watermark = watermark or preview.watermark
        per_minute = api.limiter.statistics().allowed_per_minute
    total = len(request.datasets) + sum(line.requests for line in lines)  # + the watermarks
    minutes = total / per_minute if per_minute > 0 else None
    shown = format_instant(watermark) if watermark else ""
    return PlanReport(tuple(lines), jobs, total, per_minute, minutes, shown)
