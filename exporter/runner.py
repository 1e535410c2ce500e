"""One export from start to end: lock, connect, read the manifest, plan, run, sum up.

The lock is taken first and held for the whole run. The datasets asked for are grouped by
kind (``exporter.engine.kinds``); each kind checks the request, prepares its work, and the
works run side by side through the same client, pool, limiter and files thread. A dataset
the OAuth client may not read fails alone. Every outcome ends in a ``Summary``
(``exporter.summary``); the CLI prints it as the last line of stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.datasets import Dataset
from exporter.datasets.conversation_aggregates import CONVERSATION_AGGREGATES
from exporter.engine.kinds import RunContext, Work, by_kind
from exporter.engine.ledger import Ledger
from exporter.engine.scheduler import new_run_id
from exporter.engine.writer import FilesThread
from exporter.errors import ConfigError, ExportError, OutputError
from exporter.forget import export_eraser
from exporter.gdpr import Eraser
from exporter.org import claim_folder
from exporter.plan import ExportRequest
from exporter.privacy import PERSONAL_DIMENSIONS, Policy, check_folder
from exporter.progress import Progress
from exporter.store.lock import RunLock
from exporter.store.manifest import Manifest
from exporter.summary import Outcome, Summary, summarize

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stopper:
    """Lets a signal handler stop the run: no new work, open windows kept to resume."""

    requested: bool = False
    signal_name: str = ""
    _stop: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def attach(self, task: asyncio.Task[Any]) -> None:
        """Before any work starts, a stop cancels ``task`` (planning) at once."""
        self._stop = [lambda: _cancel(task)]

    def attach_work(self, *stops: Callable[[], None]) -> None:
        """Once work starts, a stop asks the work itself to end, keeping what it did."""
        self._stop = list(stops)
        if self.requested:
            self._fire()

    def stop(self, signal_name: str) -> None:
        if self.requested:
            return
        self.requested, self.signal_name = True, signal_name
        self._fire()

    def _fire(self) -> None:
        for stop in self._stop:
            stop()


async def export(
    settings: Settings,
    request: ExportRequest,
    *,
    progress: Progress,
    stopper: Stopper | None = None,
    estimate: bool = False,
    locked: bool = False,
) -> Summary:
    """Run one export and sum it up; errors become a Summary with their exit code.

    ``estimate``: count the records to fetch first (one cheap query per week), for progress.
    ``locked``: the caller holds the output folder's lock (``run``, for all its steps)."""
    began = time.monotonic()
    stopper = stopper or Stopper()
    outcome = Outcome(new_run_id())
    api: ApiClient | None = None
    error: ExportError | None = None
    try:
        out = settings.output.out_dir
        await asyncio.to_thread(make_output_dir, out)
        lock = contextlib.nullcontext() if locked else RunLock(out, outcome.run_id)
        with lock:
            async with ApiClient(settings.connection, settings.http) as api:
                await _export(api, settings, request, progress, stopper, outcome, estimate)
    except asyncio.CancelledError:
        if not stopper.requested:
            raise
        _uncancel()
    except ExportError as exc:
        error = exc
    except BaseExceptionGroup as group:
        error = _first_error(group)
    finally:
        progress.close()
    stats = api.statistics() if api is not None else None
    stopped_by = stopper.signal_name if stopper.requested else None
    return summarize(outcome, stopped_by, error, stats, time.monotonic() - began)


