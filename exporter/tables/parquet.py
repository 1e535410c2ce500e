"""The Parquet files: one per table and source window, written aside and renamed into place.

Flat layout: ``tables/<table>/<window>.parquet``. Hive layout:
``tables/<table>/date=<YYYY-MM-DD>/part.parquet`` for a day window (a window shorter than a day,
from ``--window 6h``, is ``date=<its first day>/<window>.parquet``). Each file is written under
a hidden temporary name, fsynced and renamed only after every file of the build is written, so
a killed build leaves each file either the old one or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import duckdb

from exporter.errors import ConfigError
from exporter.store.jsonl import fsync_dir
from exporter.tables.specs import Table
from exporter.tables.sql import WINDOW_COLUMN, ident, literal

Layout = Literal["flat", "hive"]
LAYOUTS: tuple[str, ...] = get_args(Layout)
TABLES_DIR = "tables"
_TEMP_SUFFIX = ".parquet.tmp"


def check_layout(text: str) -> Layout:
    if text not in LAYOUTS:
        raise ConfigError(f"--layout {text!r} is not a layout; choose flat or hive.")
    return text  # type: ignore[return-value]


def relative_path(layout: Layout, table: str, window: str) -> Path:
    """Where one table's rows of one window go, under the output folder."""
    base = Path(TABLES_DIR) / table
    if layout == "flat":
        return base / f"{window}.parquet"
    day = window[:10] if "_" not in window else f"{window[:4]}-{window[4:6]}-{window[6:8]}"
    name = "part.parquet" if len(window) == 10 else f"{window}.parquet"
    return base / f"date={day}" / name


@dataclass(frozen=True, slots=True)
class Pending:
    """A Parquet file written under its temporary name, to be renamed into place."""

    temp: Path
    final: Path


def write(con: duckdb.DuckDBPyConnection, out_dir: Path, layout: Layout, table: Table,
          window: str) -> Pending:  # fmt: skip
    """COPY the table's rows of ``window`` (every row, for a snapshot) to a temporary file."""
    final = out_dir / relative_path(layout, table.name, window)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.stem}{_TEMP_SUFFIX}")
    where = "" if table.snapshot else f" WHERE {WINDOW_COLUMN} = {literal(window)}"
    con.execute(
        f"COPY (SELECT * FROM {ident(table.name)}{where}) TO {literal(str(temp))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    _fsync(temp)
    return Pending(temp, final)


def publish(pending: Iterable[Pending]) -> None:
    """Rename every written file into place, then make the renames durable."""
    folders = set()
    for item in pending:
        os.replace(item.temp, item.final)
        folders.add(item.final.parent)
    for folder in folders:
        fsync_dir(folder)


def sweep(out_dir: Path, tables: Iterable[str], expected: set[Path]) -> list[Path]:
    """Delete the Parquet files (and temporaries) under the tables' folders that ``expected``
    (relative paths) does not name: removed windows, another layout, a killed build's
    leftovers. Returns what it deleted."""
    deleted = []
    for table in tables:
        folder = out_dir / TABLES_DIR / table
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            parquet = path.name.endswith((".parquet", _TEMP_SUFFIX)) and path.is_file()
            if parquet and path.relative_to(out_dir) not in expected:
                path.unlink()
                deleted.append(path)
        for path in sorted(folder.rglob("*"), reverse=True):  # empty date= folders
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
    return deleted


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
