"""Snapshots: each listing taken whole, written as the API sent it, one file per UTC day.

A snapshot walks its listing and writes each entity once (by id), as it comes, to a part file
that becomes ``<dataset>/<YYYY-MM-DD>.jsonl`` when the snapshot is done, replacing an earlier
snapshot of the same day. Paging by number is paging by offset: an entity created during the
walk shifts later pages one way (a repeat, dropped by id), one deleted shifts them the other
(a miss). So walks repeat, each writing only what the earlier ones did not see, until one adds
nothing and agreed with itself (its total never moved and matched what it saw), at most
``MOST_WALKS``. A one-page listing, or one paged by cursor, cannot drift and is walked once.

Then the snapshot is checked against the previous one (``lookups``): each entity it had that
the walks did not see is looked up by id (a queue's members, which have no GET-by-id, by
reading the queue again). A snapshot is ``complete`` when a walk settled and every such entity
was accounted for: it then holds every entity that existed throughout, once. One whose walks
never settled is ``provisional``: it holds every entity seen and every earlier one that still
exists, but cannot promise the ones created meanwhile. Walks that keep losing entities that
still exist (an empty answer, say) fail the dataset, and the previous snapshot stays.

Requests go through the run's one client at ``PRIORITY``, after every job request, so
snapshots fill the turns the analytics jobs leave (while they are pending, and between
cursor pages). ``SLOTS`` walks or lookups go at once (listings, and a per-queue listing's
queues): enough to use spare turns, few enough to leave the pool's other places to job
requests, since a request holds its place in the pool while it waits for a turn. A stopped or
killed snapshot leaves nothing: it is cheap to take again. A queue deleted while its members
are read (404) is skipped: it is gone, and so are its members. A 400 on a page asked by the
listing's own cursor (teams) starts the walk over, as a walk of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import Listing, denied_message
from exporter.datasets.records import HeadDecoder, Records
from exporter.engine import listing, lookups
from exporter.engine.ledger import Ledger
from exporter.engine.lookups import Check
from exporter.engine.writer import FilesThread
from exporter.errors import ApiError, PermissionDenied
from exporter.plan import WorkItem
from exporter.store.sink import Sink
from exporter.windows import Slot, Window, format_instant

log = logging.getLogger(__name__)
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
    parents_gone: dict[str, int] = field(default_factory=dict)  # deleted while read: skipped


@dataclass(slots=True)
class _Snapshot:
    """One dataset's snapshot being taken. Keys are ids (``parent/id`` per parent), held as a
    set: listings are thousands of entities, not millions."""

    dataset: Listing
    file: Sink
    previous: frozenset[bytes] | None  # the previous snapshot's keys
    parents: list[str]  # [""] for a listing without parents
    seen: set[bytes] = field(default_factory=set)
    gone: set[bytes] = field(default_factory=set)  # of ``previous``, looked up: 404
    walks: int = 0

    def missing(self) -> set[bytes]:
        """Keys of the previous snapshot neither seen nor found gone."""
        return set() if self.previous is None else set(self.previous - self.seen - self.gone)


@dataclass(slots=True)
class _Walk:
    """One walk: entities new to the snapshot, and whether the walk agreed with itself."""

    added: int = 0
    distinct: set[bytes] = field(default_factory=set)  # what this walk saw
    longest: int = 0  # pages of the longest listing walked (per parent: each queue's)
    totals: set[int] = field(default_factory=set)
    rejected: listing.CursorRejected | None = None  # the service refused its own cursor

    def quiet(self, dataset: Listing) -> bool:
        """Whether no other walk is needed: this one went to the end and added nothing while
        every page reported the total it saw (or none did), or it could not drift."""
        if self.rejected is not None:
            return False
        agreed = self.added == 0 and len(self.totals) <= 1 and self.totals <= {len(self.distinct)}
        return agreed or self.longest <= 1 or not dataset.offset_paging


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
        self._rng = random.Random()
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
        previous = await self._files.call(lookups.previous_keys, ledger, dataset)
        item = self._item()
        file = ledger.sink(ledger.path_of(item))
        await self._files.call(file.create)
        try:
            parents = [""] if dataset.parent is None else await self._ids(dataset.parent)
            snapshot = _Snapshot(dataset, file, previous, parents)
            complete = await self._settle(snapshot)
            self.counters.walks[dataset.name] = snapshot.walks
            await self._files.call(self._commit, ledger, item, file, complete)
        except BaseException:
            with contextlib.suppress(OSError):
                await self._files.call(file.discard)
            raise

    def _commit(self, ledger: Ledger, item: WorkItem, file: Sink, complete: bool) -> None:
        taken_at = format_instant(self._taken_at)
        ledger.commit_snapshot(item, file.commit(), taken_at, provisional=not complete)

    def _item(self) -> WorkItem:
        day = self._taken_at.replace(hour=0, minute=0, second=0, microsecond=0)
        window = Window(day, day + timedelta(days=1))
        return WorkItem(Slot(window, window), "fetch", "listing", "snapshot")

    async def _settle(self, snapshot: _Snapshot) -> bool:
        """Walk and check until the snapshot can be committed, at most MOST_WALKS walks:
        True for complete, False for provisional; raises when it cannot be either."""
        check: Check | None = None
        walk = _Walk()
        while snapshot.walks < MOST_WALKS:
            walk = await self._walk(snapshot, snapshot.parents)
            if not walk.quiet(snapshot.dataset):
                check = None
                continue
            check = await self._check(snapshot, walk)
            if check is not Check.BROKEN:
                return check is Check.CHECKED
            log.warning("%s: a walk lost entities that still exist; walking again",
                        snapshot.dataset.name)  # fmt: skip
        if walk.rejected is not None:
            raise ApiError(
                f"The listing {snapshot.dataset.path} refused the cursor it sent on each of "
                f"{MOST_WALKS} walks ({walk.rejected}); the previous snapshot is kept. Run again "
                "later."
            )
        return await self._unsettled(snapshot, walk, check)

    async def _unsettled(self, snapshot: _Snapshot, walk: _Walk, check: Check | None) -> bool:
        """After the last walk, none of which settled: provisional, or failed when the walks
        still lose entities that exist."""
        name = snapshot.dataset.name
        if check is None:  # still drifting: account for what the walks missed all the same
            check = await self._check(snapshot, walk)
        if check is Check.BROKEN:
            raise ApiError(
                f"Each of {MOST_WALKS} walks of {snapshot.dataset.path} lost entities the "
                "previous snapshot had that still exist (looked up by id): the service "
                "answers this listing incompletely; the previous snapshot is kept. Run again "
                "later, and report it to Genesys if it persists."
            )
        if check is Check.CHECKED:  # (an unchecked one said so already)
            log.warning("%s kept changing over %d walks: the snapshot is provisional (it holds "
                        "every entity seen and each earlier one that still exists, but may lack "
                        "some created meanwhile)", name, MOST_WALKS)  # fmt: skip
        return False

    async def _check(self, snapshot: _Snapshot, walk: _Walk) -> Check:
        """Judge ``walk`` by the entities of the previous snapshot it did not see, looked up
        by id (unless seen by another walk, or looked up before: they exist), and account
        for each the snapshot lacks."""
        if snapshot.dataset.parent is not None:
            return await self._reread(snapshot)
        previous = snapshot.previous or frozenset()
        lost = previous - walk.distinct - snapshot.gone
        if not lost:
            return Check.CHECKED
        plan = lookups.plan(lost, len(previous), self._rng)
        found = await self._look_up(snapshot, plan.first)
        rest = [key for key in plan.rest if key not in snapshot.seen]
        check = lookups.judge(plan, found, len(lost), len(previous), len(rest))
        if check is Check.CHECKED:
            found += await self._look_up(snapshot, rest)
        name = snapshot.dataset.name
        log.info("%s: a walk missed %d entities of the previous snapshot; %d of them still exist "
                 "(seen by another walk, or looked up by id)", name, len(lost), found)  # fmt: skip
        if check is Check.UNCHECKED:
            log.warning("%s: %d entities of the previous snapshot were not seen, too many to "
                        "look up (a sample found them gone): the snapshot is provisional",
                        name, len(rest))  # fmt: skip
        return check

    async def _look_up(self, snapshot: _Snapshot, keys: list[bytes]) -> int:
        """How many of ``keys`` exist: those not seen yet are looked up by id, found ones
        written, gone ones remembered."""
        found: Records = []

        async def one(key: bytes) -> None:
            async with self._slots:
                body = await lookups.look_up(self._api, snapshot.dataset, key, PRIORITY)
            if body is None:
                snapshot.gone.add(key)
            elif key not in snapshot.seen:
                snapshot.seen.add(key)
                found.append(body)

        unseen = [key for key in keys if key not in snapshot.seen]
        async with asyncio.TaskGroup() as group:
            for key in unseen:
                group.create_task(one(key))
        await self._files.call(snapshot.file.append, found)
        return len(keys) - len(unseen) + len(found)

    async def _reread(self, snapshot: _Snapshot) -> Check:
        """A member has no GET-by-id: the queues still there whose earlier members were not
        seen are read again (each a walk), until a read adds nothing: they left the queue.
        Unless most of the previous snapshot did, which cannot be told from an answer that
        leaves them out: then the snapshot is provisional."""
        while True:
            lost = _lost_members(snapshot)
            if not lost:
                return Check.CHECKED
            suspects = [parent for parent in snapshot.parents if parent in lost]
            if snapshot.walks >= MOST_WALKS:
                log.warning("%s: %d queues hold fewer members than the previous snapshot and "
                            "the walks ran out before a read of them agreed: the snapshot is "
                            "provisional", snapshot.dataset.name, len(suspects))  # fmt: skip
                return Check.UNCHECKED
            if (await self._walk(snapshot, suspects)).added == 0:
                break
        missing, previous = sum(lost.values()), len(snapshot.previous or ())
        if missing * 2 <= previous:
            return Check.CHECKED
        log.warning("%s: %d of the %d members of the previous snapshot are no longer listed, "
                    "read twice: the snapshot is provisional", snapshot.dataset.name, missing,
                    previous)  # fmt: skip
        return Check.UNCHECKED

    async def _walk(self, snapshot: _Snapshot, parents: list[str]) -> _Walk:
        """One walk over every page (of each of ``parents``, at once, for a per-parent
        listing)."""
        snapshot.walks += 1
        walk = _Walk()
        async with asyncio.TaskGroup() as group:
            for parent in parents:
                group.create_task(self._walk_one(snapshot, parent, walk))
        if snapshot.dataset.parent is not None:
            walk.totals.clear()  # member listings report no total
        name = snapshot.dataset.name
        log.debug("%s: walk %d saw %d entities, %d new, in %d pages at most (totals %s)", name,
                  snapshot.walks, len(walk.distinct), walk.added, walk.longest,
                  sorted(walk.totals) or "none", extra={"dataset": name})  # fmt: skip
        return walk

    async def _walk_one(self, snapshot: _Snapshot, parent: str, walk: _Walk) -> None:
        dataset = snapshot.dataset
        prefix, pages = f"{parent}/" if parent else "", 0
        async with self._slots:
            try:
                async for page, single_line in self._pages(dataset, parent):
                    pages += 1
                    if page.total is not None:
                        walk.totals.add(page.total)
                    new = self._new_entities(snapshot, walk, page.entities, prefix)
                    lines = await self._lines(snapshot, new, parent, single_line)
                    walk.added += len(lines)
                    await self._files.call(snapshot.file.append, lines)
            except listing.CursorRejected as rejected:
                walk.rejected = rejected
            except ApiError as exc:
                if exc.status != 404 or not parent:
                    raise
                self._parent_gone(snapshot, parent)
        walk.longest = max(walk.longest, pages)

    def _new_entities(
        self, snapshot: _Snapshot, walk: _Walk, entities: list[msgspec.Raw], prefix: str
    ) -> list[tuple[bytes, str, msgspec.Raw]]:
        """(key, id, entity) of the page's entities the snapshot has not written yet."""
        new = []
        for raw in entities:
            entity_id = _read_id(raw).id
            key = (prefix + entity_id).encode()
            walk.distinct.add(key)
            if key not in snapshot.seen:
                snapshot.seen.add(key)
                new.append((key, entity_id, raw))
        return new

    async def _lines(
        self, snapshot: _Snapshot, new: list[tuple[bytes, str, msgspec.Raw]], parent: str,
        single_line: bool,
    ) -> Records:  # fmt: skip
        """The lines of the new entities: as listed, or (``read_each``) as each one's read
        answers; one deleted between its page and its read (404) is gone."""
        dataset = snapshot.dataset
        if not dataset.read_each:
            return [_line(raw, dataset.parent_key, parent, single_line) for _, _, raw in new]
        lines = []
        for key, entity_id, _ in new:
            body = await lookups.read_one(self._api, dataset, entity_id,
                                          dataset.by_id_params[:1], PRIORITY)  # fmt: skip
            if body is None:
                snapshot.seen.discard(key)
                snapshot.gone.add(key)
                continue
            lines.append(_line(body, dataset.parent_key, parent, True))
        return lines

    def _parent_gone(self, snapshot: _Snapshot, parent: str) -> None:
        """A 404 for one parent's listing: the parent was deleted since it was listed."""
        name, gone = snapshot.dataset.name, self.counters.parents_gone
        snapshot.parents.remove(parent)
        gone[name] = gone.get(name, 0) + 1
        log.info("%s: %s was deleted while it was read (404); skipped", name, parent)

    def _pages(
        self, dataset: Listing, parent: str = ""
    ) -> AsyncIterator[tuple[listing.EntityPage, bool]]:
        size = self._sizes.setdefault(dataset.name, listing.PageSize(dataset.page_size))
        return listing.pages(
            self._api, dataset.path.replace("{id}", parent), dataset.params,
            size=size, numbered=dataset.offset_paging, priority=PRIORITY,
        )  # fmt: skip

    async def _ids(self, dataset: Listing) -> list[str]:
        """Every id of a parent listing (queues; business units, and their management units
        for a unit's users), walked like a snapshot until a walk adds nothing, kept in memory
        only: parents are small listings."""
        parents = [""] if dataset.parent is None else await self._ids(dataset.parent)
        ids: dict[str, None] = {}
        for parent in parents:
            ids.update(dict.fromkeys(await self._ids_under(dataset, parent)))
        return list(ids)

    async def _ids_under(self, dataset: Listing, parent: str) -> list[str]:
        """The ids of ``dataset`` (under ``parent``, when it has one: none once it is gone)."""
        ids: dict[str, None] = {}
        for _ in range(MOST_WALKS):
            before, pages = len(ids), 0
            async with self._slots:
                try:
                    async for page, _ in self._pages(dataset, parent):
                        pages += 1
                        ids.update(dict.fromkeys(_read_id(raw).id for raw in page.entities))
                except ApiError as exc:
                    if exc.status != 404 or not parent:
                        raise
                    return []
            if len(ids) == before or pages <= 1 or not dataset.offset_paging:
                break
        return list(ids)


def _lost_members(snapshot: _Snapshot) -> dict[str, int]:
    """Per parent still listed, how many of its previous members were not seen."""
    parents, lost = set(snapshot.parents), dict[str, int]()
    for key in snapshot.missing():
        parent = key.split(b"/", 1)[0].decode()
        if parent in parents:
            lost[parent] = lost.get(parent, 0) + 1
    return lost


def _line(raw: msgspec.Raw | bytes, parent_key: str, parent: str, single_line: bool) -> bytes:
    """The entity as the API sent it (on one line), with its parent's id first if it has one:
    a queue member does not name its queue."""
    body = bytes(raw) if single_line else orjson.dumps(orjson.loads(bytes(raw)))
    if not parent_key:
        return body
    head = b'{"' + parent_key.encode() + b'":' + orjson.dumps(parent)
    return head + (b"," + body[1:] if body != b"{}" else b"}")
