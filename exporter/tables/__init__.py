"""The raw export as analysis-ready tables: a DuckDB database and Parquet files.

``genesys-export tables --out DIR`` reads the export in DIR (its manifest and day files, any
compression) and builds ``DIR/genesys.duckdb`` and ``DIR/tables/<table>/...parquet``. The
modules, each with one job:

    specs     every table's source dataset, key and columns, declared once
    sql       the read, DDL and INSERTs those declarations imply
    sources   which files the tables come from, and what a build must redo
    database  the database file: built as a copy aside, swapped in; a writer refused
    parquet   each Parquet file: where it goes in a set, and its COPY
    versions  the Parquet set readers see: a version per build, ``tables`` switched in a rename
    views     the joins users would otherwise write
    stop      a signal's request to stop: a flag, and the running queries interrupted
    build     one build from start to end; where DuckDB's exceptions become ours
"""

from __future__ import annotations

from exporter.tables.build import BuildSummary, Observer, TablesRequest, build_tables
from exporter.tables.specs import TABLES, table_list
from exporter.tables.stop import Stop

__all__ = [
    "TABLES", "BuildSummary", "Observer", "Stop", "TablesRequest", "build_tables", "table_list",
]  # fmt: skip
