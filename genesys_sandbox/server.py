"""Running the sandbox: ``Sandbox`` in the caller's event loop, or ``run_sandbox_in_thread`` with
its own loop in a background thread (for sync code, subprocesses and the official SDK)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from genesys_sandbox import conversation_aggregates as aggregates
from genesys_sandbox.app import SandboxApp
from genesys_sandbox.clock import SandboxClock
from genesys_sandbox.data import Dataset, DatasetSpec, to_ms
from genesys_sandbox.quality_routes import QualityView
from genesys_sandbox.settings import FaultRule, SandboxSettings
from genesys_sandbox.state import SandboxState
from genesys_sandbox.stats import SandboxStats

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListingTruth:
    """Which ids a listing held over an interval: during all of it, and at some instant of it.

    A correct snapshot taken over the interval holds every id of ``present_throughout``, and
    nothing outside ``ever_present``."""

    present_throughout: frozenset[str]
    ever_present: frozenset[str]


@dataclass(frozen=True, slots=True)
class QualityTruth:
    """What the records of conversations starting in an interval carry at one instant: each
    evaluation's id and version (1 + its re-reviews so far), and the survey ids."""

    evaluations: Mapping[str, int]
    surveys: frozenset[str]


# Datasets up to this size are memoised: test suites start many sandboxes over the same spec.
CACHED_DATASET_MAX = 50_000
SHUTDOWN_TIMEOUT_S = 0.5


