"""The export run: workers fetch batches, one writer commits them; a stop keeps their work.

    workers (one per concurrent job) --messages--> bounded queue --> writer --> files thread

A batch is one job over consecutive windows (``plan.batch_work``), or one window read by the
query; each record goes to the file of the window it started in. Every task lives in one
TaskGroup. Checkpoints (the job, its cursor, each part file's offset) reach the manifest every
``checkpoint_s``, so a run killed at any moment resumes mid-job.

Ending early keeps what was done, whatever the cause: a stop signal, a fatal error, a quota
that asks for hours. Each open batch is checkpointed at the last page written whole, its files
made durable and closed, its job left running, exactly as a SIGKILL would leave it but
fresher; the next run continues every job from its cursor. Only an API error that no retry
fixes (the batch fails, or is fetched again afresh) discards a batch's files and job.

A job that fails (FAILED) is submitted again as it was; when the same span fails again, its
size is the plausible cause and it is split: a job over several windows becomes one job per
window; a one-window job is split in half in place (its halves fill the same day file), down
to ``split_min``. A job whose results expire while they are read is split at once (reading
takes longer than they live); one found expired when resumed is submitted again. Every job a
window costs this run counts against ``max_jobs_per_window``; past it the window fails, in one
line. A job not FULFILLED within ``job_timeout_s`` is no failure of its size: it is kept like a
stopped one, and its dataset submits no new job this run (``Fetcher``), each of its windows
reported in one line.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.datasets.base import denied_message
from exporter.datasets.records import WindowBounds
from exporter.engine.fetch import Fetcher
from exporter.engine.jobs import (
    CursorRejected,
    JobExpired,
    JobFailed,
    JobStalled,
    ResultsExpired,
    delete_quietly,
    stalled_reason,
)
from exporter.engine.ledger import Ledger
from exporter.engine.windowset import WindowSet
from exporter.engine.writer import BatchRun, Commit, FilesThread, Message, Writer
from exporter.errors import ApiError, PermissionDenied
from exporter.plan import Batch
from exporter.progress import Progress
from exporter.store.jsonl import PartFileLost
from exporter.windows import Window, format_instant

if TYPE_CHECKING:
    from exporter.datasets.base import Windowed

log = logging.getLogger(__name__)
Span = tuple[Window, str | None, str | None]  # an interval to read, its job and cursor if any
# Pages waiting for the writer. Each holds a whole body (~5 MB at 1,000 records); two keep the
# writer busy while the next arrives, and more only add memory (measured in benchmarks/).
QUEUED_PAGES = 2


class WindowFailed(ApiError):
    """The batch's windows cannot be fetched this run; the reason says why."""


@dataclass(slots=True)
class RunCounters:
    """What the run did beyond what the manifest records."""

    failed: list[str] = field(default_factory=list)  # "dataset window: reason", one line each
    stalled: dict[str, str] = field(default_factory=dict)  # dataset -> why its jobs stopped
    repeats: int = 0  # records dropped from committed windows as already written
    denied: dict[str, str] = field(default_factory=dict)  # dataset -> the missing permission


