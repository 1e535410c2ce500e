"""One batch's window files, and the protocol that turns them into committed windows.

A batch writes one part file per window (a ``store.sink.Sink``: JSONL today). The protocol: open
(fresh, or at a checkpoint), write pages, keep a resume point that always names a state the
files can return to, then commit (every file durable and renamed into place), keep (a stop:
durable and closed, to resume), or discard (a failure). Every method blocks: the engine calls
them in its one files thread, so each runs whole even when the await on it is cancelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from exporter.datasets.records import Records
from exporter.errors import OutputError
from exporter.store.jsonl import FileDigest
from exporter.store.manifest import WindowRecord
from exporter.store.sink import Sink, SinkFactory
from exporter.windows import Window

Offsets = tuple[tuple[int, int], ...]  # per file: (bytes, records)
Finish = Callable[[Iterator[bytes]], Records | None]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a batch can continue from: the job and the cursor of the next page to read, and
    each file's length and records when every page before that cursor was written."""

    job_id: str | None
    job_interval: Window | None
    cursor: str | None
    offsets: Offsets


class WindowSet:
    """The part files of one batch, in window order, and its resume point."""

    def __init__(
        self,
        paths: Sequence[Path],
        sink: SinkFactory,
        resume: Sequence[WindowRecord] | None = None,
    ) -> None:
        self.files = [sink(path) for path in paths]
        self._resume = resume
        first = resume[0] if resume else None
        interval = first.job_interval if first is not None else None
        self.point = ResumePoint(
            job_id=first.job_id if first else None,
            job_interval=Window.from_interval(interval) if interval else None,
            cursor=first.cursor if first else None,
            offsets=tuple((r.part_offset, r.part_records) for r in resume)
            if resume
            else ((0, 0),) * len(self.files),
        )

    def open(self) -> None:
        """Create every part file, or reopen each at its checkpoint."""
        for file, (offset, records) in zip(self.files, self.point.offsets, strict=True):
            if self._resume:
                file.resume(offset, records)
            else:
                file.create()

    def written(self) -> Iterator[bytes]:
        """Every record already in the part files (a resumed batch's, to know its keys)."""
        for file in self.files:
            if file.records:
                yield from file.written()

    def start_job(self, job_id: str, interval: Window) -> ResumePoint:
        """A job was submitted for ``interval``: resume at its first page from here on."""
        self.point = replace(self.point, job_id=job_id, job_interval=interval, cursor=None)
        return self.point

    def write_page(self, windows: Sequence[Records], cursor: str | None) -> int:
        """Append each window's records of one page; the resume point moves past the page
        only once every file has it. Returns the records written."""
        for file, records in zip(self.files, windows, strict=True):
            file.append(records)
        offsets = tuple((file.bytes_written, file.records) for file in self.files)
        if cursor is None:  # the job is read to its end: nothing to resume in it
            self.point = ResumePoint(None, None, None, offsets)
        else:
            self.point = replace(self.point, cursor=cursor, offsets=offsets)
        return sum(len(records) for records in windows)

    def sync(self) -> ResumePoint:
        """Make the files durable up to at least the resume point; return it."""
        for file in self.files:
            file.sync()
        return self.point

    def commit(self, finish: Finish) -> list[FileDigest]:
        """Make every file durable and rename it into place; ``finish`` may first turn the
        lines written into the window's final lines (user details merge a user's pages).
        Returns each file's digest."""
        committed = []
        for file in self.files:
            final = finish(_lines(file))
            committed.append(file.commit() if final is None else file.commit_instead([final]))
        return committed

    def keep(self) -> ResumePoint:
        """Make the files durable as far as possible and close them, for a later run to
        resume at the returned point (it truncates anything written beyond it)."""
        for file in self.files:
            with contextlib.suppress(OutputError, RuntimeError):  # failed or never opened
                file.sync()
            file.close()
        return self.point

    def discard(self) -> None:
        """Close and delete every part file."""
        for file in self.files:
            with contextlib.suppress(OutputError):
                file.discard()


def _lines(file: Sink) -> Iterator[bytes]:
    """The lines of a part file, read only if asked for."""
    yield from file.written()
