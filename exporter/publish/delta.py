"""Delta Lake on object storage: one Delta table per table, at ``PREFIX/<table>``.

A windowed table is partitioned by ``date``. A changed day is replaced in one commit: the
build's files for that day, uploaded byte for byte as ``<table>/date=<day>/<uuid>.parquet``
(Delta keeps partition columns out of data files, as they are), are added, and every file of
the partition removed (``create_write_transaction`` with ``mode="overwrite"`` and the day as
its partition filter). A snapshot table is unpartitioned and replaced whole the same way.
A reader sees the table at one version or the next: the old day or the new one, never both.

The marker is a Delta app transaction in that same commit: app id ``genesys-export:<day>``,
version the first 60 bits of the day's digest (Delta leaves a version's meaning to its
writer and keeps the latest one per app id in the table's state, checkpoints included). A
day is published when ``transaction_version`` gives its digest's version. The commit is made
against the version read: if another publish committed the same day meanwhile, Delta's
conflict check fails ours (``CommitFailedError``); the table is read again and the day
skipped when it now carries this digest (``raced``), committed again otherwise. A commit to
another day does not conflict (Delta rebases it). A publish killed between the upload and the
commit leaves files that no version references: invisible to readers, removed by ``VACUUM``.
After a forget, the versions before it are vacuumed (``history``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from deltalake import CommitProperties, DeltaTable, Schema, Transaction
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction

from exporter.errors import LockHeld
from exporter.publish import arrow
from exporter.publish.failures import translating
from exporter.publish.history import FORGOTTEN, UNCOMMITTED_AGE
from exporter.publish.local import LocalFile, LocalTables, TableDay
from exporter.publish.report import Observer, Report, Written
from exporter.publish.store import Store, run_all
from exporter.tables.specs import Table
from exporter.tables.stop import Stop

ATTEMPTS = 5  # commits lost in a row to other publishes of the same day before giving up
UPLOADS = 8  # files in flight at once
APP = "genesys-export"


def app_id(day: str) -> str:
    return f"{APP}:{day}"


def version(digest: str) -> int:
    """The app transaction version that stands for a digest: its first 60 bits (a long)."""
    return int(digest[:15], 16)


def published(table: DeltaTable, day: TableDay) -> bool:
    return table.transaction_version(app_id(day.day)) == version(day.digest)


@dataclass(slots=True)
class _Table:
    """One table's Delta table as last read, and the days it lacks."""

    spec: Table
    uri: str
    delta: DeltaTable
    todo: list[TableDay] = field(default_factory=list)