async def _export(
    api: ApiClient,
    settings: Settings,
    request: ExportRequest,
    progress: Progress,
    stopper: Stopper,
    outcome: Outcome,
    estimate: bool,
) -> None:
    manifest = outcome.manifest = await asyncio.to_thread(Manifest.load, settings.output.out_dir)
    policy = _privacy(settings, request, manifest)
    groups = by_kind(request.datasets)
    outcome.dated = [d.name for kind, datasets in groups if kind.dated for d in datasets]
    for kind, datasets in groups:  # a range that cannot be planned fails before any request
        kind.check(request, manifest, datasets)
    await claim_folder(api, settings.connection, manifest)
    if manifest.privacy != policy.record():  # a new folder takes the run's profile
        manifest.privacy = policy.record()
        await asyncio.to_thread(manifest.save)
    eraser = await export_eraser(api, settings, manifest)
    ledgers = _ledgers(manifest, settings, outcome.run_id, request.datasets, policy, eraser)
    files = FilesThread()
    try:
        context = RunContext(settings, request, api, manifest, files, ledgers, progress,
                             now=datetime.now(UTC))  # fmt: skip
        staged = [(kind.stage, await kind.prepare(context, datasets)) for kind, datasets in groups]
        works = outcome.works = [work for _, work in staged]
        windows = sum(w.windows for w in works)
        expected = await _expected_records(works) if estimate and windows else None
        progress.start(records=expected, windows=windows,
                       done=sum(w.resumed_records for w in works))  # fmt: skip
        outcome.started = any(w.busy for w in works)
        stopper.attach_work(*(work.stop for work in works))
        for stage in sorted({stage for stage, _ in staged}):
            async with asyncio.TaskGroup() as group:
                for work in (work for at, work in staged if at == stage):
                    group.create_task(work.run())
    finally:
        files.close()  # even work whose await was cancelled is done after this


def _ledgers(
    manifest: Manifest,
    settings: Settings,
    run_id: str,
    datasets: tuple[Dataset, ...],
    policy: Policy,
    eraser: Eraser | None,
) -> dict[str, Ledger]:
    compression = settings.output.compression
    return {
        d.name: Ledger(
            manifest,
            d.name,
            run_id=run_id,
            compression=compression,
            protect=_protection(eraser, policy.for_dataset(d.name)),
        )
        for d in datasets
    }


def _protection(
    eraser: Eraser | None, protect: Callable[[bytes], bytes] | None
) -> Callable[[bytes], bytes] | None:
    """What each record goes through before it is written: the GDPR deletions' erasure first
    (on the values as the API sent them), then the privacy profile."""
    if eraser is None:
        return protect
    if protect is None:
        return eraser.protect
    erase = eraser.protect
    return lambda record: protect(erase(record))


def _privacy(settings: Settings, request: ExportRequest, manifest: Manifest) -> Policy:
    """The run's privacy policy, refused (exit 2) before anything is written when it lacks its
    key, would group aggregates by personal data, or is not the one the folder was written
    with (a folder with no windows yet takes any)."""
    policy = settings.privacy_policy()
    aggregated = any(d.name == CONVERSATION_AGGREGATES.name for d in request.datasets)
    personal = sorted(set(settings.aggregates.group_by) & PERSONAL_DIMENSIONS)
    if policy.active and aggregated and personal:
        raise ConfigError(
            f"[aggregates] group_by names {', '.join(personal)}, personal data that the privacy "
            f"profile {policy.profile!r} keeps out of every file; group by other dimensions or "
            "export conversation-aggregates with --privacy none into another --out."
        )
    if manifest.datasets():
        check_folder(manifest.privacy, policy, manifest.out_dir)
    return policy


async def _expected_records(works: list[Work]) -> int | None:
    """The records every kind expects to fetch, when each can tell (for progress)."""
    counts = [await work.expected_records() for work in works]
    return None if None in counts else sum(c for c in counts if c is not None)


def make_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot create the output folder {path} ({exc.strerror}); choose another --out or "
            "fix its permissions."
        ) from exc


def _first_error(group: BaseExceptionGroup[BaseException]) -> ExportError:
    leaves = list(_leaves(group))
    for exc in leaves:
        if isinstance(exc, ExportError):
            return exc
    raise group  # a bug, not an export error: let it show


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        elif not isinstance(exc, asyncio.CancelledError):
            found.append(exc)
    return found


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
