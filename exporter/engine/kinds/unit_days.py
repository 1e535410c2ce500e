"""The unit-days kind: records searched per unit and per day of the unit's own calendar
(workforce schedules), a date's every unit in one file.

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
units in several time zones. A date whose searches fail past their retries is recorded
failed (one line) and searched again by the next run; the others go on. A stop or a kill
drops the date being searched (its file is never committed half): the next run searches it
again, and none it committed.
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
from exporter.datasets.base import UnitDay, UnitDays, denied_message
from exporter.engine import listing, lookups, searches
from exporter.engine.kinds.base import PlanContext, PlanLine, Preview, RunContext, Tally
from exporter.engine.ledger import Ledger
from exporter.errors import ApiError, PermissionDenied
from exporter.plan import ExportRequest, WorkItem, range_start
from exporter.store.manifest import Manifest
from exporter.windows import Slot, Window

log = logging.getLogger(__name__)
DAY = timedelta(days=1)


class UnitDaysKind:
    word = "unit-days"
    ranged = True
    dated = True
    stage = 0

    def endpoint(self, dataset: UnitDays) -> str:
        return dataset.endpoint

    async def reach(self, api: ApiClient, dataset: UnitDays) -> str:
        """One search of the first unit over one minute: 403 names what is missing."""
        units = await read_units(api, dataset)
        if not units:
            return f"no {dataset.units.name} to search"
        unit_id, zone = units[0]
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        day = UnitDay(unit_id, zone, now.date(), now, now + timedelta(minutes=1))
        await api.request("POST", _path(dataset, unit_id), json=dataset.body(day), parse=len)
        return f"readable, {len(units)} {dataset.units.name}"

    def check(
        self, request: ExportRequest, manifest: Manifest, datasets: Sequence[UnitDays]
    ) -> None:
        for dataset in datasets:
            range_start(request, manifest.records(dataset.name), dataset)

    async def preview(self, context: PlanContext, datasets: Sequence[UnitDays]) -> Preview:
        """Each date due, and its searches (one per unit; a download or a later answer costs
        more, which cannot be told before)."""
        lines = []
        for dataset in datasets:
            units = await read_units(context.api, dataset)
            for day, reason in due_dates(context.request, context.manifest, dataset):
                lines.append(PlanLine(dataset.name, day.isoformat(), "fetch", "search", reason,
                                      None, len(units)))  # fmt: skip
        return Preview(tuple(lines))

    async def prepare(self, context: RunContext, datasets: Sequence[UnitDays]) -> UnitDaysWork:
        return UnitDaysWork(context, list(datasets))


class UnitDaysWork:
    """The unit-day datasets' searches in one run, each dataset's dates one after another."""

    def __init__(self, context: RunContext, datasets: list[UnitDays]) -> None:
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

    async def _search_dataset(self, dataset: UnitDays) -> None:
        ledger = self._context.ledgers[dataset.name]
        try:
            units = await read_units(self._context.api, dataset)
        except PermissionDenied as exc:
            self._deny(dataset, exc)
            return
        for day, reason in self._due[dataset.name]:
            log.info("%s %s: searching (%s)", dataset.name, day.isoformat(), reason)
            try:
                await self._search_date(dataset, ledger, units, day)
            except PermissionDenied as exc:
                self._deny(dataset, exc)
                return
            except ApiError as exc:  # retries spent: the next run searches the date again
                self._tally.failed.append(f"{dataset.name} {day.isoformat()}: {exc}")
                log.error("%s %s failed: %s", dataset.name, day.isoformat(), exc)
                await self._context.files.call(ledger.fail, [_item(day)], str(exc))

    def _deny(self, dataset: UnitDays, exc: PermissionDenied) -> None:
        self._tally.denied[dataset.name] = denied_message(dataset, exc)
        log.error("%s", self._tally.denied[dataset.name])

    async def _search_date(
        self, dataset: UnitDays, ledger: Ledger, units: list[tuple[str, str]], day: date
    ) -> None:
        """Search every unit's local day of ``day`` and commit the date's one file."""
        lines: list[bytes] = []
        clock = asyncio.get_running_loop().time
        for unit_id, zone in units:
            local = unit_day(unit_id, zone, day)
            result = await searches.search(self._context.api, _path(dataset, unit_id),
                                           dataset.body(local), self._context.settings.workforce,
                                           clock=clock)  # fmt: skip
            lines += dataset.lines(result, local)
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


async def read_units(api: ApiClient, dataset: UnitDays) -> list[tuple[str, str]]:
    """(id, Olson time zone) of every unit, listed then each read by id, in the listing's
    order; a unit deleted between the two is left out."""
    units, size = dataset.units, listing.PageSize(dataset.units.page_size)
    found: list[tuple[str, str]] = []
    async for page, _ in listing.pages(api, units.path, units.params, size=size,
                                       numbered=units.offset_paging, priority=0):  # fmt: skip
        for raw in page.entities:
            unit_id = orjson.loads(bytes(raw))["id"]
            body = await lookups.read_one(api, units, unit_id, units.by_id_params[:1], 0)
            if body is not None:
                found.append((unit_id, _zone(dataset, orjson.loads(body))))
    return found


def unit_day(unit_id: str, zone: str, day: date) -> UnitDay:
    """``day`` in the unit's time zone: from its midnight to the next, in UTC."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + DAY, time(), tz).astimezone(UTC)
    return UnitDay(unit_id, zone, day, start, end)


def due_dates(
    request: ExportRequest, manifest: Manifest, dataset: UnitDays
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


def _zone(dataset: UnitDays, unit: dict[str, Any]) -> str:
    zone = dataset.time_zone(unit)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApiError(
            f"{dataset.units.name} {unit.get('id')} has the time zone {zone!r}, which this "
            f"machine's time zone database does not know ({exc}); install tzdata (pip "
            "install tzdata, or the OS package) and run again."
        ) from exc
    return zone


def _path(dataset: UnitDays, unit_id: str) -> str:
    return dataset.path.replace("{id}", quote(unit_id, safe=""))


def _item(day: date) -> WorkItem:
    start = datetime.combine(day, time(), UTC)
    window = Window(start, start + DAY)
    return WorkItem(Slot(window, window), "fetch", "search", "searched per unit-day")


UNIT_DAYS = UnitDaysKind()
