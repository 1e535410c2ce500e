"""The tables in the lakehouse: Parquet, Delta or Iceberg on object storage, exactly once.

``genesys-export publish`` reads what ``genesys-export tables`` built (never the raw export)
and writes each table's days that changed since the last publish to that destination, each
day replaced whole, with a marker of what it holds checked before every commit; the
destination itself holds that state. The modules, each with one job:

    request   what a publish is asked: the folder, the format, the destination
    local     the build's days per table, and each day's digest (the marker)
    arrow     the published schemas, and the built files read as Arrow batches
    store     object storage through obstore: reads, listings, uploads, conditional writes
    failures  where the libraries' exceptions become ours (one boundary)
    report    the steps a publish reports, and what it did
    parquet   Parquet objects, replaced in place, a state object per table
    delta     Delta tables, a day per commit, the marker an app transaction
    iceberg   Iceberg tables in a REST catalog, a day per commit, the marker a property
    job       one publish from start to end: lock, read, the format, a summary

The formats' libraries (obstore, pyarrow, deltalake, pyiceberg) are the ``lakehouse`` extra,
imported only when a publish runs.
"""

from __future__ import annotations

from exporter.publish.job import PublishSummary, check_installed, publish_tables
from exporter.publish.report import Observer
from exporter.publish.request import FORMATS, PublishRequest

__all__ = [
    "FORMATS",
    "Observer",
    "PublishRequest",
    "PublishSummary",
    "check_installed",
    "publish_tables",
]
