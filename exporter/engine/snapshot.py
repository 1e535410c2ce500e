"""Snapshots: each listing taken whole, written as the API sent it, one file per UTC day.

A snapshot walks its listing and writes each entity once (by id), as it comes, to a part file
that becomes ``<dataset>/<YYYY-MM-DD>.jsonl`` when the walk is done, replacing an earlier
snapshot of the same day. Paging by number is paging by offset: an entity created during the
walk shifts later pages one way (a repeat, dropped by id), one deleted shifts them the other
(a miss). So walks repeat, each writing only what the earlier ones did not see, until one adds
nothing and agreed with itself (its total never moved and matched what it saw), at most
``MOST_WALKS``: an entity that existed for the whole snapshot is never missing. A one-page
listing, or one paged by cursor, cannot drift and is walked once.

Requests go through the run's one client at ``PRIORITY``, after every job request, so
snapshots fill the turns the analytics jobs leave (while they are pending, and between
cursor pages). ``SLOTS`` walks go at once (listings, and a per-queue listing's queues): enough
to use spare turns, few enough to leave the pool's other places to job requests, since a
request holds its place in the pool while it waits for a turn. A stopped or killed snapshot
leaves nothing: it is cheap to take again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import Listing, denied_message
from exporter.engine import listing
from exporter.engine.records import HeadDecoder, Records
from exporter.engine.seen import SeenKeys
from exporter.engine.writer import FilesThread
from exporter.errors import ApiError, PermissionDenied
from exporter.plan import WorkItem
from exporter.store.ledger import Ledger
from exporter.store.sink import Sink
from exporter.windows import Slot, Window, format_instant

log = logging.getLogger("exporter")
PRIORITY = 2.0  # after job pages (0 to 1) and job control (-1)
MOST_WALKS = 4
SLOTS = 2


class _Id(msgspec.Struct):
    id: str


_read_id = HeadDecoder(_Id).decode


@dataclass(slots=True)
class SnapshotCounters:
    """What the snapshots did beyond what the manifest records."""

    failed: list[str] = field(default_factory=list)  # "dataset: reason", one line each
    denied: dict[str, str] = field(default_factory=dict)  # dataset -> the missing permission
    walks: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Walk:
    """One walk: entities new to the snapshot, and whether the walk agreed with itself."""

    added: int = 0
    distinct: SeenKeys = field(default_factory=SeenKeys)  # what this walk saw, once each
    longest: int = 0  # pages of the longest listing walked (per parent: each queue's)
    totals: set[int] = field(default_factory=set)

    @property
    def settled(self) -> bool:
        """Nothing new, and every page reported the total this walk saw (or none reported)."""
        return self.added == 0 and len(self.totals) <= 1 and self.totals <= {len(self.distinct)}

    @property
    def cannot_drift(self) -> bool:
        return self.longest <= 1


class SnapshotRun:
    """Takes the snapshot of each listing, one after another."""

    def __init__(
        self,
        api: ApiClient,
        files: FilesThread,
        ledgers: Mapping[str, Ledger],
        *,
        taken_at: datetime,
    ) -> None:
        self._api = api
        self._files = files
        self._ledgers = ledgers
        self._taken_at = taken_at
        self._slots = asyncio.Semaphore(SLOTS)
        self._sizes: dict[str, listing.PageSize] = {}  # per dataset, for the whole run
        self.counters = SnapshotCounters()

    async def run(self, listings: list[Listing]) -> SnapshotCounters:
        async with asyncio.TaskGroup() as group:
            for dataset in listings:
                group.create_task(self._take_or_report(dataset))
        return self.counters

    async def _take_or_report(self, dataset: Listing) -> None:
        """A denied or failing listing is reported and the others go on (its queues are
        walked at once, so what it raises comes grouped)."""
        try:
            await self._take(dataset)
        except* PermissionDenied as denied:
            self.counters.denied[dataset.name] = denied_message(dataset, denied.exceptions[0])
            log.error("%s", self.counters.denied[dataset.name])
        except* ApiError as failed:
            self.counters.failed.append(f"{dataset.name}: {failed.exceptions[0]}")
            log.error("snapshot of %s failed: %s", dataset.name, failed.exceptions[0])

    async def _take(self, dataset: Listing) -> None:
        ledger = self._ledgers[dataset.name]
        item = self._item()
        file = ledger.sink(ledger.path_of(item))
        await self._files.call(file.create)
        try:
            parents = [""] if dataset.parent is None else await self._ids(dataset.parent)
            seen, walks = SeenKeys(), 0
            while walks < MOST_WALKS:
                walks += 1
                walk = await self._walk(dataset, parents, file, seen)
                if walk.settled or walk.cannot_drift or not dataset.offset_paging:
                    break
            else:
                log.warning("%s kept changing over %d walks; the snapshot holds every entity "
                            "seen", dataset.name, MOST_WALKS)  # fmt: skip
            self.counters.walks[dataset.name] = walks
            await self._files.call(self._commit, ledger, item, file)
        except BaseException:
            with contextlib.suppress(OSError):
                await self._files.call(file.discard)
            raise

    def _commit(self, ledger: Ledger, item: WorkItem, file: Sink) -> None:
        ledger.commit_snapshot(item, file.commit(), format_instant(self._taken_at))

    def _item(self) -> WorkItem:
        day = self._taken_at.replace(hour=0, minute=0, second=0, microsecond=0)
        window = Window(day, day + timedelta(days=1))
        return WorkItem(Slot(window, window), "fetch", "listing", "snapshot")

    async def _walk(
        self, dataset: Listing, parents: list[str], file: Sink, seen: SeenKeys
    ) -> _Walk:
        """One walk over every page (of every parent, at once, for a per-parent listing)."""
        walk = _Walk()
        async with asyncio.TaskGroup() as group:
            for parent in parents:
                group.create_task(self._walk_one(dataset, parent, file, seen, walk))
        if dataset.parent is not None:
            walk.totals.clear()  # member listings report no total
        return walk

    async def _walk_one(
        self, dataset: Listing, parent: str, file: Sink, seen: SeenKeys, walk: _Walk
    ) -> None:
        prefix, pages = f"{parent}/" if parent else "", 0
        async with self._slots:
            async for page, single_line in self._pages(dataset, parent):
                pages += 1
                if page.total is not None:
                    walk.totals.add(page.total)
                ids = [(prefix + _read_id(raw).id).encode() for raw in page.entities]
                walk.distinct.keep_new(ids)
                lines: Records = [
                    _line(raw, dataset.parent_key, parent, single_line)
                    for raw, new in zip(page.entities, seen.keep_new(ids), strict=True)
                    if new
                ]
                walk.added += len(lines)
                await self._files.call(file.append, lines)
        walk.longest = max(walk.longest, pages)

    def _pages(
        self, dataset: Listing, parent: str = ""
    ) -> AsyncIterator[tuple[listing.EntityPage, bool]]:
        size = self._sizes.setdefault(dataset.name, listing.PageSize(dataset.page_size))
        return listing.pages(
            self._api, dataset.path.replace("{id}", parent), dataset.params,
            size=size, numbered=dataset.offset_paging, priority=PRIORITY,
        )  # fmt: skip

    async def _ids(self, dataset: Listing) -> list[str]:
        """Every id of a parent listing (queues), walked like a snapshot until a walk adds
        nothing, kept in memory only: parents are small listings."""
        ids: dict[str, None] = {}
        for _ in range(MOST_WALKS):
            before, pages = len(ids), 0
            async with self._slots:
                async for page, _ in self._pages(dataset):
                    pages += 1
                    ids.update(dict.fromkeys(_read_id(raw).id for raw in page.entities))
            if len(ids) == before or pages <= 1 or not dataset.offset_paging:
                break
        return list(ids)


def _line(raw: msgspec.Raw, parent_key: str, parent: str, single_line: bool) -> bytes:
    """The entity as the API sent it (on one line), with its parent's id first if it has one:
    a queue member does not name its queue."""
    body = bytes(raw) if single_line else orjson.dumps(orjson.loads(bytes(raw)))
    if not parent_key:
        return body
    head = b'{"' + parent_key.encode() + b'":' + orjson.dumps(parent)
    return head + (b"," + body[1:] if body != b"{}" else b"}")
