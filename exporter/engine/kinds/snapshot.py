"""The snapshot kind: configuration entity listings, taken whole each run by one
``SnapshotRun`` (see ``exporter.engine.snapshot``), a file per listing per UTC day taken."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import Listing
from exporter.engine.kinds.base import PlanContext, PlanLine, Preview, RunContext, Tally
from exporter.engine.listing import first_page
from exporter.engine.snapshot import SnapshotRun
from exporter.plan import ExportRequest
from exporter.store.manifest import Manifest


class SnapshotKind:
    word = "snapshot"
    ranged = False
    dated = False
    stage = 0

    def endpoint(self, dataset: Listing) -> str:
        return dataset.endpoint

    async def reach(self, api: ApiClient, dataset: Listing) -> str:
        path = await _first_path(api, dataset)
        if path is None:
            return f"no {dataset.parent.name if dataset.parent else ''} to list it under"
        page = await first_page(api, path, dataset.params, numbered=dataset.offset_paging)
        return f"{page.total} entities" if page.total is not None else "readable"

    def check(
        self, request: ExportRequest, manifest: Manifest, datasets: Sequence[Listing]
    ) -> None:
        """A snapshot is taken whatever the range."""

    async def preview(self, context: PlanContext, datasets: Sequence[Listing]) -> Preview:
        """One line per snapshot: its listing's total (one one-entity page; per-parent listings
        are not counted) and the pages of two walks (the second confirms nothing moved)."""
        today = f"{datetime.now(UTC):%Y-%m-%d}"
        lines = []
        for dataset in datasets:
            total = None
            if dataset.parent is None:
                first = await first_page(context.api, dataset.path, dataset.params,
                                         numbered=dataset.offset_paging)  # fmt: skip
                total = first.total
            walks = 2 if dataset.offset_paging else 1
            requests = walks * (math.ceil((total or 0) / dataset.page_size) + 1)
            lines.append(PlanLine(dataset.name, today, "snapshot", "listing", "taken whole",
                                  total, requests))  # fmt: skip
        return Preview(tuple(lines))

    async def prepare(self, context: RunContext, datasets: Sequence[Listing]) -> SnapshotWork:
        return SnapshotWork(context, list(datasets))


class SnapshotWork:
    """The listings' snapshots in one run, one after another beside the other kinds."""

    def __init__(self, context: RunContext, listings: list[Listing]) -> None:
        self._listings = listings
        self._run = SnapshotRun(context.api, context.files, context.ledgers, taken_at=context.now)
        self._task: asyncio.Task[object] | None = None
        self._stopped = False

    @property
    def windows(self) -> int:
        return 0  # the progress display counts windows of records, not snapshots

    @property
    def resumed_records(self) -> int:
        return 0

    @property
    def busy(self) -> bool:
        return bool(self._listings)

    async def expected_records(self) -> int | None:
        return 0

    async def run(self) -> None:
        if self._stopped:
            return
        self._task = asyncio.current_task()
        await self._run.run(self._listings)

    def stop(self) -> None:
        """A snapshot is committed whole or not at all: the one being taken is dropped."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def tally(self) -> Tally:
        counters = self._run.counters
        return Tally(denied=dict(counters.denied), failed=list(counters.failed))


async def _first_path(api: ApiClient, dataset: Listing) -> str | None:
    """The listing's path, under the first entity of its parent (of its parent's first, ...)
    when it is listed per parent; None when a parent listing is empty."""
    parent = dataset.parent
    if parent is None:
        return dataset.path
    parent_path = await _first_path(api, parent)
    if parent_path is None:
        return None
    first = await first_page(api, parent_path, parent.params, numbered=parent.offset_paging)
    if not first.entities:
        return None
    return dataset.path.replace("{id}", orjson.loads(bytes(first.entities[0]))["id"])


SNAPSHOT = SnapshotKind()
