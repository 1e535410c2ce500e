"""Iceberg in a REST catalog: one Iceberg table per table, in one namespace, by pyiceberg.

The catalog is configured as pyiceberg users configure one (``.pyiceberg.yaml``, or
``PYICEBERG_CATALOG__<NAME>__*`` variables); ``--catalog`` names it. What its configuration
leaves unsaid about the storage, the standard environment fills in (``s3.endpoint`` from
``AWS_ENDPOINT_URL``, ``s3.region`` from ``AWS_REGION``); credentials are read from the
environment by pyarrow and, for SigV4 signing, boto3.

A windowed table is partitioned by ``date`` (identity). A changed day is replaced in one
commit: a delete of the day, appends of its rows (read from the build's files in chunks:
JSON columns as strings, every column nullable), and the marker, the table property
``genesys-export.digest.<day>``, staged in one transaction and sent to the catalog as one
commit that requires the snapshot the transaction began from. Readers see the table's current
snapshot move from the old day to the new one in one step. The commit's snapshots also carry
summary properties (``genesys-export.table``, ``.day``, ``.digest``), as the Iceberg Kafka
Connect sink records its offsets, for lineage; the marker read back is the table property,
which stays when old snapshots are expired and their summaries with them.

Races: the tables are created with ``commit.retry.num-retries = 0``, so pyiceberg never rebases
a failed commit by itself (an append rebased past another publish's append of the same day
would leave its rows twice). A commit that fails (``CommitFailedException``, or pyiceberg's
``ValidationException`` for a conflicting delete) reads the table again: the day is skipped
if another publish committed this digest (``raced``), written again otherwise. A publish
killed before its commit leaves data files no snapshot references: invisible to readers,
removed by orphan-file maintenance. After a forget, the snapshots before it are expired and
the files only they reached deleted (``history``).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, cast

import pyarrow as pa
import pyarrow.fs as pa_fs
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update.snapshot import ExpireSnapshots
from pyiceberg.utils.config import Config

from exporter.errors import ConfigError, LockHeld
from exporter.publish import arrow
from exporter.publish.failures import translating
from exporter.publish.history import FORGOTTEN, UNCOMMITTED_AGE
from exporter.publish.local import LocalTables, TableDay
from exporter.publish.report import Observer, Report, Written
from exporter.tables.specs import Table
from exporter.tables.stop import Stop

ATTEMPTS = 5  # commits lost in a row to other publishes before giving up (exit 75)
# Rows appended at a time, what memory holds of a day; each chunk is a data file of a few MB.
# On 1M conversations 16 MB peaked at 521 MB, 32 MB at 631 MB and 20% faster.
CHUNK_BYTES = 16 * 2**20
MARKER = "genesys-export.digest."
# Our own retry decides (see the module's docstring); ours is the only writer that needs it.
TABLE_PROPERTIES = {"commit.retry.num-retries": "0"}
# The storage settings the environment gives when the catalog's configuration does not.
_FROM_ENVIRONMENT = {"s3.endpoint": ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"),
                     "s3.region": ("AWS_REGION", "AWS_DEFAULT_REGION")}  # fmt: skip


def storage_defaults(config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The catalog properties the environment fills in: those ``config`` does not set."""
    found: dict[str, str] = {}
    for key, names in _FROM_ENVIRONMENT.items():
        value = next((env[n] for n in names if env.get(n, "").strip()), "")
        if value and key not in config:
            found[key] = value
    return found


