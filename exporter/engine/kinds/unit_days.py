"""The unit-days kind: records asked per unit and per day of the unit's own calendar, a
date's every unit in one file: searched a unit-day at a time (``UnitDays``: schedules), or
asked for a span of days of every unit of a time zone at once by a bulk job
(``BulkUnitDays``: adherence, ``span_days`` at most per job, each date in one job only).

A run reads the units first (listed, then each read by id: their time zones come with them),
then takes the dates of the range one after another. A date is due when it has no complete
file, when ``--force`` asks, or when it ends within ``--lookback``; with ``--since-last`` the
range starts at the earliest date not complete. Each unit's local day of the date, [its
midnight, the next) in its time zone (23 or 25 hours across a DST change), is searched
(``engine.searches``: inline, download link or later, the same result), its lines kept to
what starts in that day, and the date's lines of every unit are written as one file and
committed together: ``provisional`` while the date has not ended in some unit's time zone
(schedules change until the day is over), else ``complete``. A file is named by the local
date; its manifest interval is that date in UTC, the nearest thing one interval can say for
units in several time zones. A date whose requests fail past their retries is recorded
failed (one line) and asked for again by the next run; the others go on. A stop or a kill
drops the dates being asked for (no file is ever committed half): the next run asks for
them again, and for none it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import BulkUnitDays, Listing, UnitDay, UnitDays, denied_message
from exporter.engine import listing, lookups, searches
from exporter.engine.kinds.base import PlanContext, PlanLine, Preview, RunContext, Tally
from exporter.engine.ledger import Ledger
from exporter.errors import ApiError, PermissionDenied
from exporter.plan import ExportRequest, WorkItem, range_start
from exporter.store.manifest import Manifest
from exporter.windows import Slot, Window

log = logging.getLogger(__name__)
DAY = timedelta(days=1)
Dated = UnitDays | BulkUnitDays
Units = list[tuple[str, str]]  # (unit id, Olson time zone)


class UnitDaysKind:
    word = "unit-days"
    ranged = True
    dated = True
    stage = 0

    def endpoint(self, dataset: Dated) -> str:
        return dataset.endpoint

    async def reach(self, api: ApiClient, dataset: Dated) -> str:
        """One request over one minute of the first unit: 403 names what is missing."""
        units = await read_units(api, dataset)
        if not units:
            return f"no {dataset.units.name} to ask for"
        unit_id, zone = units[0]
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        day = UnitDay(unit_id, zone, now.date(), now, now + timedelta(minutes=1))
        if isinstance(dataset, UnitDays):
            body, path = dataset.body(day), _path(dataset, unit_id)
        else:
            body, path = dataset.body(zone, [(unit_id, day, day)]), dataset.path
        await api.request("POST", path, json=body, expect=(200, 202), parse=len)
        return f"readable, {len(units)} {dataset.units.name}"

    def check(self, request: ExportRequest, manifest: Manifest, datasets: Sequence[Dated]) -> None:
        for dataset in datasets:
            range_start(request, manifest.records(dataset.name), dataset)

    async def preview(self, context: PlanContext, datasets: Sequence[Dated]) -> Preview:
        """Each date due, and its requests at least (a search per unit; a bulk job's share:
        one per unit; downloads and answers that come later cost more, unknown before)."""
        lines = []
        for dataset in datasets:
            units = await read_units(context.api, dataset)
            for day, reason in due_dates(context.request, context.manifest, dataset):
                lines.append(PlanLine(dataset.name, day.isoformat(), "fetch", "search", reason,
                                      None, len(units)))  # fmt: skip
        return Preview(tuple(lines))

    async def prepare(self, context: RunContext, datasets: Sequence[Dated]) -> UnitDaysWork:
        return UnitDaysWork(context, list(datasets))


class UnitDaysWork:
    """The unit-day datasets' searches in one run, each dataset's dates one after another."""

    def __init__(self, context: RunContext, datasets: list[Dated]) -> None:
        self._context = context
        self._datasets = datasets
        self._due = {d.name: list(due_dates(context.request, context.manifest, d))
                     for d in datasets}  # fmt: skip
        self._stopped = False
        self._task: asyncio.Task[object] | None = None
        self._tally = Tally()

    @property
    def windows(self) -> int:
        return sum(len(days) for days in self._due.values())

    @property
    def resumed_records(self) -> int:
        return 0

    @property
    def busy(self) -> bool:
        return any(self._due.values())

    async def expected_records(self) -> int | None:
        return None

    async def run(self) -> None:
        if self._stopped:
            return
        self._task = asyncio.current_task()
        async with asyncio.TaskGroup() as group:
            for dataset in self._datasets:
                if self._due[dataset.name]:
                    group.create_task(self._search_dataset(dataset))

    def stop(self) -> None:
        """No new date starts, and the one being searched is dropped (never committed half)."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def tally(self) -> Tally:
        return self._tally

    async def _search_dataset(self, dataset: Dated) -> None:
        ledger = self._context.ledgers[dataset.name]
        try:
            units = await read_units(self._context.api, dataset)
        except PermissionDenied as exc:
            self._deny(dataset, exc)
            return
        except ApiError as exc:  # its units cannot be read: no date of it can be asked for
            self._tally.failed.append(f"{dataset.name}: {exc}")
            log.error("%s: its %s cannot be read: %s", dataset.name, dataset.units.name, exc)
            return
        most = dataset.span_days if isinstance(dataset, BulkUnitDays) else 1
        zones = {zone for _, zone in units}
        for span in spans([day for day, _ in self._due[dataset.name]], most, zones):
            named = f"{span[0].isoformat()}" + (f" to {span[-1].isoformat()}" if span[1:] else "")
            log.info("%s %s: asking", dataset.name, named)
            try:
                lines = await self._fetch(dataset, units, span)
                for day in span:
                    await self._commit(ledger, units, day, lines[day])
            except PermissionDenied as exc:
                self._deny(dataset, exc)
                return
            except ApiError as exc:  # retries spent: the next run asks for the dates again
                self._tally.failed += [f"{dataset.name} {day.isoformat()}: {exc}" for day in span]
                log.error("%s %s failed: %s", dataset.name, named, exc)
                await self._context.files.call(ledger.fail, [_item(d) for d in span], str(exc))

    def _deny(self, dataset: Dated, exc: PermissionDenied) -> None:
        self._tally.denied[dataset.name] = denied_message(dataset, exc)
        log.error("%s", self._tally.denied[dataset.name])

    async def _fetch(
        self, dataset: Dated, units: Units, span: list[date]
    ) -> dict[date, list[bytes]]:
        """Every unit's lines of each date of ``span``."""
        lines: dict[date, list[bytes]] = {day: [] for day in span}
        if isinstance(dataset, UnitDays):
            for day in span:
                for unit_id, zone in units:
                    lines[day] += await self._search(dataset, unit_day(unit_id, zone, day))
            return lines
        for zone, members in _by_zone(units).items():
            results = await self._bulk(dataset, zone, members, span)
            for unit_id, result in zip(members, results, strict=True):
                for day in span:
                    lines[day] += dataset.lines(result, unit_day(unit_id, zone, day))
        return lines

    async def _search(self, dataset: UnitDays, day: UnitDay) -> list[bytes]:
        """One unit-day's lines, by one search."""
        settings, clock = self._context.settings.workforce, asyncio.get_running_loop().time
        path = _path(dataset, day.unit_id)
        result = await searches.search(self._context.api, path, dataset.body(day), settings,
                                       clock=clock)  # fmt: skip
        return dataset.lines(result, day)

    async def _bulk(
        self, dataset: BulkUnitDays, zone: str, members: list[str], span: list[date]
    ) -> list[dict[str, Any]]:
        """One bulk job over ``span`` for the units of one time zone: a result per unit."""
        settings, clock = self._context.settings.workforce, asyncio.get_running_loop().time
        items = [(u, unit_day(u, zone, span[0]), unit_day(u, zone, span[-1])) for u in members]
        paths = (dataset.path, dataset.job_path)
        return await searches.bulk_job(self._context.api, paths, dataset.body(zone, items),
                                       settings, clock=clock)  # fmt: skip

    async def _commit(self, ledger: Ledger, units: Units, day: date, lines: list[bytes]) -> None:
        """Write and commit one date's file: provisional while the date has not ended in some
        unit's time zone."""
        files, item = self._context.files, _item(day)
        file = ledger.sink(ledger.path_of(item))
        await files.call(file.create)
        try:
            await files.call(file.append, lines)
            digest = await files.call(file.commit)
        except BaseException:
            with contextlib.suppress(OSError):
                await files.call(file.discard)
            raise
        ended = all(unit_day(u, z, day).end <= self._context.now for u, z in units)
        await files.call(ledger.commit_search, item, digest, provisional=not ended)