class DeltaPublish:
    """Publish the tables as Delta tables under ``url``."""

    def __init__(self, url: str, observer: Observer, stop: Stop, *, keep_history: bool) -> None:
        self.url = url
        self.observer = observer
        self.stop = stop
        self.keep_history = keep_history

    def publish(self, local: LocalTables) -> Report:
        return asyncio.run(self._publish(local))

    async def _publish(self, local: LocalTables) -> Report:
        store = Store(self.url)
        await store.claim("delta")
        tables = await run_all([asyncio.to_thread(self._open, t) for t in local.tables()])
        for table in tables:
            table.todo = [d for d in local.of(table.spec) if not published(table.delta, d)]
        report = Report(unchanged=len(local.days) - sum(len(t.todo) for t in tables))
        self.observer.step("planned", f"{len(local.days) - report.unchanged} days to write")
        slots = asyncio.Semaphore(UPLOADS)
        for done in await run_all([self._write_table(store, t, slots) for t in tables]):
            report.add(done)
        if local.forgotten and not self.keep_history:
            self.stop.check()
            purges = [asyncio.to_thread(_purge, t, local.forgotten, self.observer) for t in tables]
            for done in await run_all(purges):
                report.add(done)
        return report

    def _open(self, spec: Table) -> _Table:
        """The table's Delta table, created (empty) if there is none yet, with every column
        the declarations now have."""
        uri = f"{self.url}/{spec.name}"
        schema = arrow.schema(spec)
        with translating(uri, "open the Delta table"):
            try:
                delta = DeltaTable(uri)
            except TableNotFoundError:
                partitions = None if spec.snapshot else [arrow.DAY_COLUMN]
                delta = DeltaTable.create(uri, schema, partition_by=partitions, mode="ignore",
                                          name=spec.name, description=spec.summary)  # fmt: skip
            _add_new_columns(delta, schema)
        return _Table(spec, uri, delta)

    async def _write_table(self, store: Store, table: _Table, slots: asyncio.Semaphore) -> Report:
        """Upload each changed day's files (several days at once), and commit the days in
        order as their uploads end."""
        report = Report()
        uploads = [asyncio.ensure_future(self._upload(store, table, d, slots)) for d in table.todo]
        try:
            for day, upload in zip(table.todo, uploads, strict=True):
                actions = await upload
                self.observer.step("uploaded", day.label)
                self.stop.check()
                if await asyncio.to_thread(self._commit, table, day, actions):
                    report.written.append(_written(day, actions))
                    self.observer.step("committed", day.label)
                else:
                    report.raced.append(day.label)
                    await store.delete([f"{table.spec.name}/{a.path}" for a in actions])
        finally:
            for upload in uploads:
                upload.cancel()
        return report

    async def _upload(
        self, store: Store, table: _Table, day: TableDay, slots: asyncio.Semaphore
    ) -> list[AddAction]:
        async def one(local: LocalFile) -> AddAction:
            folder = "" if day.snapshot else f"{arrow.DAY_COLUMN}={day.day}/"
            path = f"{folder}{uuid.uuid4().hex}.parquet"
            async with slots:
                await store.upload(f"{table.spec.name}/{path}", local.path)
            return _add_action(day, local, path)

        return await run_all([one(local) for local in day.files])

    def _commit(self, table: _Table, day: TableDay, actions: list[AddAction]) -> bool:
        """Replace the day with ``actions`` and its marker, in one commit; False when another
        publish committed this digest first (raced)."""
        marker = Transaction(app_id(day.day), version(day.digest))
        properties = CommitProperties(
            app_transactions=[marker],
            custom_metadata={"genesys-export.table": day.table.name, "genesys-export.day": day.day,
                             "genesys-export.digest": day.digest},
        )  # fmt: skip
        replaced = None if day.snapshot else [(arrow.DAY_COLUMN, "=", day.day)]
        changes: list[AddAction | RemoveAction] = [*actions]
        with translating(table.uri, f"commit {day.label}"):
            if published(table.delta, day):  # read again after a race lost on another day
                return False
            for _ in range(ATTEMPTS):
                try:
                    table.delta.create_write_transaction(
                        changes, mode="overwrite", schema=arrow.schema(day.table),
                        partition_by=None if day.snapshot else [arrow.DAY_COLUMN],
                        partition_filters=replaced, commit_properties=properties,
                    )  # fmt: skip
                    return True
                except CommitFailedError:
                    table.delta = DeltaTable(table.uri)
                    if published(table.delta, day):
                        return False
        raise LockHeld(
            f"Other publishes kept committing {day.label} to {table.uri} while this one tried "
            f"({ATTEMPTS} times); run publish again once they are done."
        )


def _purge(table: _Table, forgotten: str, observer: Observer) -> Report:
    """Vacuum the table's older versions and the files no version references (``history``),
    unless done for ``forgotten`` already; then record it."""
    report = Report()
    with translating(table.uri, "vacuum the versions before the forget"):
        delta = DeltaTable(table.uri)
        if delta.metadata().configuration.get(FORGOTTEN) == forgotten:
            return report
        deleted = delta.vacuum(0, dry_run=False, enforce_retention_duration=False)
        hours = int(UNCOMMITTED_AGE.total_seconds() // 3600)
        deleted += delta.vacuum(hours, dry_run=False, enforce_retention_duration=False, full=True)
        observer.step("vacuumed", table.spec.name)
        for _ in range(ATTEMPTS):
            try:
                delta.alter.set_table_properties({FORGOTTEN: forgotten}, raise_if_not_exists=False)
                break
            except CommitFailedError:  # another publish committed meanwhile: read it again
                delta = DeltaTable(table.uri)
                if delta.metadata().configuration.get(FORGOTTEN) == forgotten:
                    break
        else:
            raise LockHeld(
                f"Other publishes kept committing to {table.uri} while this one recorded its "
                f"vacuum ({ATTEMPTS} times); run publish again once they are done."
            )
    report.purged.append(table.spec.name)
    report.purged_files = len(deleted)
    return report


def _add_new_columns(delta: DeltaTable, schema: Any) -> None:
    """Columns a newer release declares are added to an existing table (nullable: the days
    published before hold none)."""
    have = {f.name for f in delta.schema().fields}
    new = [f for f in Schema.from_arrow(schema).fields if f.name not in have]
    if new:
        delta.alter.add_columns(new)


def _add_action(day: TableDay, local: LocalFile, path: str) -> AddAction:
    partition = {} if day.snapshot else {arrow.DAY_COLUMN: day.day}
    stats = orjson.dumps({"numRecords": arrow.rows(local.path)}).decode()
    return AddAction(path, local.bytes, partition, int(time.time() * 1000), True, stats)


def _written(day: TableDay, actions: list[AddAction]) -> Written:
    rows = sum(orjson.loads(a.stats)["numRecords"] for a in actions)
    return Written(day.label, rows, sum(a.size for a in actions))
