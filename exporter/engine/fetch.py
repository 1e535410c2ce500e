"""Reading a batch from the API: the job loop (submit, wait, pages by cursor) and the query loop.

Each page is sorted into the batch's windows by the dataset's router, repeats dropped, and
handed to the writer as a message; nothing here touches a file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from exporter.client.http import ApiClient
from exporter.config import JobSettings
from exporter.datasets.records import Selection
from exporter.engine import jobs
from exporter.engine.writer import BatchRun, JobStarted, Message, WritePage
from exporter.errors import ApiError
from exporter.windows import Window

log = logging.getLogger(__name__)


class Fetcher:
    """Fetches batches through one API client into one writer queue.

    A job not FULFILLED within ``job_timeout_s`` marks its family's service stuck for the
    rest of the run: jobs of the family still waiting give up at their next poll, and none is
    submitted any more (``JobStalled``), so a stuck service costs one timeout, not one a job.
    """

    def __init__(
        self,
        api: ApiClient,
        settings: JobSettings,
        queue: asyncio.Queue[Message | None],
        *,
        options: Callable[[str], Mapping[str, Any]] = lambda _section: {},
    ) -> None:
        """``options``: a config section's request options, by its name (what a family's
        ``options`` names; ``Settings.request_options``)."""
        self._api = api
        self._jobs = settings
        self._queue = queue
        self._options = options
        self._stalled: set[str] = set()  # datasets whose jobs service finished no job in time

    async def submit(self, run: BatchRun, span: Window) -> str:
        """Submit a job over ``span``; the writer checkpoints it before any of its pages."""
        if run.dataset.name in self._stalled:
            reason = jobs.stalled_reason(self._jobs.job_timeout_s)
            raise jobs.JobStalled(f"{reason}; no job submitted, the next run fetches it.")
        family = run.dataset.api
        options = self._options(family.options)
        job_id = await jobs.submit_job(
            self._api, family, span, options=options, page_size=self._jobs.page_size
        )
        run.job_id = job_id
        log.debug("%s %s: submitted job %s over %s", run.dataset.name, run.batch.name, job_id,
                  span.interval, extra=_fields(run, job_id, interval=span.interval))  # fmt: skip
        await self._queue.put(JobStarted(run, job_id, span))
        await self._wait(run, job_id, first_poll_s=self._jobs.poll_initial_s)
        return job_id

    async def resume(self, run: BatchRun, job_id: str) -> None:
        """Continue a job submitted by an earlier run: it must still be FULFILLED."""
        run.job_id = job_id
        log.debug("%s %s: continuing job %s from its checkpoint", run.dataset.name,
                  run.batch.name, job_id, extra=_fields(run, job_id))  # fmt: skip
        await self._wait(run, job_id, first_poll_s=0.0)

    async def read_job(self, run: BatchRun, span: Window, cursor: str | None) -> None:
        """Read the job's pages from ``cursor`` (None: the first page) to the last."""
        assert run.job_id is not None
        dataset = run.dataset
        pages = jobs.job_pages(
            self._api, dataset.api, run.job_id, page_size=self._jobs.page_size, cursor=cursor,
            span=span, time_ms=dataset.router.time_ms,
        )  # fmt: skip
        async for page, single_line in pages:
            selection = _select(run, page.records, single_line)
            await self._queue.put(
                WritePage(run, selection.windows, page.cursor, page.dataAvailabilityDate)
            )

    async def read_query(self, run: BatchRun, watermark: str) -> None:
        """Read the batch's window by the sync query (its data is past the watermark)."""
        run.availability = watermark
        log.debug("%s %s: reading by the query (past the watermark %s)", run.dataset.name,
                  run.batch.name, watermark, extra=_fields(run, None))  # fmt: skip
        family = run.dataset.api
        pages = jobs.query_pages(
            self._api, family, run.batch.span, page_size=self._jobs.query_page_size,
            options=self._options(family.options),
        )  # fmt: skip
        async for page, single_line in pages:
            selection = _select(run, page.records, single_line)
            await self._queue.put(WritePage(run, selection.windows, None, None))

    async def _wait(self, run: BatchRun, job_id: str, *, first_poll_s: float) -> None:
        name = run.dataset.name
        try:
            await jobs.wait_fulfilled(
                self._api, run.dataset.api, job_id, first_poll_s=first_poll_s,
                max_poll_s=self._jobs.poll_max_s, timeout_s=self._jobs.job_timeout_s,
                given_up=lambda: name in self._stalled,
            )  # fmt: skip
        except jobs.JobStalled:
            self._stalled.add(name)
            raise


def _fields(run: BatchRun, job_id: str | None, **more: str) -> dict[str, str | None]:
    """A batch's structured log fields (JSON logs)."""
    return {"dataset": run.dataset.name, "window": run.batch.name, "job_id": job_id, **more}


def _select(run: BatchRun, raws: list[msgspec.Raw], single_line: bool) -> Selection:
    """The page sorted into the batch's windows; a record without a usable key or time fails
    the batch (an API error, reported in one line), never the run."""
    try:
        selection = run.dataset.router.route(raws, run.bounds, run.seen, single_line=single_line)
    except ValueError as exc:  # msgspec's ValidationError and a time that is no instant
        raise ApiError(
            f"The API sent a {run.dataset.name} record without a usable key or time ({exc}); "
            "the window is reported failed and exported again by the next run."
        ) from exc
    run.repeats += selection.repeats
    run.note_opened(selection.opened)
    return selection
