"""The Parquet files: one per table and source window, and where each goes in a set.

Flat layout: ``<table>/<window>.parquet``. Hive layout: ``<table>/date=<YYYY-MM-DD>/part.parquet``
for a day window (a window shorter than a day, from ``--window 6h``, is
``date=<its first day>/<window>.parquet``). Paths are relative to a version of the set
(``exporter.tables.versions``), which readers see as ``<out>/tables``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from exporter.errors import ConfigError
from exporter.tables.specs import Table
from exporter.tables.sql import WINDOW_COLUMN, ident, literal

if TYPE_CHECKING:  # the module is imported without DuckDB (see exporter.tables.request)
    import duckdb

Layout = Literal["flat", "hive"]
LAYOUTS: tuple[str, ...] = get_args(Layout)


def check_layout(text: str) -> Layout:
    if text not in LAYOUTS:
        raise ConfigError(f"--layout {text!r} is not a layout; choose flat or hive.")
    return text  # type: ignore[return-value]


def day_of(window: str) -> str:
    """The UTC day (``YYYY-MM-DD``) a window's rows are filed under: the day it begins."""
    return window[:10] if "_" not in window else f"{window[:4]}-{window[4:6]}-{window[6:8]}"


def relative_path(layout: Layout, table: str, window: str) -> Path:
    """Where one table's rows of one window go, inside a version of the set."""
    base = Path(table)
    if layout == "flat":
        return base / f"{window}.parquet"
    name = "part.parquet" if len(window) == 10 else f"{window}.parquet"
    return base / f"date={day_of(window)}" / name


def write(con: duckdb.DuckDBPyConnection, path: Path, table: Table, window: str) -> None:
    """COPY the table's rows of ``window`` (every row, for a snapshot) to ``path``, fsynced.
    The file is in a version no reader sees yet, so it needs no temporary name."""
    where = "" if table.snapshot else f" WHERE {WINDOW_COLUMN} = {literal(window)}"
    con.execute(
        f"COPY (SELECT * FROM {ident(table.name)}{where}) TO {literal(str(path))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