def spans(days: list[date], most: int, zones: set[str]) -> list[list[date]]:
    """``days`` (ascending) in runs of consecutive dates, each date in one run only, a run
    ``most`` dates long at most and no longer than ``most`` times 24 hours in any of
    ``zones``: 7 local days across a fall-back change are 169 hours, and whether the
    service's limit counts days or hours is UNVERIFIED, so such a run is cut a day short."""
    runs: list[list[date]] = []
    for day in days:
        run = runs[-1] if runs else []
        if run and len(run) < most and run[-1] + DAY == day and _within(run[0], day, most, zones):
            run.append(day)
        else:
            runs.append([day])
    return runs


def _within(first: date, last: date, most: int, zones: set[str]) -> bool:
    limit = timedelta(days=most)
    return all(unit_day("", z, last).end - unit_day("", z, first).start <= limit for z in zones)


def _by_zone(units: Units) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for unit_id, zone in units:
        grouped.setdefault(zone, []).append(unit_id)
    return grouped


async def read_units(api: ApiClient, dataset: Dated) -> Units:
    """(id, Olson time zone) of every unit, listed (under each parent, for units listed per
    parent) then each read by id, in the listings' order; a unit deleted between the two is
    left out. A unit that names no time zone of its own takes its parent's (a management
    unit's is moving to its business unit), read once per parent."""
    units = dataset.units
    found: Units = []
    parents: dict[str, str] = {}
    for parent, unit_id in await _ids(api, units):
        body = await lookups.read_one(api, units, unit_id, units.by_id_params[:1], 0)
        if body is None:
            continue
        zone = dataset.time_zone(orjson.loads(body))
        if not zone and units.parent is not None and dataset.parent_time_zone is not None:
            if parent not in parents:
                parents[parent] = await _parent_zone(api, dataset, units.parent, parent)
            zone = parents[parent]
        found.append((unit_id, _zone(dataset, unit_id, zone)))
    return found


