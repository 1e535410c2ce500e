"""Parquet on object storage: each table's days as objects under ``PREFIX/<table>/date=<day>/``.

Layout. A windowed table's day is one object per window in ``<table>/date=<day>/``
(``part.parquet`` for a one-day window, ``<window>.parquet`` for a shorter one): the file the
build wrote, uploaded byte for byte. A snapshot table is one object,
``<table>/snapshot.parquet``. Names are fixed, so a changed day is replaced by overwriting
its objects in place. Each PUT is atomic: a reader listing the prefix meanwhile gets each
object old or new, whole, never both. A day of several windows can show one window new and
another still old for that moment, and the windows hold different rows, so no row is seen
twice. Objects of the day that the new set does not name are deleted after the new ones are
in place.

State. ``_genesys_publish/<table>.json`` records, per day, the digest published and each
object's ETag. A day counts as published when the digest matches and the listing shows
exactly those objects with those ETags, so an object replaced or deleted by anyone else, or
uploaded by a publish killed before it recorded it, gets the day written again. The state is
replaced with a conditional write on the ETag it was read at (a create, the first time). A
publish that loses that race reads the state and the listing again, skips the days the other
publish wrote with the same digest (``raced``), and writes the rest again. A kill at any
point leaves objects the state does not vouch for, and the next publish writes those days
again; the same names are overwritten, so a row is never left twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from exporter.errors import LockHeld
from exporter.publish import arrow
from exporter.publish.local import LocalFile, LocalTables, TableDay
from exporter.publish.report import Observer, Report, Written
from exporter.publish.store import STATE_FOLDER, Conflict, Store, run_all
from exporter.tables.parquet import relative_path
from exporter.tables.specs import Table
from exporter.tables.stop import Stop

ATTEMPTS = 5  # conditional writes lost in a row to other publishes before giving up (exit 75)
UPLOADS = 8  # files in flight at once
BATCH_BYTES = 2**30  # the state is written after this much: a kill redoes at most one batch
SNAPSHOT_NAME = "snapshot.parquet"

DayState = dict[str, Any]  # {"digest": ..., "objects": {key: etag}}


def object_key(day: TableDay, file: LocalFile) -> str:
    """Where one local file goes under the prefix."""
    if day.snapshot:
        return f"{day.table.name}/{SNAPSHOT_NAME}"
    return relative_path("hive", day.table.name, file.window).as_posix()


def in_day(key: str, day: TableDay) -> bool:
    """Whether ``key`` lies where ``day``'s objects go (and so is replaced with them)."""
    folder = f"{day.table.name}/" if day.snapshot else f"{day.table.name}/date={day.day}/"
    rest = key.removeprefix(folder)
    return rest != key and "/" not in rest and rest.endswith(".parquet")


def in_place(recorded: DayState | None, listing: dict[str, str], day: TableDay) -> bool:
    """Whether ``day`` is published as it is now: its digest recorded, and exactly the
    objects recorded for it are there, at the versions recorded."""
    if not recorded or recorded.get("digest") != day.digest:
        return False
    there = {key: etag for key, etag in listing.items() if in_day(key, day)}
    return bool(recorded.get("objects")) and there == recorded["objects"]


@dataclass(slots=True)
class _TableState:
    """One table's state object as read (ETag None: there is none yet) and its listing."""

    table: Table
    days: dict[str, DayState] = field(default_factory=dict)
    etag: str | None = None
    listing: dict[str, str] = field(default_factory=dict)

    def encoded(self, changed: dict[str, DayState]) -> bytes:
        days = {**self.days, **changed}
        return orjson.dumps({"table": self.table.name, "days": days}, option=orjson.OPT_SORT_KEYS)


class ParquetPublish:
    """Publish the tables as Parquet objects under ``url``."""

    def __init__(self, url: str, observer: Observer, stop: Stop) -> None:
        self.url = url
        self.observer = observer
        self.stop = stop

    def publish(self, local: LocalTables) -> Report:
        return asyncio.run(self._publish(local))

    async def _publish(self, local: LocalTables) -> Report:
        store = Store(self.url)
        await store.claim("parquet")
        tables = local.tables()
        states = await run_all([read_state(store, t) for t in tables])
        todo = {s.table.name: [d for d in local.of(s.table) if not published(s, d)]
                for s in states}  # fmt: skip
        report = Report(unchanged=len(local.days) - sum(len(days) for days in todo.values()))
        self.observer.step("planned", f"{len(local.days) - report.unchanged} days to write")
        slots = asyncio.Semaphore(UPLOADS)
        done = await run_all([_TableWriter(store, state, todo[state.table.name], slots, self)
                              .run() for state in states])  # fmt: skip
        for one in done:
            report.add(one)
        return report


