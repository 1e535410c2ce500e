"""The database file: read what the last build recorded, build a copy aside, swap it in.

``<out>/genesys.duckdb`` is never written in place. A build copies it to
``<out>/.genesys.duckdb.build`` (or starts that file empty), changes the copy, checkpoints,
closes and fsyncs it (``finish``), and renames it over the original (``swap``), deleting first
any WAL a crashed writer left beside the original: the new file with the old WAL would not
open. A build killed at any point leaves the original as it was: open, queryable, and
describing the Parquet set published with it or the one after (see ``exporter.tables.versions``
for the order of the switches). DuckDB spills to ``<out>/.genesys.duckdb.spill`` beyond the
memory limit; both leftovers are removed by the next build.

A build refuses (``refuse_writer``) while another process holds the database open for writing
(``duckdb genesys.duckdb`` does): renaming a file over a writer's makes its WAL, replayed when
it exits, belong to no database, and nobody could open the result.

What was built is recorded in the database itself, so it cannot disagree with the rows:
``_build_sources`` (one row per source window: dataset, window, file, sha256, bytes, records)
and ``_build_info`` (the declarations' fingerprint, the Parquet layout, the tool's version).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import duckdb

from exporter import __version__
from exporter.errors import LockHeld, OutputError
from exporter.store.jsonl import fsync_dir
from exporter.tables.request import Limits
from exporter.tables.sources import Built, Source

DB_NAME = "genesys.duckdb"
BUILD_NAME = ".genesys.duckdb.build"
SPILL_NAME = ".genesys.duckdb.spill"

_STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS _build_sources (dataset VARCHAR, window_name VARCHAR, "
    "file VARCHAR, sha256 VARCHAR, bytes BIGINT, records BIGINT, built_at TIMESTAMPTZ)",
    "CREATE TABLE IF NOT EXISTS _build_info (name VARCHAR, value VARCHAR)",
)
_BUILT_COLUMNS = ("dataset", "window_name", "file", "sha256", "bytes", "records")
_FLOCK = "hhqqi"  # Linux's struct flock: type, whence, start, length, pid


@dataclass(frozen=True, slots=True)
class Previous:
    """What the database on disk says was built, and how."""

    built: tuple[Built, ...]
    info: dict[str, str]


def read_previous(out_dir: Path) -> Previous | None:
    """The last build's record, or None when there is no database (or it predates one)."""
    path = out_dir / DB_NAME
    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        refuse_writer(path)  # one that opened it since the build checked
        raise OutputError(
            f"{path} cannot be opened ({_first_line(exc)}); run tables --full to build it again."
        ) from exc
    try:
        names = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if not {"_build_sources", "_build_info"} <= names:
            return None
        columns = {c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = '_build_sources'"
        ).fetchall()}  # fmt: skip
        if not set(_BUILT_COLUMNS) <= columns:  # recorded before files' sizes were: build anew
            return None
        rows = con.execute(f"SELECT {', '.join(_BUILT_COLUMNS)} FROM _build_sources").fetchall()
        info = dict(con.execute("SELECT name, value FROM _build_info").fetchall())
    finally:
        con.close()
    return Previous(tuple(Built(*row) for row in rows), info)


