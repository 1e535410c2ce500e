"""The one writer of an export: typed messages from the fetchers, applied in order.

    fetchers --WritePage / JobStarted / Commit--> bounded queue --> Writer --> files thread

The queue is bounded, so a slow disk slows fetching instead of growing memory. Every file and
manifest operation runs in one thread (``FilesThread``), one whole operation per call: a
cancelled await never leaves half a page or half a commit, and the thread's order is the
queue's order, so a commit always follows every page of its batch.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from exporter.datasets.records import Records, WindowBounds
from exporter.datasets.seen import SeenKeys
from exporter.engine.ledger import Ledger
from exporter.engine.windowset import WindowSet
from exporter.plan import Batch
from exporter.progress import Progress
from exporter.store.manifest import Opened
from exporter.windows import Window

if TYPE_CHECKING:
    from exporter.datasets.base import Windowed

_P = ParamSpec("_P")
_T = TypeVar("_T")


class FilesThread:
    """The export's one thread for blocking file and manifest work."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="genesys-export-files")

    async def call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Wait for the work already handed over (even work whose await was cancelled)."""
        self._executor.shutdown(wait=True)


@dataclass(slots=True)
class BatchRun:
    """The live state of one batch: its files, what it has read, and its job."""

    batch: Batch
    files: WindowSet
    bounds: WindowBounds
    ledger: Ledger  # its dataset's manifest records
    seen: SeenKeys = field(default_factory=SeenKeys)
    job_id: str | None = None  # the job being read (the worker's view)
    availability: str | None = None
    checkpointed_at: float = 0.0
    abandoned: bool = False  # its queued messages are dropped
    repeats: int = 0  # records dropped because they were already written
    # Per window: the records written that are still going on, by key.
    opened: list[dict[str, Opened]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.opened = [{} for _ in self.batch.items]

    def note_opened(self, found: Iterable[tuple[int, Opened]]) -> None:
        for window, record in found:
            self.opened[window][record.key] = record

    @property
    def dataset(self) -> Windowed:
        return self.batch.dataset


@dataclass(frozen=True, slots=True)
class WritePage:
    """One page's records, sorted into the batch's windows, and the cursor after it."""

    run: BatchRun
    windows: list[Records]
    cursor: str | None
    availability: str | None


@dataclass(frozen=True, slots=True)
class JobStarted:
    """A job was submitted for ``interval``: checkpoint it, so no run loses track of it."""

    run: BatchRun
    job_id: str
    interval: Window


@dataclass(frozen=True, slots=True)
class Commit:
    """Every page of the batch is queued before this: commit its windows."""

    run: BatchRun
    done: asyncio.Future[None]


Message = WritePage | JobStarted | Commit


class Writer:
    """Applies messages in order until it receives None."""

    def __init__(
        self,
        queue: asyncio.Queue[Message | None],
        files: FilesThread,
        *,
        checkpoint_s: float,
        progress: Progress,
    ) -> None:
        self._queue = queue
        self._files = files
        self._checkpoint_s = checkpoint_s
        self._progress = progress
        self._clock = asyncio.get_running_loop().time

    async def run(self) -> None:
        while (message := await self._queue.get()) is not None:
            if message.run.abandoned:  # its batch was dropped while this waited
                continue
            match message:
                case WritePage():
                    await self._write(message)
                case JobStarted():
                    message.run.checkpointed_at = self._clock()
                    await self._files.call(self._start_job, message)
                case Commit():
                    await self._files.call(self._commit, message.run)
                    self._progress.windows_done(len(message.run.batch.items))
                    if not message.done.done():  # a stopped worker no longer waits
                        message.done.set_result(None)

    async def _write(self, page: WritePage) -> None:
        run = page.run
        written = await self._files.call(self._write_page, page)
        self._progress.advance(written)
        run.availability = page.availability or run.availability
        due = self._clock() - run.checkpointed_at >= self._checkpoint_s
        if due and run.files.point.job_id is not None:
            run.checkpointed_at = self._clock()
            await self._files.call(self._checkpoint, run)

    # In the files thread. Each checks ``abandoned`` there: a batch is abandoned in the loop
    # before its files are discarded or kept in this thread, so work queued after that point
    # sees it, and work queued before runs first.

    def _write_page(self, page: WritePage) -> int:
        if page.run.abandoned:
            return 0
        return page.run.files.write_page(page.windows, page.cursor)

    def _checkpoint(self, run: BatchRun) -> None:
        if not run.abandoned:
            run.ledger.checkpoint(run.batch.items, run.files.sync())

    def _start_job(self, message: JobStarted) -> None:
        run = message.run
        if run.abandoned:
            return
        point = run.files.start_job(message.job_id, message.interval)
        run.ledger.checkpoint(run.batch.items, point)

    def _commit(self, run: BatchRun) -> None:
        batch = run.batch
        digests = run.files.commit(run.dataset.router.finish)
        run.ledger.commit(
            batch.items,
            digests,
            provisional=[batch.source == "query" or not item.slot.full for item in batch.items],
            opened=run.opened,
            source=batch.source,
            job_id=run.job_id,
            availability=run.availability,
        )
