"""``genesys-export run``: one unattended pass from Genesys Cloud to tables, under one lock.

The steps, in order, each reported in the one summary: **export** (``--since-last`` from
``[export] start`` on a folder with no window yet, with the lookback), **forget** (when
``[forget] enabled``: the org's GDPR deletions not yet applied are erased from every file),
**prune** (when
``[retention] keep`` is set: the windows older than that go, and the build that follows drops
their rows), **tables** (an incremental build), then **publish** (when ``[publish]`` says
where: the days changed since the last publish there; only after a build that succeeded, so
it never ships what a failed build left). The folder's lock is taken once and held for every
step, so nothing else writes between them. A step that fails does not hide the others' work:
the tables are built from whatever the export committed, unless the export ended the run
(bad input, a stop). The run's exit code is the worst step's, in the order ``WORST_FIRST``.

A stop (SIGTERM, SIGINT) reaches the step running: the export keeps its work as an export's
stop does, the build leaves the tables as they were, a forget ends before it swaps
any file (or, once swapping, after the last), the publish ends after the day it is
committing (every day whole, old or new; the next publish finishes), a prune finishes (it
is short, and its order is kill-safe); the steps not begun are marked interrupted, and the
run exits 130.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter.config import Settings
from exporter.engine.scheduler import new_run_id
from exporter.errors import ExportError, Interrupted
from exporter.forget import forget
from exporter.plan import ExportRequest
from exporter.progress import Progress
from exporter.prune import PruneRequest, prune
from exporter.publish import PublishRequest, PublishSummary, publish_tables
from exporter.runner import Stopper, export, make_output_dir
from exporter.store.lock import RunLock
from exporter.store.manifest import MANIFEST_NAME
from exporter.summary import Summary
from exporter.tables import BuildSummary, Stop, TablesRequest

# Exit codes from worst to mildest: a stopped run first (the user asked), then what needs a
# person (bad input, credentials), a failed window, a service out of reach, "run again later".
WORST_FIRST = (130, 2, 3, 1, 5, 4, 75, 0)
STEPS = ("export", "forget", "prune", "tables", "publish")
# Export exits that end the run: nothing to build from (bad input), or the user stopped it.
ENDS_RUN = (2, 130)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What ``run`` does: the export of the configured range, the prune of what is older than
    ``[retention] keep`` (None: no prune), the build, then the publish (None: none)."""

    export: ExportRequest
    tables: TablesRequest
    prune: PruneRequest | None = None
    publish: PublishRequest | None = None
    forget: bool = False  # [forget] enabled: apply the org's new GDPR deletions


@dataclass(slots=True)
class RunStop:
    """A stop a signal handler asks for, passed to the step that is running."""

    export: Stopper = field(default_factory=Stopper)
    forget: Stop = field(default_factory=Stop)
    tables: Stop = field(default_factory=Stop)
    publish: Stop = field(default_factory=Stop)
    step: str = ""
    signal_name: str = ""

    @property
    def requested(self) -> bool:
        return bool(self.signal_name)

    def stop(self, signal_name: str) -> None:
        """In the event loop's thread (``loop.add_signal_handler``)."""
        self.signal_name = self.signal_name or signal_name
        if self.step == "export":
            self.export.stop(signal_name)
        elif self.step == "forget":
            self.forget.request()  # checked between files: none is swapped after it
        elif self.step == "tables":
            self.tables.request()  # safe from any thread: a flag and DuckDB's interrupt
        elif self.step == "publish":
            self.publish.request()  # checked between days: the day being committed ends first


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one run did, step by step; ``as_json`` is the CLI's last line."""

    status: str
    exit_code: int
    steps: dict[str, dict[str, Any]]
    seconds: float
    export: Summary | None = None  # the export step's own summary (metrics come from it)
    tables: BuildSummary | None = None
    published: PublishSummary | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


async def run(
    settings: Settings,
    request: RunRequest,
    *,
    progress: Progress,
    stop: RunStop | None = None,
    estimate: bool = False,
) -> RunSummary:
    """Export, then build the tables, under the folder's lock; every outcome is a summary
    (a refused lock too: exit 75, nothing done)."""
    began = time.monotonic()
    stop = stop or RunStop()
    out = settings.output.out_dir
    try:
        await asyncio.to_thread(make_output_dir, out)
        with RunLock(out, new_run_id()):
            return await _steps(settings, request, progress, stop, estimate, began)
    except ExportError as exc:  # the folder cannot be made or locked: no step began
        progress.close()
        steps = {name: _skipped("no step began") for name in STEPS}
        return RunSummary(exc.summary_status, exc.exit_code, steps,
                          time.monotonic() - began, error=str(exc))  # fmt: skip