async def read_state(store: Store, table: Table) -> _TableState:
    """The table's state object and its objects, as they are now."""
    found = await store.read(_state_key(table))
    state = _TableState(table, listing=await store.listing(f"{table.name}/"))
    if found is not None:
        state.days, state.etag = orjson.loads(found.data)["days"], found.etag
    return state


def published(state: _TableState, day: TableDay) -> bool:
    return in_place(state.days.get(day.day), state.listing, day)


class _TableWriter:
    """One table's changed days: uploaded in batches, each batch then recorded in the
    table's state with a conditional write; a lost write reads the state again."""

    def __init__(self, store: Store, state: _TableState, days: list[TableDay],
                 slots: asyncio.Semaphore, publish: ParquetPublish) -> None:  # fmt: skip
        self.store = store
        self.state = state
        self.pending = days
        self.slots = slots
        self.publish = publish
        self.report = Report()

    async def run(self) -> Report:
        losses = 0
        while self.pending:
            try:
                for batch in _batches(self.pending):
                    self.publish.stop.check()
                    await self._write(batch)
                    self.pending = self.pending[len(batch) :]
            except Conflict:
                losses += 1
                if losses >= ATTEMPTS:
                    raise self._contended() from None
                await self._reread()
        return self.report

    async def _write(self, batch: Sequence[TableDay]) -> None:
        """Upload the batch's files, delete what its days no longer hold, record it."""
        jobs = [(day, object_key(day, f), f) for day in batch for f in day.files]
        etags = await run_all([self._upload(key, file) for _, key, file in jobs])
        uploaded: dict[str, str] = {}
        changed: dict[str, DayState] = {d.day: {"digest": d.digest, "objects": {}} for d in batch}
        for (day, key, _), etag in zip(jobs, etags, strict=True):
            uploaded[key] = changed[day.day]["objects"][key] = etag
        for day in batch:
            self.publish.observer.step("uploaded", day.label)
        stale = [k for k in self.state.listing if k not in uploaded
                 and any(in_day(k, day) for day in batch)]  # fmt: skip
        await self.store.delete(stale)
        self.state.etag = await self.store.write(
            _state_key(self.state.table), self.state.encoded(changed), replacing=self.state.etag
        )
        self.state.days.update(changed)
        self.state.listing = {k: e for k, e in self.state.listing.items() if k not in stale}
        self.state.listing.update(uploaded)
        for day in batch:
            self.report.written.append(_written(day))
            self.publish.observer.step("committed", day.label)

    async def _upload(self, key: str, file: LocalFile) -> str:
        async with self.slots:
            return await self.store.upload(key, file.path)

    async def _reread(self) -> None:
        """After a lost write: the state and listing as they are now; the days another
        publish has put in place with the same digest are raced, not written again."""
        self.state = await read_state(self.store, self.state.table)
        still = [d for d in self.pending if not published(self.state, d)]
        self.report.raced += [d.label for d in self.pending if d not in still]
        self.pending = still

    def _contended(self) -> LockHeld:
        return LockHeld(
            f"Other publishes kept changing {self.store.url}/{_state_key(self.state.table)} "
            f"while this one wrote {self.state.table.name} ({ATTEMPTS} times); run publish "
            "again once they are done."
        )


def _batches(days: Sequence[TableDay]) -> list[Sequence[TableDay]]:
    """The days in order, cut into batches of about BATCH_BYTES (at least one day each)."""
    batches: list[Sequence[TableDay]] = []
    start, size = 0, 0
    for index, day in enumerate(days):
        size += sum(f.bytes for f in day.files)
        if size >= BATCH_BYTES or index == len(days) - 1:
            batches.append(days[start : index + 1])
            start, size = index + 1, 0
    return batches


def _written(day: TableDay) -> Written:
    return Written(day.label, sum(arrow.rows(f.path) for f in day.files),
                   sum(f.bytes for f in day.files))  # fmt: skip


def _state_key(table: Table) -> str:
    return f"{STATE_FOLDER}/{table.name}.json"
