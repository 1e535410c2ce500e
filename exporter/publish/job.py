"""One publish from start to end: the folder's lock, the local tables, the format, a summary.

The publish holds the export folder's lock while it reads the build (``locked``: the caller
holds it already, as ``run`` does for all its steps), so no build switches the tables under
it. What it writes and how it stays exactly once is each format's (``parquet``, ``delta``,
``iceberg``). A stop (``Stop.request``: SIGTERM, Ctrl-C) is checked between days; a day
being committed ends first, and whatever the publish raises then is reported as Interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from exporter.errors import ConfigError, Interrupted
from exporter.progress import show_size
from exporter.publish.report import Observer, Report, Silent
from exporter.publish.request import PublishRequest
from exporter.store.lock import RunLock
from exporter.tables.stop import Stop

if TYPE_CHECKING:
    from exporter.publish.local import LocalTables

EXTRA = "lakehouse"  # pip install 'genesys-exporter[lakehouse]'


class _Format(Protocol):
    def publish(self, local: LocalTables) -> Report: ...


@dataclass(frozen=True, slots=True)
class PublishSummary:
    """What one publish did; ``as_json`` is the CLI's last line."""

    status: str  # published | up-to-date
    format: str
    destination: str
    written: tuple[str, ...]  # table/day replaced this time
    unchanged: int  # table days already published with this content
    raced: tuple[str, ...]  # committed by another publish first: skipped, not written twice
    rows: int  # in the days written
    bytes: int  # of the days written (the build's Parquet files)
    purged: tuple[str, ...] = ()  # tables whose versions before a forget were dropped
    purged_files: int = 0  # the files that deleted
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status, "exit_code": 0, "format": self.format,
            "destination": self.destination, "written": list(self.written),
            "unchanged": self.unchanged, "raced": list(self.raced), "rows": self.rows,
            "bytes": self.bytes, "purged": list(self.purged), "purged_files": self.purged_files,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip

    def line(self) -> str:
        """What was published (or that nothing changed), in words (stderr)."""
        raced = len(self.raced)
        also = f"; {raced} days another publish had just committed, skipped" if raced else ""
        if self.purged:
            also += (f"; the versions before the forget dropped from {len(self.purged)} tables "
                     f"({self.purged_files} files deleted)")  # fmt: skip
        if self.status == "up-to-date":
            return (
                f"up to date: no day changed since the last publish to {self.destination} "
                f"({self.unchanged} days checked); nothing written{also}."
            )
        tables = {label.split("/", 1)[0] for label in self.written}
        return (
            f"published {len(self.written)} days of {len(tables)} tables to "
            f"{self.destination} ({self.format}): {self.rows:,} rows, "
            f"{show_size(self.bytes)} in {self.seconds:.1f} s; {self.unchanged} days "
            f"unchanged{also}"
        )


def publish_tables(
    request: PublishRequest,
    observer: Observer | None = None,
    stop: Stop | None = None,
    *,
    locked: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> PublishSummary:
    """Publish the tables of ``request.out_dir``: the days changed since the last publish
    to that destination. ``locked``: the caller holds the folder's lock already (run)."""
    from exporter.publish.local import read_local, require_tables  # DuckDB: a publish reads

    began = clock()
    stop = stop or Stop()
    publishing = _format(request, observer or Silent(), stop)  # the extra checked first
    require_tables(request.out_dir)  # before the lock, which would create a file in it
    lock = contextlib.nullcontext() if locked else RunLock(request.out_dir, _lock_id())
    try:
        with lock:
            stop.check()
            report = publishing.publish(read_local(request.out_dir))
    except BaseException as exc:
        if not stop.requested:
            raise
        raise Interrupted(
            f"A signal stopped the publish to {request.destination}; each day is as the "
            "last commit left it: run genesys-export publish again to finish."
        ) from exc
    return dataclasses.replace(_summary(request, report), seconds=clock() - began)


def check_installed(request: PublishRequest) -> None:
    """ConfigError naming the extra when the format's libraries are not installed: ``run``
    asks before it exports, not an hour later at its last step."""
    _format(request, Silent(), Stop())


def _format(request: PublishRequest, observer: Observer, stop: Stop) -> _Format:
    """The format's publisher; a ConfigError naming the extra when its libraries are not
    installed."""
    try:
        if request.format == "parquet":
            from exporter.publish.parquet import ParquetPublish

            return ParquetPublish(request.to, observer, stop)
        if request.format == "delta":
            from exporter.publish.delta import DeltaPublish

            return DeltaPublish(request.to, observer, stop, keep_history=request.keep_history)
        from exporter.publish.iceberg import IcebergPublish

        return IcebergPublish(request.catalog, request.namespace, observer, stop,
                              keep_history=request.keep_history)  # fmt: skip
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"Publishing needs the {EXTRA} extra ({exc.name} is not installed): pip install "
            f"'genesys-exporter[{EXTRA}]'."
        ) from exc


def _summary(request: PublishRequest, report: Report) -> PublishSummary:
    written = report.written
    return PublishSummary(
        status="published" if written or report.raced or report.purged else "up-to-date",
        format=request.format,
        destination=request.destination,
        written=tuple(w.label for w in written),
        unchanged=report.unchanged,
        raced=tuple(report.raced),
        rows=sum(w.rows for w in written),
        bytes=sum(w.bytes for w in written),
        purged=tuple(report.purged),
        purged_files=report.purged_files,
    )


def _lock_id() -> str:
    return f"publish-{uuid.uuid4().hex[:8]}"