class IcebergPublish:
    """Publish the tables as Iceberg tables in ``namespace`` of the catalog ``name``."""

    def __init__(self, name: str, namespace: str, observer: Observer, stop: Stop, *,
                 keep_history: bool, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.name = name
        self.namespace = namespace
        self.observer = observer
        self.stop = stop
        self.keep_history = keep_history
        self.clock = clock  # wall time, to tell a file's age

    def publish(self, local: LocalTables) -> Report:
        catalog = self._catalog()
        with self._translating(f"create namespace {self.namespace}"):
            catalog.create_namespace_if_not_exists(self.namespace)
        tables = {spec.name: self._table(catalog, spec) for spec in local.tables()}
        todo = [d for d in local.days if not published(tables[d.table.name], d)]
        report = Report(unchanged=len(local.days) - len(todo))
        self.observer.step("planned", f"{len(todo)} days to write")
        for day in todo:
            self.stop.check()
            # The table as last committed or read: a race lost on an earlier day read the
            # table again, and may have found this day committed too.
            table, committed = tables[day.table.name], False
            if not published(table, day):
                table, committed = self._replace(catalog, table, day)
            tables[day.table.name] = table
            if committed:
                report.written.append(Written(day.label, _rows(day), _bytes(day)))
                self.observer.step("committed", day.label)
            else:
                report.raced.append(day.label)
        if local.forgotten and not self.keep_history:
            for name in tables:
                self.stop.check()
                report.add(self._purge(catalog, name, local.forgotten))
        return report

    def _catalog(self) -> Catalog:
        config = Config().get_catalog_config(self.name)
        if config is None:
            raise ConfigError(
                f"No Iceberg catalog named {self.name!r} is configured: add it to "
                f"~/.pyiceberg.yaml (catalog: {self.name}: uri: ...), or set "
                f"PYICEBERG_CATALOG__{self.name.upper()}__URI and its other properties."
            )
        # The configuration read now, whole: pyiceberg's own copy of the environment is the
        # one it read when first imported.
        properties = {k: v for k, v in config.items() if isinstance(v, str)}
        properties.update(storage_defaults(config, os.environ))
        with self._translating("open the catalog"):
            try:
                return load_catalog(self.name, **properties)
            except ValueError as exc:  # its configuration is incomplete (no uri, say)
                raise ConfigError(
                    f"Iceberg catalog {self.name!r} is not configured completely ({exc}); "
                    "see pyiceberg's configuration (.pyiceberg.yaml, PYICEBERG_CATALOG__*)."
                ) from exc

    def _table(self, catalog: Catalog, spec: Table) -> IcebergTable:
        """The table in the catalog, created if there is none, with every column the
        declarations now have and no automatic commit retries."""
        identifier = (self.namespace, spec.name)
        schema = arrow.schema(spec)
        with self._translating(f"open table {self.namespace}.{spec.name}"):
            table = _load_or_create(catalog, identifier, spec, schema)
            if set(schema.names) - {f.name for f in table.schema().fields}:
                with table.update_schema() as update:
                    update.union_by_name(schema)
            if not spec.snapshot and not table.spec().fields:  # made by another hand
                with table.update_spec() as update:
                    update.add_identity(arrow.DAY_COLUMN)
            if any(table.properties.get(k) != v for k, v in TABLE_PROPERTIES.items()):
                table = table.transaction().set_properties(TABLE_PROPERTIES).commit_transaction()
            return table

    def _replace(
        self, catalog: Catalog, table: IcebergTable, day: TableDay
    ) -> tuple[IcebergTable, bool]:
        """Replace the day and set its marker in one commit; the table after, and False
        when another publish committed this digest first."""
        with self._translating(f"replace {day.label}"):
            for _ in range(ATTEMPTS):
                transaction = self._staged(table, day)
                self.observer.step("uploaded", day.label)
                try:
                    return transaction.commit_transaction(), True
                except (CommitFailedException, ValidationException):
                    table = catalog.load_table((self.namespace, day.table.name))
                    if published(table, day):
                        return table, False
        raise LockHeld(
            f"Other publishes kept committing to {self.namespace}.{day.table.name} while this "
            f"one replaced {day.label} ({ATTEMPTS} times); run publish again once they are done."
        )

    def _staged(self, table: IcebergTable, day: TableDay) -> Any:
        """A transaction holding the day's delete, its rows and its marker, not committed
        (its data files are written)."""
        summary = {"genesys-export.table": day.table.name, "genesys-export.day": day.day,
                   "genesys-export.digest": day.digest}  # fmt: skip
        transaction = table.transaction()
        with warnings.catch_warnings():  # a day not published before: nothing to delete
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            transaction.delete(_day_filter(day), snapshot_properties=summary)
        for chunk in _chunks(day):
            self.stop.check()
            transaction.append(chunk, snapshot_properties=summary)
        transaction.set_properties({MARKER + day.day: day.digest})
        return transaction

    def _purge(self, catalog: Catalog, name: str, forgotten: str) -> Report:
        """Delete the files only the older snapshots reach and those no snapshot reaches
        (old enough not to be a running publish's), expire every snapshot but the current
        (and any a tag or branch holds) and record ``forgotten`` (``history``), unless that
        is recorded already."""
        report = Report()
        with self._translating(f"expire the snapshots of {self.namespace}.{name} before the "
                               "forget"):  # fmt: skip
            for _ in range(ATTEMPTS):
                table = catalog.load_table((self.namespace, name))
                if table.properties.get(FORGOTTEN) == forgotten:
                    return report
                heads = {ref.snapshot_id for ref in table.metadata.refs.values()}  # main, tags
                kept = [s for s in table.snapshots() if s.snapshot_id in heads]
                older = [s for s in table.snapshots() if s.snapshot_id not in heads]
                live = _reached(table.io, kept, live_only=True)
                doomed = _reached(table.io, older, live_only=False)
                doomed = {path: rank for path, rank in doomed.items() if path not in live}
                before = self.clock() - UNCOMMITTED_AGE.total_seconds()
                doomed |= _uncommitted(table, live.keys() | doomed.keys(), before)
                for path in sorted(doomed, key=doomed.__getitem__):
                    with contextlib.suppress(FileNotFoundError):  # a purge killed redone
                        table.io.delete(path)
                self.observer.step("vacuumed", name)
                transaction = table.transaction()
                if older:
                    ExpireSnapshots(transaction).by_ids([s.snapshot_id for s in older]).commit()
                transaction.set_properties({FORGOTTEN: forgotten})
                try:
                    transaction.commit_transaction()
                except CommitFailedException:  # another publish committed meanwhile
                    continue
                report.purged.append(name)
                report.purged_files = len(doomed)
                return report
        raise LockHeld(
            f"Other publishes kept committing to {self.namespace}.{name} while this one expired "
            f"its snapshots ({ATTEMPTS} times); run publish again once they are done."
        )

    def _translating(self, doing: str) -> Any:
        return translating(self.name, doing, catalog=self.name)


def published(table: IcebergTable, day: TableDay) -> bool:
    return table.properties.get(MARKER + day.day) == day.digest


def _load_or_create(
    catalog: Catalog, identifier: tuple[str, str], spec: Table, schema: Any
) -> IcebergTable:
    """The table, created when there is none. Two publishes creating it at once: the one
    whose creation loses while the other's is not yet visible (SeaweedFS's catalog answers it
    NoSuchTable) tries again, by then finding the table made (at most ATTEMPTS times)."""
    for _ in range(ATTEMPTS - 1):
        with contextlib.suppress(NoSuchTableError):
            return _loaded_or_created(catalog, identifier, spec, schema)
    return _loaded_or_created(catalog, identifier, spec, schema)


def _loaded_or_created(
    catalog: Catalog, identifier: tuple[str, str], spec: Table, schema: Any
) -> IcebergTable:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return cast(IcebergTable, _create(catalog, identifier, spec, schema))


def _create(catalog: Catalog, identifier: tuple[str, str], spec: Table, schema: Any) -> Any:
    """Create the table (partitioned by day when windowed) in one commit; one another
    publish created this moment is loaded instead (some catalogs answer that with
    TableAlreadyExistsError, others by refusing the partition spec as a duplicate)."""
    try:
        with catalog.create_table_transaction(
            identifier, schema=schema, properties=TABLE_PROPERTIES
        ) as transaction:
            if not spec.snapshot:
                with transaction.update_spec() as update:
                    update.add_identity(arrow.DAY_COLUMN)
    except TableAlreadyExistsError:
        pass
    except Exception:
        if not catalog.table_exists(identifier):
            raise
    return catalog.load_table(identifier)


def _reached(io: FileIO, snapshots: Iterable[Snapshot], *, live_only: bool) -> dict[str, int]:
    """Every file the snapshots reach, with its rank: 0 a data file, 1 a manifest, 2 a
    manifest list (``live_only``: not the data files a snapshot's own delete removed, still
    listed in its manifests). Deleted in rank order, a file is gone only once every file it
    lists is, so a purge killed midway finds the rest again; a file already gone is passed
    over."""
    found: dict[str, int] = {}
    for snapshot in snapshots:
        found[_place(io, snapshot.manifest_list)] = 2
        with _unless_gone():
            manifests = snapshot.manifests(io)
            for manifest in manifests:
                path = _place(io, manifest.manifest_path)
                if path in found:  # shared with a snapshot read before
                    continue
                found[path] = 1
                with _unless_gone():
                    entries = manifest.fetch_manifest_entry(io, discard_deleted=live_only)
                    found |= {_place(io, entry.data_file.file_path): 0 for entry in entries}
    return found


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    """A file deleted by a purge killed midway is passed over (pyiceberg's own test for a
    missing file); any other failure is raised."""
    try:
        yield
    except OSError as exc:
        if not isinstance(exc, FileNotFoundError) and "Path does not exist" not in str(exc):
            raise


def _uncommitted(table: IcebergTable, known: AbstractSet[str], before: float) -> dict[str, int]:
    """The table's data and manifest files no snapshot reaches, last changed before
    ``before`` (epoch seconds): left by a publish killed before its commit. Only where the
    table's storage can be listed (pyiceberg's pyarrow FileIO, its default)."""
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        return {}
    scheme, netloc, path = io.parse_location(table.location(), io.properties)
    filesystem = io.fs_by_scheme(scheme, netloc)
    selector = pa_fs.FileSelector(path, recursive=True, allow_not_found=True)
    files = [info for info in filesystem.get_file_info(selector) if info.is_file
             and info.path.endswith((".parquet", ".avro"))
             and info.mtime_ns is not None and info.mtime_ns / 1e9 < before]  # fmt: skip
    found = {_place(io, f"{scheme}://{info.path}") for info in files} - known
    return {path: 0 if path.endswith(".parquet") else 1 for path in found}


def _place(io: FileIO, location: str) -> str:
    """A file's location as one spelling (scheme and bucket kept: s3a and s3 alike)."""
    if isinstance(io, PyArrowFileIO):
        scheme, _, path = io.parse_location(location, io.properties)
        return f"{'s3' if scheme in ('s3a', 's3n') else scheme}://{path}"
    return location


def _day_filter(day: TableDay) -> BooleanExpression:
    if day.snapshot:
        return AlwaysTrue()
    return EqualTo(term=Reference(arrow.DAY_COLUMN), value=literal(day.day))


def _chunks(day: TableDay) -> Iterator[Any]:
    """The day's rows as Arrow tables of about CHUNK_BYTES each; an empty day is one empty
    table, whose append still makes a snapshot, and so still requires the snapshot the
    transaction began from (a commit of the marker alone would require nothing, and two
    publishes would both make it)."""
    target = arrow.schema(day.table)
    held: list[Any] = []
    size, chunks = 0, 0
    for batch in arrow.batches(day, target):
        held.append(batch)
        size += batch.nbytes
        if size >= CHUNK_BYTES:
            yield pa.Table.from_batches(held, schema=target)
            held, size, chunks = [], 0, chunks + 1
    if held or not chunks:
        yield pa.Table.from_batches(held, schema=target)


def _rows(day: TableDay) -> int:
    return sum(arrow.rows(f.path) for f in day.files)


def _bytes(day: TableDay) -> int:
    return sum(f.bytes for f in day.files)
