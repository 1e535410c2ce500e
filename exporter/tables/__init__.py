"""The raw export as analysis-ready tables: a DuckDB database and Parquet files.

``genesys-export tables --out DIR`` reads the export in DIR (its manifest and day files, any
compression) and builds ``DIR/genesys.duckdb`` and ``DIR/tables/<table>/...parquet``. The
modules, each with one job:

    specs     every table's source dataset, key and columns, declared once
    request   what a build is asked, and the memory and threads it may use
    report    what a build reports as it goes, and what it did
    sql       the read, DDL and INSERTs those declarations imply
    sources   which files the tables come from, and what a build must redo
    database  the database file: built as a copy aside, swapped in; a writer refused
    parquet   each Parquet file: where it goes in a set, and its COPY
    versions  the Parquet set readers see: a version per build, ``tables`` switched in a rename
    views     the joins users would otherwise write
    stop      a signal's request to stop: a flag, and the running queries interrupted
    build     one build from start to end; where DuckDB's exceptions become ours

DuckDB is imported with ``build`` and ``database``, here when ``build_tables`` is first asked
for: an export or a forget never loads it (about 25 MB of memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.tables.report import BuildSummary, Observer
from exporter.tables.request import TablesRequest
from exporter.tables.specs import TABLES, table_list
from exporter.tables.stop import Stop

if TYPE_CHECKING:
    from exporter.tables.build import build_tables


def __getattr__(name: str) -> Any:
    """``build_tables``: its module (and DuckDB) imported when it is first asked for."""
    if name == "build_tables":
        from exporter.tables.build import build_tables

        return build_tables
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TABLES", "BuildSummary", "Observer", "Stop", "TablesRequest", "build_tables", "table_list",
]  # fmt: skip