class ExportRun:
    """Exports the batches of every windowed dataset into ``settings.output.out_dir``."""

    def __init__(
        self,
        settings: Settings,
        api: ApiClient,
        files: FilesThread,
        *,
        ledgers: Mapping[str, Ledger],
        watermarks: Mapping[str, datetime],
        progress: Progress,
    ) -> None:
        self._settings = settings
        self._jobs = settings.jobs
        self._api = api
        self._files = files
        self._ledgers = ledgers
        self._watermarks = {name: format_instant(w) for name, w in watermarks.items()}
        self._progress = progress
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=QUEUED_PAGES)
        self._fetcher = Fetcher(api, settings.jobs, self._queue,
                                options=settings.request_options)  # fmt: skip
        self._batches: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._outstanding = 0
        self._workers: list[asyncio.Task[None]] = []
        self._jobs_spent: Counter[tuple[str, str]] = Counter()
        self.stopping = False
        self.counters = RunCounters()

    async def run(self, batches: list[Batch]) -> RunCounters:
        """Export every batch (or until ``stop``); fatal errors propagate after cleanup."""
        if not batches:
            return self.counters
        count = max(1, min(self._jobs.max_concurrent_jobs, len(batches)))
        for batch in batches:
            self._enqueue(batch)
        writer = Writer(
            self._queue,
            self._files,
            checkpoint_s=self._settings.output.checkpoint_s,
            progress=self._progress,
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(writer.run())
            async with asyncio.TaskGroup() as workers:
                self._workers = [workers.create_task(self._worker()) for _ in range(count)]
            await self._queue.put(None)  # every message is queued: let the writer finish
        return self.counters

    def stop(self) -> None:
        """Take no new work; batches being fetched are kept at their checkpoints, batches
        fully read still commit."""
        self.stopping = True
        for task in self._workers:
            task.cancel()

    # -- work distribution ----------------------------------------------------------------

    def _enqueue(self, batch: Batch) -> None:
        self._outstanding += 1
        self._batches.put_nowait(batch)

    def _finished_batch(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0:  # release every idle worker, then the writer
            for _ in self._workers:
                self._batches.put_nowait(None)

    async def _worker(self) -> None:
        while not self.stopping and (batch := await self._batches.get()) is not None:
            try:
                await self._export_batch(batch)
            finally:
                self._finished_batch()

    async def _export_batch(self, batch: Batch) -> None:
        while batch.dataset.name not in self.counters.denied:
            try:
                await self._export_once(batch)
                return
            except (JobExpired, CursorRejected, PartFileLost) as exc:
                log.warning("%s: %s Exporting it again from the start.", batch.name, exc)
                batch = batch.afresh()
            except (JobFailed, ResultsExpired) as exc:  # several windows: one job each now
                log.warning("job for %s: %s One job per window now.", batch.name, exc)
                for alone in batch.alone():
                    self._enqueue(alone)
                return
            except JobStalled as exc:  # kept, or never submitted: the next run goes on
                self._stall(batch, exc)
                return
            except PermissionDenied as exc:  # this dataset stops; the others go on
                self._deny(batch.dataset, exc)
                return
            except ApiError as exc:  # retries exhausted, or WindowFailed: the others go on
                await self._fail(batch, str(exc))
                return

    def _deny(self, dataset: Windowed, exc: PermissionDenied) -> None:
        if dataset.name not in self.counters.denied:
            self.counters.denied[dataset.name] = denied_message(dataset, exc)
            log.error("%s", self.counters.denied[dataset.name])

    def _stall(self, batch: Batch, exc: JobStalled) -> None:
        name = batch.dataset.name
        self.counters.stalled[name] = stalled_reason(self._jobs.job_timeout_s)
        for item in batch.items:
            log.warning("%s window %s: %s", name, item.name, exc)

    async def _fail(self, batch: Batch, reason: str) -> None:
        name = batch.dataset.name
        for item in batch.items:
            self.counters.failed.append(f"{name} {item.name}: {reason}")
            log.error("%s window %s failed: %s", name, item.name, reason)
        await self._files.call(self._ledgers[name].fail, batch.items, reason)

    # -- one batch ------------------------------------------------------------------------

    async def _export_once(self, batch: Batch) -> None:
        ledger = self._ledgers[batch.dataset.name]
        resume = [item.resume for item in batch.items if item.resume is not None]
        paths = [ledger.path_of(item) for item in batch.items]
        checkpoints = resume if len(resume) == len(batch.items) else None
        files = WindowSet(paths, ledger.sink, checkpoints)
        run = BatchRun(batch, files, WindowBounds(batch.windows), ledger)
        try:
            await self._files.call(self._open, run)
            if batch.source == "query":
                await self._fetcher.read_query(run, self._watermarks[batch.dataset.name])
            else:
                await self._read_jobs(run)
            done = asyncio.get_running_loop().create_future()
            await self._queue.put(Commit(run, done))
            await self._wait_commit(done)
        except BaseException as exc:
            # Cancelled even around the commit (the writer ended with a fatal error): keeping
            # is safe either way, as a committed batch has nothing left to checkpoint.
            await self._abandon(run, exc)
            raise
        self.counters.repeats += run.repeats
        if run.job_id is not None:
            await self._delete_job_quietly(run)

    async def _wait_commit(self, done: asyncio.Future[None]) -> None:
        """Wait for the writer to commit; a stop meanwhile does not stop the commit, and the
        worker still waits for it, so that the finished job is deleted, not left running."""
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self.stopping or task is None:
                raise
            task.uncancel()
            await done

    def _open(self, run: BatchRun) -> None:
        """Open the files; a resumed batch also learns the keys its files already hold, and
        which of their records are still going on."""
        run.files.open()
        router = run.dataset.router
        for window, file in enumerate(run.files.files):
            for line in file.written() if file.records else ():
                run.seen.update(router.keys(line))
                run.note_opened((window, record) for record in router.opened(line))

    async def _read_jobs(self, run: BatchRun) -> None:
        """Read the batch's interval by job, continuing a checkpointed job first. A failed job
        is submitted again, and split when its span fails again; a job whose results expire
        mid-read is split at once. A one-window batch splits in place (the halves fill the
        same files, whose records stay: ``run.seen`` drops their repeats); a larger one
        raises, to go on as one batch per window."""
        spans = self._spans(run)
        failed: set[Window] = set()
        while spans:
            span, job_id, cursor = spans.pop(0)
            try:
                await self._read_span(run, span, job_id, cursor)
            except (JobFailed, ResultsExpired) as exc:
                if isinstance(exc, JobFailed) and span not in failed:
                    log.warning("job over %s: %s Submitting it again.", span.interval, exc)
                    failed.add(span)
                    spans.insert(0, (span, None, None))
                elif len(run.batch.items) > 1:
                    raise
                else:
                    spans[:0] = [(half, None, None) for half in self._halves(span, exc)]

    def _spans(self, run: BatchRun) -> list[Span]:
        """The spans to read in turn: the checkpointed job first, if any."""
        batch, point = run.batch, run.files.point
        if point.job_id is None:
            return [(batch.span, None, None)]
        first = point.job_interval or batch.span
        spans: list[Span] = [(first, point.job_id, point.cursor)]
        if first.end < batch.span.end:
            spans.append((Window(first.end, batch.span.end), None, None))
        return spans

    async def _read_span(
        self, run: BatchRun, span: Window, job_id: str | None, cursor: str | None
    ) -> None:
        if job_id is None:
            self._spend_job(run.batch)
            await self._fetcher.submit(run, span)
        else:
            await self._fetcher.resume(run, job_id)
        await self._fetcher.read_job(run, span, cursor)

    def _spend_job(self, batch: Batch) -> None:
        most = self._jobs.max_jobs_per_window
        names = [(batch.dataset.name, item.name) for item in batch.items]
        if max(self._jobs_spent[name] for name in names) >= most:
            raise WindowFailed(
                f"{most} jobs were spent on it this run (failed or expired); run again later, "
                "or raise jobs.max_jobs_per_window."
            )
        self._jobs_spent.update(names)

    def _halves(self, span: Window, failure: ApiError) -> tuple[Window, Window]:
        if (span.end - span.start) / 2 < self._jobs.split_min:
            raise WindowFailed(
                f"{failure} Halves of its job over {span.interval} would be shorter than "
                "jobs.split_min."
            )
        first, second = span.halves()
        log.warning("job over %s: %s Splitting it in half.", span.interval, failure)
        return first, second

    async def _abandon(self, run: BatchRun, exc: BaseException) -> None:
        """Keep a batch that ends early (a stop, a fatal error, a stuck job); discard one
        that failed."""
        run.abandoned = True
        if not isinstance(exc, ApiError) and run.batch.source == "jobs":
            await self._files.call(self._keep, run)
            return
        await self._files.call(run.files.discard)
        if run.job_id is not None:
            await self._delete_job_quietly(run)

    def _keep(self, run: BatchRun) -> None:
        """Keep the files at the resume point; with no job to continue there is nothing a
        later run could resume from this point, so the files go instead."""
        if run.files.point.job_id is None:
            run.files.discard()
            return
        point = run.files.keep()
        run.ledger.checkpoint(run.batch.items, point)
        records = sum(count for _, count in point.offsets)
        log.debug("%s %s: kept at its checkpoint (job %s, %d records written)",
                  run.dataset.name, run.batch.name, point.job_id, records,
                  extra={"dataset": run.dataset.name, "window": run.batch.name,
                         "job_id": point.job_id, "records": records})  # fmt: skip

    async def _delete_job_quietly(self, run: BatchRun) -> None:
        assert run.job_id is not None
        await delete_quietly(self._api, run.dataset.api, run.job_id)


def new_run_id() -> str:
    """A sortable, unique id for the run that wrote a window."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