async def _steps(
    settings: Settings,
    request: RunRequest,
    progress: Progress,
    stop: RunStop,
    estimate: bool,
    began: float,
) -> RunSummary:
    task = asyncio.current_task()
    assert task is not None
    stop.export.attach(task)
    stop.step = "export"
    exported = await export(
        settings, request.export, progress=progress, stopper=stop.export, estimate=estimate,
        locked=True,
    )  # fmt: skip
    steps: dict[str, dict[str, Any]] = {"export": exported.as_json()}
    blocked = _blocked_by_export(exported, settings)
    if request.forget:
        steps["forget"] = await _step("forget", stop, _forget(settings, stop), blocked)
    if request.prune is not None:
        steps["prune"] = await _step("prune", stop, _prune(request.prune), blocked)
    built: BuildSummary | None = None

    async def build() -> dict[str, Any]:
        nonlocal built
        built, section = await _build(request.tables, stop)
        return section

    steps["tables"] = await _step("tables", stop, build(), blocked)
    published: PublishSummary | None = None

    async def publish(chosen: PublishRequest) -> dict[str, Any]:
        nonlocal published
        published, section = await _publish(chosen, stop)
        return section

    if request.publish is not None:
        tables = steps["tables"]  # built or up to date: a publish left behind catches up
        ready = tables["exit_code"] == 0 and tables["status"] != "skipped"
        unbuilt = None if ready else f"the tables were not built ({tables['status']})"
        steps["publish"] = await _step("publish", stop, publish(request.publish), unbuilt)
    stop.step = ""
    status, code, error = _verdict(steps)
    return RunSummary(status, code, steps, time.monotonic() - began, export=exported,
                      tables=built, published=published, error=error)  # fmt: skip


def _blocked_by_export(exported: Summary, settings: Settings) -> str | None:
    """Why the steps after the export cannot run, if they cannot."""
    if exported.exit_code in ENDS_RUN:
        return "the export ended the run"
    if not (settings.output.out_dir / MANIFEST_NAME).is_file():
        return "nothing exported"
    return None


async def _step(
    name: str, stop: RunStop, work: Coroutine[Any, Any, dict[str, Any]], blocked: str | None
) -> dict[str, Any]:
    """Run a step after the export, or say why it did not run: a stop (exit 130), or what
    ``blocked`` it (skipped)."""
    if stop.requested or blocked:
        work.close()
        if not stop.requested:
            return _skipped(blocked or "")
        return {"status": Interrupted.summary_status, "exit_code": Interrupted.exit_code,
                "reason": f"stopped by {stop.signal_name} before it began"}  # fmt: skip
    stop.step = name
    return await work


async def _publish(
    request: PublishRequest, stop: RunStop
) -> tuple[PublishSummary | None, dict[str, Any]]:
    try:
        published = await asyncio.to_thread(publish_tables, request, stop=stop.publish,
                                            locked=True)  # fmt: skip
    except ExportError as exc:
        return None, _failed(exc)
    return published, published.as_json()


async def _forget(settings: Settings, stop: RunStop) -> dict[str, Any]:
    try:
        forgotten = await forget(settings, stop=stop.forget)
    except ExportError as exc:
        return _failed(exc)
    return forgotten.as_json()


async def _prune(request: PruneRequest) -> dict[str, Any]:
    try:
        pruned = await asyncio.to_thread(prune, request, now=datetime.now(UTC))
    except ExportError as exc:
        return _failed(exc)
    return pruned.as_json()


async def _build(
    request: TablesRequest, stop: RunStop
) -> tuple[BuildSummary | None, dict[str, Any]]:
    from exporter.tables.build import build_tables  # DuckDB, only once the build runs

    try:
        built = await asyncio.to_thread(build_tables, request, stop=stop.tables,
                                        locked=True)  # fmt: skip
    except ExportError as exc:
        return None, _failed(exc)
    return built, built.as_json()


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "exit_code": 0, "reason": reason}


def _failed(exc: ExportError) -> dict[str, Any]:
    return {"status": exc.summary_status, "exit_code": exc.exit_code, "error": str(exc)}


def _verdict(steps: dict[str, dict[str, Any]]) -> tuple[str, int, str | None]:
    """(status, exit code, errors): the worst step's code and status, each failing step's
    error named by its step."""
    worst = min((step["exit_code"] for step in steps.values()), key=WORST_FIRST.index)
    if worst == 0:
        return "ok", 0, None
    status = next(step["status"] for step in steps.values() if step["exit_code"] == worst)
    errors = [f"{name}: {step['error']}" for name, step in steps.items() if step.get("error")]
    return status, worst, "; ".join(errors) or None
