"""The tables as the lakehouse formats declare them, and the local files read as Arrow.

A published table's schema comes from the table's declarations (``exporter.tables.sql``),
not from any one file: every column nullable (DuckDB marks a column REQUIRED in a file where
it found no NULL, so files of one table disagree), JSON columns as strings (Iceberg has no
JSON type, Delta neither), and for a windowed table a ``date`` column, the UTC day the row
is filed under, which Delta and Iceberg partition by (Parquet readers get it from the
``date=`` folder instead).

Reading streams record batches from one file at a time, converted to that schema, so memory
holds a batch, not a day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from exporter.publish.local import TableDay
from exporter.tables.specs import Table
from exporter.tables.sql import column_types

DAY_COLUMN = "date"
# Rows read at a time: 16k rows of the widest table are a few MB (64k raised an Iceberg
# publish's peak by about 50 MB on 200,000 conversations, for no speed).
BATCH_ROWS = 16 * 1024
_TYPES: dict[str, Any] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),  # the text of the value
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DATE": pa.date32(),
}


def arrow_type(duck: str) -> Any:
    """The Arrow type of a declared DuckDB type (``VARCHAR[]``: a list of strings)."""
    if duck.endswith("[]"):
        return pa.list_(arrow_type(duck[:-2]))
    return _TYPES[duck]


def schema(table: Table) -> Any:
    """The table's published schema: its columns, nullable, then ``date`` when windowed."""
    fields = [pa.field(name, arrow_type(kind)) for name, kind in column_types(table)]
    if not table.snapshot:
        fields.append(pa.field(DAY_COLUMN, pa.date32()))
    return pa.schema(fields)


def rows(path: Path) -> int:
    """A Parquet file's row count, from its footer."""
    return int(pq.read_metadata(path).num_rows)


def batches(day: TableDay, target: Any) -> Iterator[Any]:
    """The day's rows as record batches of ``target`` (its ``schema``), file by file."""
    stamp = None if day.snapshot else pa.scalar(date.fromisoformat(day.day), pa.date32())
    for local in day.files:
        with pq.ParquetFile(local.path) as file:
            for batch in file.iter_batches(batch_size=BATCH_ROWS):
                yield _converted(batch, target, stamp)


def _converted(batch: Any, target: Any, stamp: Any) -> Any:
    columns = []
    for field in target:
        if field.name == DAY_COLUMN and stamp is not None:
            columns.append(pa.repeat(stamp, batch.num_rows))
            continue
        index = batch.schema.get_field_index(field.name)
        column = batch.column(index) if index >= 0 else pa.nulls(batch.num_rows, field.type)
        if isinstance(column.type, pa.ExtensionType):  # JSON: its storage is the text
            column = column.storage
        columns.append(column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=target)
