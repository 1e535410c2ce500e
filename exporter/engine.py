"""The export run: batch workers feed one bounded queue; one writer turns pages into files.

    workers (one per concurrent job) --pages--> bounded queue --> writer --> part files, manifest

A batch is one job over consecutive windows (``plan.batch_work``), or one window read by the
query; each record goes to the file of the window it started in. Every task lives in one
TaskGroup. A slow disk fills the queue and so slows fetching instead of growing memory.
Checkpoints (the job id and cursor, and each part file's offset) go to the manifest every
``checkpoint_s``, so a run killed at any moment resumes mid-job; a batch's windows become
visible together, when their files are complete and renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter import analytics
from exporter.analytics import CursorRejected, JobExpired, JobFailed
from exporter.config import Settings
from exporter.errors import ApiError, OutputError
from exporter.http import ApiClient
from exporter.manifest import Manifest, WindowRecord
from exporter.output import SUFFIXES, PartFileLost, WindowFile
from exporter.plan import Batch, Source, WorkItem
from exporter.progress import Progress
from exporter.records import Records, WindowBounds, select_for_windows
from exporter.windows import Window, format_instant

log = logging.getLogger("exporter")
ENTITY = "conversations"
# A job that expires or loses its cursor is resubmitted from scratch, a few times at most.
MAX_RESTARTS = 3
DELETE_TIMEOUT_S = 10.0
# Pages waiting for the writer. Each holds a whole body (~5 MB at 1,000 records); two keep the
# writer busy while the next arrives, and more only add memory (measured in benchmarks/).
QUEUED_PAGES = 2
Command = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class BatchRun:
    """The live state of one batch: the job (or query) and the files of its windows."""

    batch: Batch
    files: list[WindowFile]  # one per window, in the batch's order
    bounds: WindowBounds
    seen: set[str] | None  # the query's ids so far (job results cannot repeat a record)
    job_id: str | None = None
    cursor: str | None = None
    availability: str | None = None
    checkpointed_at: float = 0.0
    done: asyncio.Future[None] | None = None
    abandoned: bool = False  # its queued writes and commit are dropped

    @property
    def source(self) -> Source:
        return self.batch.source


@dataclass(slots=True)
class RunCounters:
    windows_done: int = 0
    records: int = 0
    provisional: int = 0
    failed: list[str] = field(default_factory=list)


class ExportRun:
    """Exports a list of batches into ``settings.output.out_dir``."""

    def __init__(
        self,
        settings: Settings,
        api: ApiClient,
        manifest: Manifest,
        *,
        run_id: str,
        watermark: datetime,
        progress: Progress,
    ) -> None:
        self._settings = settings
        self._jobs = settings.jobs
        self._out = settings.output.out_dir
        self._api = api
        self._manifest = manifest
        self._manifest_lock = asyncio.Lock()
        self._run_id = run_id
        self._watermark = format_instant(watermark)
        self._progress = progress
        self._queue: asyncio.Queue[Command | None] = asyncio.Queue(maxsize=QUEUED_PAGES)
        self._batches: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._outstanding = 0
        self._workers = 1
        self._files: Executor | None = None  # the one thread of every window file, during run
        self._clock = asyncio.get_running_loop().time
        self.stopping = False
        self.counters = RunCounters()

    async def run(self, batches: list[Batch]) -> RunCounters:
        """Export every batch; returns what was done. Fatal errors propagate after cleanup."""
        if not batches:
            return self.counters
        self._workers = max(1, min(self._jobs.max_concurrent_jobs, len(batches)))
        for batch in batches:
            self._enqueue(batch)
        # Leaving waits for the thread, so even a file operation whose await was cancelled
        # has finished when the run returns.
        with ThreadPoolExecutor(1, thread_name_prefix="genesys-export-files") as self._files:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._writer())
                async with asyncio.TaskGroup() as workers:
                    for _ in range(self._workers):
                        workers.create_task(self._worker())
                await self._queue.put(None)  # every page is queued: let the writer finish
        return self.counters

    # -- work distribution ----------------------------------------------------------------

    def _enqueue(self, batch: Batch) -> None:
        self._outstanding += 1
        self._batches.put_nowait(batch)

    def _finished_batch(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0:  # release every idle worker, then the writer
            for _ in range(self._workers):
                self._batches.put_nowait(None)

    async def _worker(self) -> None:
        while (batch := await self._batches.get()) is not None:
            try:
                await self._export_batch(batch)
            finally:
                self._finished_batch()

    async def _export_batch(self, batch: Batch) -> None:
        for _ in range(MAX_RESTARTS + 1):
            try:
                await self._export_once(batch)
                return
            except (JobExpired, CursorRejected, PartFileLost) as exc:
                log.warning("%s: %s; exporting it again from the start", batch.name, exc)
                batch = batch.afresh()
            except JobFailed as exc:
                self._split_or_fail(batch, str(exc))
                return
            except ApiError as exc:  # includes retries exhausted: this batch fails, others go on
                await self._record_failure(batch, str(exc))
                return
        await self._record_failure(batch, f"its job expired {MAX_RESTARTS + 1} times")

    def _split_or_fail(self, batch: Batch, reason: str) -> None:
        """A failed job: retry its windows one job each, then halve a failing window."""
        source, why = batch.source, "split after failure"
        if len(batch.items) > 1:
            log.warning("job for %s failed (%s); one job per window now", batch.name, reason)
            for window in batch.windows:
                self._enqueue(Batch((WorkItem(window, "fetch", source, why),)))
            return
        window = batch.items[0].window
        if window.end - window.start <= self._jobs.split_min:
            self._note_failure(window, reason)
            return
        first, second = window.halves()
        log.warning(
            "window %s failed (%s); splitting it into %s and %s",
            window.name,
            reason,
            first.name,
            second.name,
        )
        self._enqueue(Batch((WorkItem(first, "fetch", source, why),)))
        self._enqueue(Batch((WorkItem(second, "fetch", source, why),)))

    def _note_failure(self, window: Window, reason: str) -> None:
        self.counters.failed.append(f"{window.name}: {reason}")
        log.error("window %s failed and cannot be split further: %s", window.name, reason)

    async def _record_failure(self, batch: Batch, reason: str) -> None:
        async with self._manifest_lock:
            for item in batch.items:
                self._note_failure(item.window, reason)
                if self._manifest.get(ENTITY, item.window.name) is None:
                    self._manifest.put(
                        ENTITY, self._record(item.window, "failed", item.source, error=reason)
                    )
            await asyncio.to_thread(self._manifest.save)

    # -- one batch ------------------------------------------------------------------------

    async def _export_once(self, batch: Batch) -> None:
        run = await self._open(batch)
        try:
            if run.source == "query":
                await self._fetch_by_query(run)
            else:
                await self._fetch_by_job(run)
            await self._commit(run)
        except BaseException as exc:
            await self._abandon(run, exc)
            raise
        if run.job_id is not None:
            await self._delete_job_quietly(run.job_id)

    async def _open(self, batch: Batch) -> BatchRun:
        """Open every window's part file: at its checkpoint when the whole batch can resume
        one job, else afresh (the files of one job are only consistent together)."""
        compression = self._settings.output.compression
        checkpoints = [item.resume for item in batch.items]
        resume = all(c is not None and c.compression == compression for c in checkpoints)
        files: list[WindowFile] = []
        try:
            for item, checkpoint in zip(batch.items, checkpoints, strict=True):
                path = self._out / ENTITY / (item.window.name + SUFFIXES[compression])
                file = WindowFile(path, compression, self._files)
                files.append(file)
                if resume and checkpoint is not None:
                    await file.open(
                        resume_offset=checkpoint.part_offset,
                        resume_records=checkpoint.part_records,
                    )
                else:
                    await file.open()
        except BaseException:
            for opened in files:  # keep their part files: nothing was written to them yet
                with contextlib.suppress(OutputError):
                    await asyncio.shield(opened.close())
            raise
        seen: set[str] | None = set() if batch.source == "query" else None
        run = BatchRun(batch, files, WindowBounds(batch.windows), seen)
        first = checkpoints[0]
        if resume and first is not None:
            run.job_id, run.cursor = first.job_id, first.cursor
        run.checkpointed_at = self._clock()
        for window in batch.windows:
            self._progress.window_started(window.name)
        return run

    async def _fetch_by_job(self, run: BatchRun) -> None:
        jobs, api = self._jobs, self._api
        if run.job_id is None:
            run.job_id = await analytics.submit_job(api, run.batch.span)
            await self._save_checkpoint(run, [(0, 0)] * len(run.files))  # no orphaned job
            await self._wait_job(run.job_id, first_poll_s=jobs.poll_initial_s)
        else:
            await self._wait_job(run.job_id, first_poll_s=0.0)
        pages = analytics.job_pages(
            api, run.job_id, page_size=jobs.page_size, cursor=run.cursor, span=run.batch.span
        )
        async for page, single_line in pages:
            selections = select_for_windows(
                page.conversations, run.bounds, None, single_line=single_line
            )
            await self._queue.put(
                self._writing(run, selections, page.cursor, page.dataAvailabilityDate)
            )

    async def _wait_job(self, job_id: str, *, first_poll_s: float) -> None:
        await analytics.wait_fulfilled(
            self._api,
            job_id,
            first_poll_s=first_poll_s,
            max_poll_s=self._jobs.poll_max_s,
            timeout_s=self._jobs.job_timeout_s,
        )

    async def _fetch_by_query(self, run: BatchRun) -> None:
        run.availability = self._watermark
        span = run.batch.span
        pages = analytics.query_pages(self._api, span, page_size=self._jobs.query_page_size)
        async for page, single_line in pages:
            selections = select_for_windows(
                page.conversations, run.bounds, run.seen, single_line=single_line
            )
            await self._queue.put(self._writing(run, selections, None, None))

    async def _commit(self, run: BatchRun) -> None:
        loop = asyncio.get_running_loop()
        run.done = loop.create_future()
        await self._queue.put(lambda: self._committing(run))
        await run.done

    async def _abandon(self, run: BatchRun, exc: BaseException) -> None:
        """Drop the job and part files of a batch that will be redone (API errors) or not read
        (a stop signal). Fatal errors keep them: like a SIGKILL, the next run resumes there.
        Either way the batch's pages still queued for the writer are dropped, not written."""
        run.abandoned = True
        if not (self.stopping or isinstance(exc, ApiError)):
            for file in run.files:  # keep the part files, release the handles
                with contextlib.suppress(OutputError):
                    await asyncio.shield(file.close())
            return
        for file in run.files:
            with contextlib.suppress(OutputError):
                await asyncio.shield(file.discard())
        if run.job_id is not None:
            await asyncio.shield(self._delete_job_quietly(run.job_id))
        async with self._manifest_lock:
            removed = False
            for name in (window.name for window in run.batch.windows):
                record = self._manifest.get(ENTITY, name)
                if record is not None and record.status == "in-progress":
                    self._manifest.remove(ENTITY, name)
                    removed = True
            if removed:
                await asyncio.shield(asyncio.to_thread(self._manifest.save))

    async def _delete_job_quietly(self, job_id: str) -> None:
        try:
            async with asyncio.timeout(DELETE_TIMEOUT_S):
                await analytics.delete_job(self._api, job_id)
        except (ApiError, TimeoutError) as exc:
            log.info("could not delete job %s (%s); it expires on its own", job_id, exc)

    # -- the writer (one task; runs the commands the workers queue, in order) --------------

    async def _writer(self) -> None:
        while (command := await self._queue.get()) is not None:
            await command()

    def _writing(
        self,
        run: BatchRun,
        selections: list[Records],
        cursor: str | None,
        availability: str | None,
    ) -> Command:
        async def write() -> None:
            if run.abandoned:
                return
            try:
                await self._write_page(run, selections, cursor, availability)
            except Exception:
                if run.abandoned:  # the batch was dropped while this write waited its turn
                    return
                raise

        return write

    async def _write_page(
        self,
        run: BatchRun,
        selections: list[Records],
        cursor: str | None,
        availability: str | None,
    ) -> None:
        for file, records in zip(run.files, selections, strict=True):
            if records:
                await file.write(records)
                self._progress.advance(len(records))
                self.counters.records += len(records)
        run.cursor = cursor
        run.availability = availability or run.availability
        due = self._clock() - run.checkpointed_at >= self._settings.output.checkpoint_s
        if due and cursor and run.job_id:
            offsets = [await file.checkpoint() for file in run.files]
            await self._save_checkpoint(run, offsets)

    async def _save_checkpoint(self, run: BatchRun, offsets: list[tuple[int, int]]) -> None:
        """Record the job, its cursor and each part file's (offset, records) in one save."""
        run.checkpointed_at = self._clock()
        async with self._manifest_lock:
            for window, (offset, records) in zip(run.batch.windows, offsets, strict=True):
                record = self._record(
                    window,
                    "in-progress",
                    run.source,
                    job_id=run.job_id,
                    cursor=run.cursor,
                    part_offset=offset,
                    part_records=records,
                )
                self._manifest.put(ENTITY, record)
            await asyncio.to_thread(self._manifest.save)

    async def _committing(self, run: BatchRun) -> None:
        done = run.done
        assert done is not None
        if run.abandoned or done.done():  # the worker was stopped while this commit waited
            return
        status = "provisional" if run.source == "query" else "complete"
        try:
            records = [
                await self._committed(run, window, file, status)
                for window, file in zip(run.batch.windows, run.files, strict=True)
            ]
            async with self._manifest_lock:
                for record in records:
                    self._replace_inner(record)
                    self._manifest.put(ENTITY, record)
                await asyncio.to_thread(self._manifest.save)
        except Exception as exc:  # the worker awaiting ``done`` raises it
            if not (run.abandoned or done.done()):
                done.set_exception(exc)
            return
        self.counters.windows_done += len(records)
        if status == "provisional":
            self.counters.provisional += len(records)
        for record in records:
            self._progress.window_done(record.name)
        if not done.done():  # a stopped worker cancelled it; the batch is committed anyway
            done.set_result(None)

    async def _committed(
        self, run: BatchRun, window: Window, file: WindowFile, status: str
    ) -> WindowRecord:
        digest = await file.commit()
        return self._record(
            window,
            status,
            run.source,
            file=digest.path.relative_to(self._out).as_posix(),
            records=digest.records,
            bytes=digest.bytes,
            sha256=digest.sha256,
            job_id=run.job_id,
            data_availability_date=run.availability,
        )

    def _replace_inner(self, record: WindowRecord) -> None:
        """Drop earlier records inside ``record``'s window (split halves, older provisional
        tails)."""
        for old in self._manifest.overlapping(ENTITY, record.start_ms, record.end_ms):
            if old.name == record.name:
                continue
            self._manifest.remove(ENTITY, old.name)
            if old.file:
                with contextlib.suppress(FileNotFoundError):
                    (self._out / old.file).unlink()

    def _record(
        self, window: Window, status: str, source: Source | None, **fields: Any
    ) -> WindowRecord:
        fields.setdefault("file", None)
        return WindowRecord(
            name=window.name,
            start=format_instant(window.start),
            end=format_instant(window.end),
            status=status,  # type: ignore[arg-type]
            source=source,
            compression=self._settings.output.compression,
            run_id=self._run_id,
            updated=datetime.now(UTC).isoformat(timespec="seconds"),
            **fields,
        )


def new_run_id() -> str:
    """A sortable, unique id for the run that wrote a window."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
