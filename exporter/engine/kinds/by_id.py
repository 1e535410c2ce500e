"""The by-id kind: records the API cannot list by date, read one at a time by the ids that
another dataset's windows name (evaluations and surveys, by the conversations that had them).

It runs after the kinds that fetch from the API alone (``stage`` 1), so it reads the source
windows this run committed. A window is read when ``plan.read_again`` says so: never read,
its source changed, or its records may still be edited. Its records are fetched with at most
``http.concurrency`` requests in flight, written sorted by key, and the window committed as
one file naming the source file it came from. A record the API no longer has (404) is left
out. A window whose reads fail is recorded failed and read again by the next run; the others
go on. A stop lets no new window start and drops the one being read (its file is never
committed half).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import ById, Ref, denied_message
from exporter.engine.kinds.base import PlanContext, PlanLine, Preview, RunContext, Tally
from exporter.engine.ledger import Ledger
from exporter.errors import ApiError, OutputError, PermissionDenied
from exporter.plan import ExportRequest, WorkItem, ms_instant, read_again
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest, WindowRecord
from exporter.windows import Slot, Window

log = logging.getLogger(__name__)
_READABLE = ("complete", "provisional")
# Asked for to show the permission without reading a record: a 403 still says what is missing.
_NO_SUCH_ID = "00000000-0000-0000-0000-000000000000"


class ByIdKind:
    word = "by-id"
    ranged = False
    dated = True
    stage = 1  # reads the windows the other kinds write

    def endpoint(self, dataset: ById) -> str:
        return dataset.endpoint

    async def reach(self, api: ApiClient, dataset: ById) -> str:
        """A read of an id that does not exist: 403 says the permission is missing, 404 that
        reads are allowed. (Whether the service checks the permission before the id is
        UNVERIFIED; a 404 before the check would report a denied client as allowed.)"""
        path = dataset.path.format_map(_Every(_NO_SUCH_ID))
        try:
            await api.request("GET", path, parse=len)
        except ApiError as exc:
            if exc.status != 404:
                raise
        return f"readable, by the ids in {dataset.source.name}"

    def check(self, request: ExportRequest, manifest: Manifest, datasets: Sequence[ById]) -> None:
        """Reads need no range: they follow the source's windows."""

    async def preview(self, context: PlanContext, datasets: Sequence[ById]) -> Preview:
        """Each window due, with the records its source names (one request each), counted
        from the source files on disk (as they are before this run's fetch)."""
        lines = []
        for dataset in datasets:
            for source, reason in _due(context, dataset, datetime.now(UTC)):
                refs = await asyncio.to_thread(_refs, context.manifest, dataset, source)
                lines.append(PlanLine(dataset.name, source.name, "fetch", "ids", reason,
                                      len(refs), len(refs)))  # fmt: skip
        return Preview(tuple(lines))

    async def prepare(self, context: RunContext, datasets: Sequence[ById]) -> ByIdWork:
        return ByIdWork(context, list(datasets))