@functools.lru_cache(maxsize=8)
def _cached_dataset(spec: DatasetSpec) -> Dataset:
    return Dataset.build(spec)


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Build the dataset of ``spec`` (small ones once per process; a Dataset is immutable)."""
    if spec.conversations <= CACHED_DATASET_MAX:
        return _cached_dataset(spec)
    return Dataset.build(spec)


class Sandbox:
    """The emulator listening on ``settings.host:settings.port`` inside the running event loop.

    ``clock`` replaces ``loop.time`` as the source of token, rate-window, job and availability
    time, so tests can move time instead of sleeping (see ``clock.ManualClock``).
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._initial = settings or SandboxSettings()
        self._clock_source = clock
        self._state: SandboxState | None = None
        self._quality: QualityView | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Sandbox:
        dataset = await asyncio.to_thread(load_dataset, self._initial.dataset)
        source = self._clock_source or asyncio.get_running_loop().time
        self._state = SandboxState(self._initial, dataset, SandboxClock(source))
        self._quality = QualityView(self._state)
        app = SandboxApp(self._state).build()
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._initial.host, self._initial.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{_url_host(host)}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state is not None:
            self._state.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def state(self) -> SandboxState:
        if self._state is None:
            raise RuntimeError("The sandbox is not running; use it as `async with Sandbox(...)`.")
        return self._state

    @property
    def settings(self) -> SandboxSettings:
        return self.state.settings

    @property
    def dataset(self) -> Dataset:
        return self.state.dataset

    @property
    def client_id(self) -> str:
        return self.state.settings.client_id

    @property
    def client_secret(self) -> str:
        return self.state.settings.client_secret

    def stats(self) -> SandboxStats:
        return self.state.snapshot()

    def reset_stats(self) -> None:
        self.state.stats.reset()

    def add_fault(self, rule: FaultRule) -> None:
        self.state.add_fault(rule)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def revoke_tokens(self) -> None:
        self.state.revoke_tokens()

    def update(self, **changes: Any) -> SandboxSettings:
        """``dataclasses.replace`` on the live settings (dataset, host and port are fixed)."""
        return self.state.update(**changes)

    def now(self) -> float:
        """The sandbox clock's instant, as listing truth and drift history count time."""
        return self.state.clock.now()

    def listing_truth(self, route: str, t0: float, t1: float) -> ListingTruth:
        """Ground truth of a drifting listing over [t0, t1] (sandbox clock, see ``now``)."""
        collection = self.state.listings[route]
        return ListingTruth(
            frozenset(collection.present_throughout(t0, t1)),
            frozenset(collection.ever_present(t0, t1)),
        )

    def evaluation(
        self, evaluation_id: str, at: float | None = None, expand: frozenset[str] = frozenset()
    ) -> dict[str, Any] | None:
        """The EvaluationResponse its route answers at sandbox instant ``at`` (default now),
        with ``expand``; None where it answers 404."""
        return self._view().evaluation(evaluation_id, at=at, expand=expand)

    def survey(self, survey_id: str) -> dict[str, Any] | None:
        """The Survey its route answers now; None where it answers 404."""
        return self._view().survey(survey_id)

    def quality_truth(
        self, start: datetime, end: datetime, at: float | None = None
    ) -> QualityTruth:
        """The evaluations (with versions) and surveys that the records of conversations
        starting in [start, end) carry at sandbox instant ``at`` (default now)."""
        evaluations, surveys = self._view().truth(to_ms(start), to_ms(end), at)
        return QualityTruth(evaluations, frozenset(surveys))

    def aggregate_truth(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The default aggregates request's figures over [start, end), one entry per group,
        half hour and metric (``conversation_aggregates.truth``)."""
        return aggregates.truth(self.state, to_ms(start), to_ms(end))

    def _view(self) -> QualityView:
        if self._quality is None:
            raise RuntimeError("The sandbox is not running; use it as `async with Sandbox(...)`.")
        return self._quality


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class ThreadedSandbox:
    """The ``Sandbox`` API for code outside the sandbox's loop: each call runs in that loop."""

    def __init__(self, sandbox: Sandbox, loop: asyncio.AbstractEventLoop) -> None:
        self._sandbox = sandbox
        self._loop = loop
        self.url = sandbox.url
        self.dataset = sandbox.dataset

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result()

    @property
    def settings(self) -> SandboxSettings:
        return self._call(lambda: self._sandbox.settings)

    @property
    def client_id(self) -> str:
        return self._call(lambda: self._sandbox.client_id)

    @property
    def client_secret(self) -> str:
        return self._call(lambda: self._sandbox.client_secret)

    def stats(self) -> SandboxStats:
        return self._call(self._sandbox.stats)

    def reset_stats(self) -> None:
        self._call(self._sandbox.reset_stats)

    def add_fault(self, rule: FaultRule) -> None:
        self._call(self._sandbox.add_fault, rule)

    def clear_faults(self) -> None:
        self._call(self._sandbox.clear_faults)

    def revoke_tokens(self) -> None:
        self._call(self._sandbox.revoke_tokens)

    def update(self, **changes: Any) -> SandboxSettings:
        return self._call(self._sandbox.update, **changes)

    def now(self) -> float:
        return self._call(self._sandbox.now)

    def listing_truth(self, route: str, t0: float, t1: float) -> ListingTruth:
        return self._call(self._sandbox.listing_truth, route, t0, t1)

    def evaluation(
        self, evaluation_id: str, at: float | None = None, expand: frozenset[str] = frozenset()
    ) -> dict[str, Any] | None:
        return self._call(self._sandbox.evaluation, evaluation_id, at, expand)

    def survey(self, survey_id: str) -> dict[str, Any] | None:
        return self._call(self._sandbox.survey, survey_id)

    def quality_truth(
        self, start: datetime, end: datetime, at: float | None = None
    ) -> QualityTruth:
        return self._call(self._sandbox.quality_truth, start, end, at)

    def aggregate_truth(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self._call(self._sandbox.aggregate_truth, start, end)


@contextlib.contextmanager
def run_sandbox_in_thread(settings: SandboxSettings | None = None) -> Iterator[ThreadedSandbox]:
    """Run a sandbox in a daemon thread with its own event loop for the ``with`` block."""
    ready: Future[ThreadedSandbox] = Future()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        async with Sandbox(settings) as sandbox:
            ready.set_result(ThreadedSandbox(sandbox, asyncio.get_running_loop()))
            await stop.wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)

    thread = threading.Thread(target=main, name="genesys-sandbox", daemon=True)
    thread.start()
    threaded = ready.result()  # re-raises a start-up failure (port taken, bad settings)
    try:
        yield threaded
    finally:
        threaded._loop.call_soon_threadsafe(holder["stop"].set)
        thread.join()
