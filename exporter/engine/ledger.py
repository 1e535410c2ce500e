"""The manifest as one run changes it: checkpoints, commits and failures, each saved at once.

Every method blocks and runs in the export's files thread, after the file operations it
describes, so the manifest never claims more than the disk holds. A commit also makes the
window's file the only one: records it replaces (older fragments, split halves) and files of
the same window in another compression are removed once the new file is in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.engine.windowset import ResumePoint
from exporter.plan import WorkItem
from exporter.privacy import Protected
from exporter.store.jsonl import SUFFIXES, Compression, FileDigest, JsonlFile
from exporter.store.manifest import Manifest, Opened, Source, Status, WindowRecord
from exporter.store.sink import Sink
from exporter.windows import format_instant

log = logging.getLogger(__name__)


class Ledger:
    """One dataset's manifest records, written by one run."""

    def __init__(
        self,
        manifest: Manifest,
        dataset: str,
        *,
        run_id: str,
        compression: Compression,
        protect: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """``protect``: what the privacy profile does to each record of the dataset before it
        is written (None: nothing, as profile none)."""
        self.manifest = manifest
        self.protect = protect
        self.dataset = dataset
        self.run_id = run_id
        self._compression = compression
        self._out = manifest.out_dir

    @property
    def compression(self) -> Compression:
        return self._compression

    def sink(self, path: Path) -> Sink:
        """The sink a window's file is written through (the privacy profile's, if any)."""
        file = JsonlFile(path, self._compression)
        return file if self.protect is None else Protected(file, self.protect)

    def path_of(self, item: WorkItem) -> Path:
        """Where the window's file goes."""
        return self._out / self.dataset / (item.name + SUFFIXES[self._compression])

    def checkpoint(self, items: Sequence[WorkItem], point: ResumePoint) -> None:
        """Record that the batch's job can continue at ``point`` (a job must be named)."""
        assert point.job_id is not None and point.job_interval is not None
        for item, (offset, records) in zip(items, point.offsets, strict=True):
            self.manifest.put(
                self.dataset,
                self._record(
                    item,
                    "in-progress",
                    "jobs",
                    job_id=point.job_id,
                    cursor=point.cursor,
                    job_interval=point.job_interval.interval,
                    part_offset=offset,
                    part_records=records,
                ),
            )
        self.manifest.save()

    def commit(
        self,
        items: Sequence[WorkItem],
        digests: Sequence[FileDigest],
        *,
        provisional: Sequence[bool],
        opened: Sequence[Mapping[str, Opened]],
        source: Source,
        job_id: str | None,
        availability: str | None,
    ) -> list[WindowRecord]:
        """Record the batch's windows as written with the records in them still going on, and
        remove what they replace."""
        committed = []
        for item, digest, temporary, still_open in zip(
            items, digests, provisional, opened, strict=True
        ):
            status: Status = "provisional" if temporary else "complete"
            record = self._record(
                item,
                status,
                source,
                file=digest.path.relative_to(self._out).as_posix(),
                records=digest.records,
                bytes=digest.bytes,
                sha256=digest.sha256,
                job_id=job_id,
                data_availability_date=availability,
            )
            self._replace(record, digest.path)
            self.manifest.put(self.dataset, record)
            self.manifest.set_opened(self.dataset, record.name, still_open)
            committed.append(record)
        self.manifest.save()
        for record in committed:
            self._log_commit(record)
        return committed

    def commit_snapshot(
        self, item: WorkItem, digest: FileDigest, taken_at: str, *, provisional: bool
    ) -> WindowRecord:
        """Record a snapshot's file, replacing the same day's earlier one; ``provisional``:
        it cannot promise to hold every dataset (its walks never settled)."""
        return self._commit_one(item, digest, "listing", provisional, taken_at=taken_at)

    def commit_read(
        self, item: WorkItem, digest: FileDigest, *, provisional: bool, derived_from: str | None
    ) -> WindowRecord:
        """Record a window read by ids, replacing its earlier file; ``derived_from``: the
        sha256 of the source window's file its ids came from."""
        return self._commit_one(item, digest, "ids", provisional, derived_from=derived_from)

    def commit_search(
        self, item: WorkItem, digest: FileDigest, *, provisional: bool
    ) -> WindowRecord:
        """Record a date searched per unit, replacing its earlier file."""
        return self._commit_one(item, digest, "search", provisional)

    def _commit_one(
        self, item: WorkItem, digest: FileDigest, source: Source, provisional: bool, **fields: Any
    ) -> WindowRecord:
        status: Status = "provisional" if provisional else "complete"
        record = self._record(
            item, status, source, file=digest.path.relative_to(self._out).as_posix(),
            records=digest.records, bytes=digest.bytes, sha256=digest.sha256, **fields,
        )  # fmt: skip
        self._replace(record, digest.path)
        self.manifest.put(self.dataset, record)
        self.manifest.save()
        self._log_commit(record)
        return record

    def _log_commit(self, record: WindowRecord) -> None:
        fields = {"dataset": self.dataset, "window": record.name, "records": record.records,
                  "job_id": record.job_id}  # fmt: skip
        log.debug("%s %s: committed %d records (%s)", self.dataset, record.name, record.records,
                  record.status, extra=fields)  # fmt: skip

    def refreshed(
        self, record: WindowRecord, digest: FileDigest, still_open: Mapping[str, Opened]
    ) -> None:
        """Record a window's file written again with refreshed records (its name and
        compression unchanged, its run_id still the run that fetched it), and the records in
        it still going on."""
        self.manifest.put(
            self.dataset,
            dataclasses.replace(
                record, records=digest.records, bytes=digest.bytes, sha256=digest.sha256,
                updated=datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )  # fmt: skip
        self.track(record.name, still_open)
        self.manifest.save()

    def track(self, window: str, still_open: Mapping[str, Opened]) -> None:
        """Set the records of ``window`` still going on (saved with the next save)."""
        self.manifest.set_opened(self.dataset, window, still_open)

    def fail(self, items: Sequence[WorkItem], reason: str) -> None:
        """Record windows that failed, unless an earlier run left their file whole."""
        for item in items:
            old = self.manifest.get(self.dataset, item.name)
            if old is None or old.status in ("in-progress", "failed"):
                self.manifest.put(self.dataset, self._record(item, "failed", None, error=reason))
        self.manifest.save()

    def _replace(self, record: WindowRecord, path: Path) -> None:
        """Drop every other record inside ``record``'s window, and every other file of it."""
        for old in self.manifest.overlapping(self.dataset, record.start_ms, record.end_ms):
            if old.name != record.name:
                self.manifest.remove(self.dataset, old.name)
                if old.file:
                    self._unlink(self._out / old.file)
        for suffix in SUFFIXES.values():
            sibling = path.with_name(record.name + suffix)
            if sibling != path:
                self._unlink(sibling)

    @staticmethod
    def _unlink(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            log.info("removed %s: its window now has another file", path)

    def _record(
        self, item: WorkItem, status: Status, source: Source | None, **fields: Any
    ) -> WindowRecord:
        fields.setdefault("file", None)
        return WindowRecord(
            name=item.name,
            start=format_instant(item.window.start),
            end=format_instant(item.window.end),
            status=status,
            source=source,
            compression=self._compression,
            run_id=self.run_id,
            updated=datetime.now(UTC).isoformat(timespec="seconds"),
            **fields,
        )