class ByIdWork:
    """The by-id datasets' reads in one run, each dataset's windows one after another."""

    def __init__(self, context: RunContext, datasets: list[ById]) -> None:
        self._context = context
        self._datasets = datasets
        self._in_flight = asyncio.Semaphore(context.settings.http.concurrency)
        self._stopped = False
        self._task: asyncio.Task[object] | None = None
        self._tally = Tally()

    @property
    def windows(self) -> int:
        return 0  # known only once the other kinds have committed their windows

    @property
    def resumed_records(self) -> int:
        return 0

    @property
    def busy(self) -> bool:
        return bool(self._datasets)

    async def expected_records(self) -> int | None:
        return 0

    async def run(self) -> None:
        if self._stopped:
            return
        self._task = asyncio.current_task()
        now = self._context.now
        async with asyncio.TaskGroup() as group:
            for dataset in self._datasets:
                group.create_task(self._read_dataset(dataset, now))

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def tally(self) -> Tally:
        return self._tally

    async def _read_dataset(self, dataset: ById, now: datetime) -> None:
        due = list(_due(self._context, dataset, now))
        gone = 0  # ids the API no longer has
        self._tally.skipped += _readable(self._context.manifest, dataset.source.name) - len(due)
        ledger = self._context.ledgers[dataset.name]
        for source, reason in due:
            log.info("%s %s: reading (%s)", dataset.name, source.name, reason)
            try:
                gone += await self._read_window(dataset, ledger, source)
            except PermissionDenied as exc:
                self._tally.denied[dataset.name] = denied_message(dataset, exc)
                log.error("%s", self._tally.denied[dataset.name])
                return
            except ApiError as exc:  # retries spent: the next run reads the window again
                reason = str(exc)
                self._tally.failed.append(f"{dataset.name} {source.name}: {reason}")
                log.error("%s %s failed: %s", dataset.name, source.name, reason)
                await self._context.files.call(ledger.fail, [_item(source)], reason)
        if gone:
            log.info("%s: %d ids named by %s are gone from the API", dataset.name, gone,
                     dataset.source.name)  # fmt: skip

    async def _read_window(self, dataset: ById, ledger: Ledger, source: WindowRecord) -> int:
        """Read and commit one window; how many of the ids its source names are gone."""
        files = self._context.files
        refs = await files.call(_refs, self._context.manifest, dataset, source)
        bodies: dict[str, bytes] = {}
        try:
            async with asyncio.TaskGroup() as group:
                for ref in refs:
                    group.create_task(self._fetch(dataset, ref, bodies))
        except* PermissionDenied as denied:  # the first says it for all: one error, not a group
            raise denied.exceptions[0] from None
        except* ApiError as failed:
            raise failed.exceptions[0] from None
        item = _item(source)
        file = ledger.sink(ledger.path_of(item))
        await files.call(file.create)
        try:
            await files.call(file.append, [bodies[key] for key in sorted(bodies)])
            digest = await files.call(file.commit)
        except BaseException:
            with contextlib.suppress(OSError):
                await files.call(file.discard)
            raise
        provisional = source.status == "provisional"
        await files.call(ledger.commit_read, item, digest, provisional=provisional,
                         derived_from=source.sha256)  # fmt: skip
        return len(refs) - len(bodies)

    async def _fetch(self, dataset: ById, ref: Ref, bodies: dict[str, bytes]) -> None:
        path = dataset.path.format_map({k: quote(v, safe="") for k, v in ref.values})
        async with self._in_flight:
            try:
                bodies[ref.key] = await self._context.api.request("GET", path, parse=_one_line)
            except ApiError as exc:
                if exc.status != 404:
                    raise


def _due(context: PlanContext, dataset: ById, now: datetime) -> Iterator[tuple[WindowRecord, str]]:
    """The source windows whose window of ``dataset`` must be read, and why; within the
    request's range when it names one (no --since-last), else all of them up to its end."""
    request, manifest = context.request, context.manifest
    settings = context.settings.lookups
    end_ms = int(request.end.timestamp() * 1000)
    start_ms = None
    if request.start is not None and not request.since_last:
        start_ms = int(request.start.timestamp() * 1000)
    for source in manifest.records(dataset.source.name):
        if source.status not in _READABLE or source.start_ms >= end_ms:
            continue
        if start_ms is not None and source.end_ms <= start_ms:
            continue
        own = manifest.get(dataset.name, source.name)
        why = read_again(source, own, now=now, edited_within=settings.edited_within,
                         every=settings.every)  # fmt: skip
        if why is not None:
            yield source, why


def _readable(manifest: Manifest, name: str) -> int:
    return sum(r.status in _READABLE for r in manifest.records(name))


def _refs(manifest: Manifest, dataset: ById, source: WindowRecord) -> list[Ref]:
    """The records the source window's file names, each once, in the order first named."""
    if source.file is None:
        return []
    found: dict[str, Ref] = {}
    try:
        for line in read_records(manifest.out_dir / source.file):
            for ref in dataset.refs(line):
                found.setdefault(ref.key, ref)
    except OSError as exc:
        raise OutputError(
            f"{dataset.name}: cannot read {source.file} for the ids it names ({exc}); "
            "export that window again (--force) or restore the file."
        ) from exc
    return list(found.values())


def _item(source: WindowRecord) -> WorkItem:
    window = Window(ms_instant(source.start_ms), ms_instant(source.end_ms))
    return WorkItem(Slot(window, window), "fetch", "ids", "read by ids")


def _one_line(body: bytes) -> bytes:
    """The record as sent, on one line; ValueError (a cut-short body, retried) when it is not
    one JSON object."""
    record = orjson.loads(body)
    if not isinstance(record, dict):
        raise ValueError(f"a {type(record).__name__}, not a JSON object")
    return body if b"\n" not in body else orjson.dumps(record)


class _Every(dict[str, str]):
    """Fills every placeholder of a path with one value."""

    def __init__(self, value: str) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, key: str) -> str:
        return self.value


BY_ID = ByIdKind()