def refuse_writer(path: Path) -> None:
    """Raise LockHeld if another process holds the database open for writing.

    DuckDB takes an fcntl lock on the whole file: a write lock for a read-write connection, a
    read lock for a read-only one. Asking the kernel whether a read lock could be taken
    (F_GETLK) finds a writer and its pid without taking anything, and readers do not count."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no database yet; one that cannot be read fails where it is read
    try:
        query = struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
        kind, *_, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        # Closing drops every fcntl lock this process holds on the file: a build holds none.
        os.close(fd)
    if kind != fcntl.F_UNLCK:
        holder = f"process {pid}" if pid > 0 else "process"
        raise LockHeld(
            f"Another {holder} holds {path} open for writing (a duckdb session?), and a "
            "build would replace the database under it; close that session, or open the "
            f"database read-only (duckdb -readonly {path}), then build again."
        )


class BuildDatabase:
    """The copy a build changes; ``swap`` puts it in place of ``genesys.duckdb``."""

    def __init__(self, out_dir: Path, limits: Limits, *, fresh: bool) -> None:
        self.out_dir = out_dir
        self.path = out_dir / BUILD_NAME
        self._spill = out_dir / SPILL_NAME
        remove_leftovers(out_dir)
        original = out_dir / DB_NAME
        if not fresh and original.exists():
            _copy(original, self.path)
        self.con = duckdb.connect(str(self.path))
        try:
            self._configure(limits)
        except BaseException:
            self.discard()
            raise

    def _configure(self, limits: Limits) -> None:
        self.con.execute(f"SET memory_limit = '{limits.pool_bytes}B'")
        self.con.execute(f"SET threads = {int(limits.threads)}")
        self.con.execute(f"SET temp_directory = '{self._spill}'")
        self.con.execute("SET preserve_insertion_order = false")
        # One checkpoint, at the swap: automatic ones midway (each time the WAL passes 16 MB)
        # cost about 8% of a full build here (benchmarks/README.md#tables).
        self.con.execute("SET checkpoint_threshold = '1TB'")
        self.con.execute("ATTACH ':memory:' AS scratch")  # the stage: seen by every cursor
        for statement in _STATE_DDL:
            self.con.execute(statement)

    def record(self, source: Source, records: int) -> None:
        self.forget(source.dataset, source.window)
        self.con.execute(
            "INSERT INTO _build_sources VALUES (?, ?, ?, ?, ?, ?, now())",
            [source.dataset, source.window, source.file, source.sha256, source.bytes, records],
        )

    def forget(self, dataset: str, window: str) -> None:
        self.con.execute(
            "DELETE FROM _build_sources WHERE dataset = ? AND window_name = ?", [dataset, window]
        )

    def built(self) -> list[tuple[str, str]]:
        return self.con.execute("SELECT dataset, window_name FROM _build_sources").fetchall()

    def set_info(self, info: dict[str, str]) -> None:
        self.con.execute("DELETE FROM _build_info")
        rows = [[k, v] for k, v in {**info, "tool": f"genesys-exporter {__version__}"}.items()]
        self.con.executemany("INSERT INTO _build_info VALUES (?, ?)", rows)

    def finish(self) -> None:
        """Checkpoint, close and fsync the copy: after this, only renames are left to do."""
        self.con.execute("DETACH scratch")
        self.con.execute("CHECKPOINT")
        self.con.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def swap(self) -> None:
        """Rename the finished copy over ``genesys.duckdb``, deleting a crashed writer's WAL
        first: its commits are in the copy (``_copy`` took them), and beside the new file it
        would make the database unopenable."""
        original = self.out_dir / DB_NAME
        _wal(original).unlink(missing_ok=True)
        os.replace(self.path, original)
        fsync_dir(self.out_dir)
        shutil.rmtree(self._spill, ignore_errors=True)

    def discard(self) -> None:
        """Close and delete the copy (a failed build): the original stays as it was."""
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        remove_leftovers(self.out_dir)


def _copy(original: Path, copy: Path) -> None:
    _copy_file(original, copy)
    if _wal(original).exists():  # committed but not yet checkpointed by whoever wrote it last
        _copy_file(_wal(original), _wal(copy))


def _wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def _copy_file(source: Path, target: Path) -> None:
    """Copy in the kernel: ``copy_file_range`` shares the blocks (a reflink) on filesystems
    that can (XFS, Btrfs), so a large database is copied in no time; plain copy otherwise."""
    if not hasattr(os, "copy_file_range"):
        shutil.copyfile(source, target)
        return
    with open(source, "rb") as src, open(target, "wb") as dst:
        left = os.fstat(src.fileno()).st_size
        while left > 0:
            try:
                done = os.copy_file_range(src.fileno(), dst.fileno(), min(left, 1 << 30))
            except OSError:  # across filesystems on old kernels, or not supported here
                src.seek(0)
                dst.seek(0)
                dst.truncate()
                shutil.copyfileobj(src, dst, 1 << 20)
                return
            if done == 0:
                break
            left -= done


def remove_leftovers(out_dir: Path) -> None:
    """Delete a killed build's copy, its WAL and its spill folder."""
    build = out_dir / BUILD_NAME
    for stale in (build, _wal(build)):
        stale.unlink(missing_ok=True)
    shutil.rmtree(out_dir / SPILL_NAME, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