async def _parent_zone(api: ApiClient, dataset: Dated, parent: Listing, parent_id: str) -> str:
    assert dataset.parent_time_zone is not None
    body = await lookups.read_one(api, parent, parent_id, parent.by_id_params[:1], 0)
    return "" if body is None else dataset.parent_time_zone(orjson.loads(body))


async def _ids(api: ApiClient, units: Listing) -> list[tuple[str, str]]:
    """(parent id, id) of every entity a listing lists (under each of its parent's, when it
    has one; the parent id is "" otherwise)."""
    parents = [""] if units.parent is None else [i for _, i in await _ids(api, units.parent)]
    ids: dict[tuple[str, str], None] = {}
    for parent in parents:
        path = units.path.replace("{id}", quote(parent, safe=""))
        size = listing.PageSize(units.page_size)
        async for page, _ in listing.pages(api, path, units.params, size=size,
                                           numbered=units.offset_paging, priority=0):  # fmt: skip
            ids.update(dict.fromkeys((parent, orjson.loads(bytes(raw))["id"])
                                     for raw in page.entities))  # fmt: skip
    return list(ids)


def unit_day(unit_id: str, zone: str, day: date) -> UnitDay:
    """``day`` in the unit's time zone: from its midnight to the next, in UTC."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + DAY, time(), tz).astimezone(UTC)
    return UnitDay(unit_id, zone, day, start, end)


def due_dates(
    request: ExportRequest, manifest: Manifest, dataset: Dated
) -> Iterator[tuple[date, str]]:
    """The dates of the request's range to search, and why."""
    start, redo = range_start(request, manifest.records(dataset.name), dataset)
    if start is None:
        return
    day = start.date()
    while datetime.combine(day, time(), UTC) < request.end:
        record = manifest.get(dataset.name, day.isoformat())
        if record is None:
            yield day, "never searched"
        elif record.status != "complete":
            yield day, f"{record.status} before"
        elif request.force:
            yield day, "--force"
        elif redo is not None and datetime.combine(day + DAY, time(), UTC) > redo:
            yield day, "within --lookback"
        day += DAY


def _zone(dataset: Dated, unit_id: str, zone: str) -> str:
    """``zone``, checked to be a time zone this machine knows."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApiError(
            f"{dataset.units.name} {unit_id} has the time zone {zone!r}, which this machine's "
            f"time zone database does not know ({exc}); update tzdata (pip install -U tzdata, or "
            "the OS package) and run again."
        ) from exc
    return zone


def _path(dataset: UnitDays, unit_id: str) -> str:
    return dataset.path.replace("{id}", quote(unit_id, safe=""))


def _item(day: date) -> WorkItem:
    start = datetime.combine(day, time(), UTC)
    window = Window(start, start + DAY)
    return WorkItem(Slot(window, window), "fetch", "search", "searched per unit-day")


UNIT_DAYS = UnitDaysKind()
