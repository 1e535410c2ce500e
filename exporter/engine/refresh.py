"""Records still going on when their window was written, refreshed in place until they close.

A conversation with no ``conversationEnd`` (messaging and e-mail stay open for days) or a status
with no ``endTime`` (an agent's current one, a leaver's last OFFLINE) is tracked in the
manifest by its key, in the window whose file holds it. Each run, for every window the run
does not fetch anyway, the records tracked there are read again by details jobs filtered by
their ids (one job per ``jobs.open_refresh_ids`` of them, over the span of their starts), so
the cost follows the open records, not the days they sit in. A window where one of them came
back closed is written again, with the newest version of each, through a part file of its own
and renamed into place; then its manifest record and its open records are updated: a closed
record is no longer tracked. A record still open ``jobs.open_horizon`` after it began is treated
as closed: no longer tracked, and reported. A refresh that fails leaves everything tracked for
the next run.

Refresh requests take their turns like job pages, and the file work runs in the export's one
files thread, one whole window per call, so a stop or a kill never leaves half a rewrite.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from exporter.client.http import ApiClient
from exporter.config import JobSettings
from exporter.datasets.base import Fresh, Windowed, denied_message
from exporter.engine import jobs
from exporter.engine.ledger import Ledger
from exporter.engine.writer import FilesThread
from exporter.errors import ApiError, PermissionDenied
from exporter.store.jsonl import Compression, JsonlFile, in_pages, read_records
from exporter.store.manifest import Opened, instant_ms
from exporter.windows import EPOCH, Window

log = logging.getLogger(__name__)
_MS = timedelta(milliseconds=1)

Tracked = dict[str, dict[str, Opened]]  # window -> key -> record still going on


@dataclass(slots=True)
class OpenCounts:
    """What one dataset's refresh did."""

    refreshed: int = 0  # tracked records asked for again
    closed: int = 0  # came back closed: written in their windows, no longer tracked
    expired: int = 0  # open longer than the horizon: treated as closed, no longer tracked
    windows: int = 0  # window files written again
    failed: str = ""  # why the refresh did not run (everything stays tracked)


