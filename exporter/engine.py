"""The export run: window workers feed one bounded queue; one writer turns pages into files.

    workers (one per concurrent job) --pages--> bounded queue --> writer --> part files, manifest

Every task lives in one TaskGroup. A slow disk fills the queue and so slows fetching instead of
growing memory. Checkpoints (part-file offset + job id + cursor) go to the manifest every
``checkpoint_s``, so a run killed at any moment resumes mid-window; a window becomes visible only
when its file is complete and renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from exporter import analytics
from exporter.analytics import CursorRejected, JobExpired, JobFailed
from exporter.config import Settings
from exporter.errors import ApiError, OutputError
from exporter.http import ApiClient
from exporter.manifest import Manifest, WindowRecord
from exporter.output import SUFFIXES, PartFileLost, WindowFile
from exporter.plan import Source, WorkItem
from exporter.progress import Progress
from exporter.records import Selection, select_for_window
from exporter.windows import Window, format_instant

log = logging.getLogger("exporter")
ENTITY = "conversations"
# A job that expires or loses its cursor is resubmitted from scratch, a few times at most.
MAX_RESTARTS = 3
DELETE_TIMEOUT_S = 10.0
Command = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class WindowRun:
    """The live state of one window being exported."""

    item: WorkItem
    window: Window
    source: Source
    file: WindowFile
    job_id: str | None = None
    cursor: str | None = None
    availability: str | None = None
    seen: set[str] = field(default_factory=set)
    checkpointed_at: float = 0.0
    done: asyncio.Future[None] | None = None
    abandoned: bool = False  # queued writes for an abandoned window are dropped


@dataclass(slots=True)
class RunCounters:
    windows_done: int = 0
    records: int = 0
    provisional: int = 0
    failed: list[str] = field(default_factory=list)


class ExportRun:
    """Exports a list of work items into ``settings.output.out_dir``."""

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
        self._queue: asyncio.Queue[Command | None] = asyncio.Queue(
            maxsize=settings.http.concurrency * 2
        )
        self._items: asyncio.Queue[WorkItem | None] = asyncio.Queue()
        self._outstanding = 0
        self._workers = 1
        self._clock = asyncio.get_running_loop().time
        self.stopping = False
        self.counters = RunCounters()

    async def run(self, items: list[WorkItem]) -> RunCounters:
        """Export every item; returns what was done. Fatal errors propagate after cleanup."""
        todo = [i for i in items if i.action != "skip"]
        if not todo:
            return self.counters
        self._workers = max(1, min(self._jobs.max_concurrent_jobs, len(todo)))
        for item in todo:
            self._enqueue(item)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._writer())
            async with asyncio.TaskGroup() as workers:
                for _ in range(self._workers):
                    workers.create_task(self._worker())
            await self._queue.put(None)  # every page is queued: let the writer finish
        return self.counters

    # -- work distribution ----------------------------------------------------------------

    def _enqueue(self, item: WorkItem) -> None:
        self._outstanding += 1
        self._items.put_nowait(item)

    def _finished_item(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0:  # release every idle worker, then the writer
            for _ in range(self._workers):
                self._items.put_nowait(None)

    async def _worker(self) -> None:
        while (item := await self._items.get()) is not None:
            try:
                await self._export_item(item)
            finally:
                self._finished_item()

    async def _export_item(self, item: WorkItem) -> None:
        for _ in range(MAX_RESTARTS + 1):
            try:
                await self._export_window(item)
                return
            except (JobExpired, CursorRejected, PartFileLost) as exc:
                log.warning(
                    "window %s: %s; exporting it again from the start", item.window.name, exc
                )
                item = replace(item, action="fetch", resume=None)
            except JobFailed as exc:
                self._split_or_fail(item, str(exc))
                return
            except ApiError as exc:  # includes retries exhausted: this window fails, others go on
                await self._record_failure(item, str(exc))
                return
        await self._record_failure(item, f"its job expired {MAX_RESTARTS + 1} times")

    def _split_or_fail(self, item: WorkItem, reason: str) -> None:
        window = item.window
        if window.end - window.start <= self._jobs.split_min:
            self._enqueue_failure(item, reason)
            return
        first, second = window.halves()
        log.warning(
            "window %s failed (%s); splitting it into %s and %s",
            window.name,
            reason,
            first.name,
            second.name,
        )
        self._enqueue(WorkItem(first, "fetch", item.source, "split after failure"))
        self._enqueue(WorkItem(second, "fetch", item.source, "split after failure"))

    def _enqueue_failure(self, item: WorkItem, reason: str) -> None:
        self.counters.failed.append(f"{item.window.name}: {reason}")
        log.error("window %s failed and cannot be split further: %s", item.window.name, reason)

    async def _record_failure(self, item: WorkItem, reason: str) -> None:
        self._enqueue_failure(item, reason)
        async with self._manifest_lock:
            if self._manifest.get(ENTITY, item.window.name) is None:
                self._manifest.put(
                    ENTITY, self._record(item.window, "failed", item.source, error=reason)
                )
                await asyncio.to_thread(self._manifest.save)

    # -- one window -----------------------------------------------------------------------

    async def _export_window(self, item: WorkItem) -> None:
        run = await self._open(item)
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

    async def _open(self, item: WorkItem) -> WindowRun:
        compression = self._settings.output.compression
        path = self._out / ENTITY / (item.window.name + SUFFIXES[compression])
        run = WindowRun(item, item.window, item.source, WindowFile(path, compression))
        checkpoint = item.resume
        if checkpoint is not None and checkpoint.compression == compression:
            await run.file.open(
                resume_offset=checkpoint.part_offset, resume_records=checkpoint.part_records
            )
            run.job_id, run.cursor = checkpoint.job_id, checkpoint.cursor
        else:
            await run.file.open()
        run.checkpointed_at = self._clock()
        self._progress.window_started(item.window.name)
        return run

    async def _fetch_by_job(self, run: WindowRun) -> None:
        jobs, api = self._jobs, self._api
        if run.job_id is None:
            run.job_id = await analytics.submit_job(api, run.window)
            await self._save_checkpoint(run, offset=0, records=0)  # so a kill cannot orphan it
            await self._wait_job(run.job_id, first_poll_s=jobs.poll_initial_s)
        else:
            await self._wait_job(run.job_id, first_poll_s=0.0)
        pages = analytics.job_pages(api, run.job_id, page_size=jobs.page_size, cursor=run.cursor)
        async for body, page in pages:
            selection = select_for_window(
                page.conversations, run.window, run.seen, single_line=b"\n" not in body
            )
            await self._queue.put(
                self._writing(run, selection, page.cursor, page.dataAvailabilityDate)
            )

    async def _wait_job(self, job_id: str, *, first_poll_s: float) -> None:
        await analytics.wait_fulfilled(
            self._api,
            job_id,
            first_poll_s=first_poll_s,
            max_poll_s=self._jobs.poll_max_s,
            timeout_s=self._jobs.job_timeout_s,
        )

    async def _fetch_by_query(self, run: WindowRun) -> None:
        run.availability = self._watermark
        pages = analytics.query_pages(self._api, run.window, page_size=self._jobs.query_page_size)
        async for body, page in pages:
            selection = select_for_window(
                page.conversations, run.window, run.seen, single_line=b"\n" not in body
            )
            await self._queue.put(self._writing(run, selection, None, None))

    async def _commit(self, run: WindowRun) -> None:
        loop = asyncio.get_running_loop()
        run.done = loop.create_future()
        await self._queue.put(lambda: self._committing(run))
        await run.done

    async def _abandon(self, run: WindowRun, exc: BaseException) -> None:
        """Drop the job and part file of a window that will be redone (API errors) or not read
        (a stop signal). Fatal errors keep them: like a SIGKILL, the next run resumes there."""
        if not (self.stopping or isinstance(exc, ApiError)):
            with contextlib.suppress(OutputError):  # keep the part file, release the handle
                await asyncio.shield(run.file.close())
            return
        run.abandoned = True
        with contextlib.suppress(OutputError):
            await asyncio.shield(run.file.discard())
        if run.job_id is not None:
            await asyncio.shield(self._delete_job_quietly(run.job_id))
        async with self._manifest_lock:
            record = self._manifest.get(ENTITY, run.window.name)
            if record is not None and record.status == "in-progress":
                self._manifest.remove(ENTITY, run.window.name)
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
        self, run: WindowRun, selection: Selection, cursor: str | None, availability: str | None
    ) -> Command:
        async def write() -> None:
            if run.abandoned:
                return
            try:
                await self._write_page(run, selection, cursor, availability)
            except Exception:
                if run.abandoned:  # the window was dropped while this write waited its turn
                    return
                raise

        return write

    async def _write_page(
        self, run: WindowRun, selection: Selection, cursor: str | None, availability: str | None
    ) -> None:
        if selection.records:
            await run.file.write(selection.lines, selection.records)
            self._progress.advance(selection.records)
            self.counters.records += selection.records
        run.cursor = cursor
        run.availability = availability or run.availability
        due = self._clock() - run.checkpointed_at >= self._settings.output.checkpoint_s
        if due and cursor and run.job_id:
            offset, records = await run.file.checkpoint()
            await self._save_checkpoint(run, offset=offset, records=records)

    async def _save_checkpoint(self, run: WindowRun, *, offset: int, records: int) -> None:
        run.checkpointed_at = self._clock()
        record = self._record(
            run.window,
            "in-progress",
            run.source,
            job_id=run.job_id,
            cursor=run.cursor,
            part_offset=offset,
            part_records=records,
        )
        async with self._manifest_lock:
            self._manifest.put(ENTITY, record)
            await asyncio.to_thread(self._manifest.save)

    async def _committing(self, run: WindowRun) -> None:
        done = run.done
        assert done is not None
        if run.abandoned or done.done():  # the worker was stopped while this commit waited
            return
        try:
            digest = await run.file.commit()
            status = "provisional" if run.source == "query" else "complete"
            record = self._record(
                run.window,
                status,
                run.source,
                file=digest.path.relative_to(self._out).as_posix(),
                records=digest.records,
                bytes=digest.bytes,
                sha256=digest.sha256,
                job_id=run.job_id,
                data_availability_date=run.availability,
            )
            async with self._manifest_lock:
                self._replace_inner(run.window)
                self._manifest.put(ENTITY, record)
                await asyncio.to_thread(self._manifest.save)
        except Exception as exc:  # the worker awaiting ``done`` raises it
            if not (run.abandoned or done.done()):
                done.set_exception(exc)
            return
        self.counters.windows_done += 1
        self.counters.provisional += status == "provisional"
        self._progress.window_done(run.window.name)
        if not done.done():  # a stopped worker cancelled it; the window is committed anyway
            done.set_result(None)

    def _replace_inner(self, window: Window) -> None:
        """Drop earlier records inside ``window`` (split halves, older provisional tails)."""
        for old in self._manifest.overlapping(ENTITY, window.start_ms, window.end_ms):
            if old.name == window.name:
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