class Refresher:
    """Refreshes the open records of the windows each dataset does not fetch this run."""

    def __init__(
        self,
        api: ApiClient,
        files: FilesThread,
        settings: JobSettings,
        ledgers: Mapping[str, Ledger],
        *,
        now: datetime,
    ) -> None:
        self._api = api
        self._files = files
        self._settings = settings
        self._ledgers = ledgers
        self._now = now
        self.counts: dict[str, OpenCounts] = {}
        self.denied: dict[str, str] = {}

    async def run(self, work: Sequence[tuple[Windowed, frozenset[str]]]) -> None:
        """Refresh each dataset's open records outside the windows named with it."""
        async with asyncio.TaskGroup() as group:
            for dataset, fetched in work:
                group.create_task(self._refresh_or_report(dataset, fetched))

    async def _refresh_or_report(self, dataset: Windowed, fetched: frozenset[str]) -> None:
        counts = self.counts.setdefault(dataset.name, OpenCounts())
        try:
            await self._refresh(dataset, fetched, counts)
        except PermissionDenied as exc:
            self.denied[dataset.name] = denied_message(dataset, exc)
            counts.failed = str(exc)
        except (ApiError, jobs.JobStalled) as exc:  # retries spent, a job that failed or
            counts.failed = str(exc)  # never finished: the next run tries again
            log.warning("%s: open records not refreshed this run (%s); they stay tracked",
                        dataset.name, exc)  # fmt: skip

    async def _refresh(
        self, dataset: Windowed, fetched: frozenset[str], counts: OpenCounts
    ) -> None:
        ledger = self._ledgers[dataset.name]
        tracked = {
            w: r for w, r in ledger.manifest.opened(dataset.name).items() if w not in fetched
        }
        live, expired = _split(tracked, self._now - self._settings.open_horizon)
        if expired:
            counts.expired = sum(len(records) for records in expired.values())
            await self._files.call(_forget, ledger, tracked, expired)
            self._report_expired(dataset, expired)
        wanted = [record for records in live.values() for record in records.values()]
        if wanted:
            log.debug("%s: refreshing %d open records in %d windows", dataset.name, len(wanted),
                      len(live), extra={"dataset": dataset.name})  # fmt: skip
        fresh: dict[str, Fresh] = {}
        for chunk in _chunks(wanted, self._settings.open_refresh_ids):
            fresh.update(await self._read(dataset, chunk))
        counts.refreshed = len(wanted)
        for window, records in live.items():
            found = {key: fresh[key] for key in records if key in fresh}
            if found:
                await self._files.call(
                    self._rewrite, ledger, dataset, window, records, found, counts
                )

    def _report_expired(self, dataset: Windowed, expired: Tracked) -> None:
        keys = sorted(key for records in expired.values() for key in records)
        log.warning(
            "%s: %d records still going on %s after they began are treated as closed and no "
            "longer refreshed (first: %s); raise jobs.open_horizon to follow them longer",
            dataset.name, len(keys), _days(self._settings.open_horizon), keys[0],
        )  # fmt: skip

    async def _read(self, dataset: Windowed, chunk: list[Opened]) -> dict[str, Fresh]:
        """One job for the chunk's subjects over the span of their starts: the newest
        versions of the chunk's records (others of the same subjects are dropped)."""
        times = [instant_ms(record.time) for record in chunk]
        span = Window(EPOCH + min(times) * _MS, EPOCH + (max(times) + 1) * _MS)
        subjects = sorted({record.subject for record in chunk})
        wanted = {record.key for record in chunk}
        family, settings = dataset.api, self._settings
        assert family.refresh_body is not None, f"{dataset.name} keeps no records open"
        job_id = await jobs.submit_body(self._api, family, family.refresh_body(span, subjects))
        log.debug("%s: submitted refresh job %s over %s for %d records", dataset.name, job_id,
                  span.interval, len(chunk), extra={"dataset": dataset.name, "job_id": job_id,
                                                   "interval": span.interval})  # fmt: skip
        found: dict[str, Fresh] = {}
        try:
            await jobs.wait_fulfilled(
                self._api, family, job_id, first_poll_s=settings.poll_initial_s,
                max_poll_s=settings.poll_max_s, timeout_s=settings.job_timeout_s,
                given_up=lambda: False,  # its own job: a refresh is tried again next run
            )  # fmt: skip
            pages = jobs.job_pages(
                self._api, family, job_id, page_size=settings.page_size, cursor=None,
                span=span, time_ms=dataset.router.time_ms,
            )  # fmt: skip
            async for page, single_line in pages:
                found.update(dataset.router.fresh(page.records, wanted, single_line=single_line))
        finally:
            await jobs.delete_quietly(self._api, family, job_id)
        return found

    def _rewrite(
        self,
        ledger: Ledger,
        dataset: Windowed,
        window: str,
        tracked: dict[str, Opened],
        fresh: dict[str, Fresh],
        counts: OpenCounts,
    ) -> None:
        """Once a record of the window has closed, write the window again with the fresh
        versions of every refreshed record, then record its new digest and the records in it
        still going on. In the files thread.

        A window whose records are all still going on is left as it is: writing a day file
        again costs reading and writing all of it, so it is done once a record is final, not
        each time an open one grows a segment."""
        still_open = {
            key: o for key, o in tracked.items() if key not in fresh or fresh[key].still_open
        }
        record = ledger.manifest.get(dataset.name, window)
        if len(still_open) == len(tracked) or record is None or record.file is None:
            return  # nothing closed, or the window left the manifest meanwhile
        path = ledger.manifest.out_dir / record.file
        protect = ledger.protect or bytes  # the privacy profile's, as every record written
        bodies = {key: protect(f.body) for key, f in fresh.items()}
        merged = (dataset.router.merge(line, bodies) for line in read_records(path))
        file = JsonlFile(path, cast(Compression, record.compression))  # checked on load
        digest = file.commit_instead(in_pages(merged))
        counts.windows += 1
        counts.closed += len(tracked) - len(still_open)
        ledger.refreshed(record, digest, still_open)
        log.debug("%s %s: written again, %d of its open records closed", dataset.name, window,
                  len(tracked) - len(still_open), extra={"dataset": dataset.name,
                                                         "window": window})  # fmt: skip


def _split(tracked: Tracked, oldest: datetime) -> tuple[Tracked, Tracked]:
    """(records that began at ``oldest`` or later, the rest), each by window."""
    edge = (oldest - EPOCH) // _MS
    live: Tracked = {}
    expired: Tracked = {}
    for window, records in tracked.items():
        for key, record in records.items():
            into = live if instant_ms(record.time) >= edge else expired
            into.setdefault(window, {})[key] = record
    return live, expired


def _forget(ledger: Ledger, tracked: Tracked, expired: Tracked) -> None:
    """Stop tracking the expired records of each window."""
    for window, gone in expired.items():
        ledger.track(window, {k: r for k, r in tracked[window].items() if k not in gone})
    ledger.manifest.save()


def _chunks(records: list[Opened], subjects: int) -> Iterator[list[Opened]]:
    """The records in groups of at most ``subjects`` distinct subjects, in time order."""
    chunk: list[Opened] = []
    seen: set[str] = set()
    for record in sorted(records, key=lambda r: (r.time, r.key)):
        if record.subject not in seen and len(seen) == subjects:
            yield chunk
            chunk, seen = [], set()
        chunk.append(record)
        seen.add(record.subject)
    if chunk:
        yield chunk


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days and not span.seconds else str(span)
