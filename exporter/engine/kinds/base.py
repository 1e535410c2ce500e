"""What every kind of data answers, so nothing above the engine asks which kind a dataset is.

A kind is a strategy: analytics details fetched window by window, listings taken whole as
snapshots. Each says what it is called and what endpoint a dataset of it reads, how to probe
a dataset's permission, what a run would do (``preview``) and what it does (``prepare`` then
``Work.run``), and what its work came to (``Tally``), in the terms every summary uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from exporter.client.http import ApiClient
from exporter.config import Settings
from exporter.engine.ledger import Ledger
from exporter.engine.writer import FilesThread
from exporter.plan import ExportRequest
from exporter.progress import Progress
from exporter.store.manifest import Manifest

D_contra = TypeVar("D_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What a kind plans with: the settings, the request, the client and the folder's manifest."""

    settings: Settings
    request: ExportRequest
    api: ApiClient
    manifest: Manifest


@dataclass(frozen=True, slots=True)
class RunContext(PlanContext):
    """What a kind's work runs with: one files thread and one ledger per dataset, shared by
    every kind of the run, and the progress display."""

    files: FilesThread
    ledgers: Mapping[str, Ledger]
    progress: Progress
    now: datetime


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One window or snapshot of a preview: what a run would do with it, and at what cost."""

    dataset: str
    name: str
    action: str
    source: str
    reason: str
    records: int | None = None
    requests: int = 0


@dataclass(frozen=True, slots=True)
class Preview:
    """One kind's share of a preview: its lines, the jobs it would submit, its watermark."""

    lines: tuple[PlanLine, ...]
    jobs: int = 0
    watermark: datetime | None = None


@dataclass(slots=True)
class Tally:
    """What one kind's work did beyond what the manifest records, per dataset where it can.

    ``denied``/``stalled``: dataset -> one line; ``failed``: "dataset window: reason" lines;
    ``open_records``: per dataset that tracks records still going on, what it holds and did."""

    denied: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    stalled: dict[str, str] = field(default_factory=dict)
    repeats: int = 0
    skipped: int = 0
    watermarks: dict[str, datetime] = field(default_factory=dict)
    open_records: dict[str, dict[str, Any]] = field(default_factory=dict)


class Work(Protocol):
    """One kind's work in one run, prepared: it is then estimated, run, and maybe stopped."""

    @property
    def windows(self) -> int:
        """How many windows (or snapshots) it has to fetch, for progress."""
        ...

    @property
    def resumed_records(self) -> int:
        """Records already written by earlier runs to what it continues, for progress."""
        ...

    @property
    def busy(self) -> bool:
        """Whether it has anything to do at all (a stop before then keeps nothing)."""
        ...

    async def expected_records(self) -> int | None:
        """How many records it will fetch, when it can tell cheaply (None: it cannot)."""
        ...

    async def run(self) -> None:
        """Do the work; a failing dataset is tallied and the others go on."""
        ...

    def stop(self) -> None:
        """Stop politely: no new work; what is written so far is kept to resume."""
        ...

    def tally(self) -> Tally:
        """What it did so far (asked at any time, whatever ended the run)."""
        ...


class Kind(Protocol[D_contra]):
    """A kind of data: the strategy the engine runs for every dataset described as it."""

    word: str  # what lists and probes call it
    ranged: bool  # its windows are chosen by a time range (--start, --since-last)
    dated: bool  # its files are windows of time (pruned by age), not snapshots (by count)
    stage: int  # kinds run stage by stage: a later stage reads what an earlier one wrote

    def endpoint(self, dataset: D_contra) -> str:
        """What a dataset of this kind reads, for ``genesys-export datasets``."""
        ...

    async def reach(self, api: ApiClient, dataset: D_contra) -> str:
        """Read the least that shows the OAuth client may read ``dataset``; what it found.

        Raises PermissionDenied or ApiError when it may not or cannot."""
        ...

    def check(
        self, request: ExportRequest, manifest: Manifest, datasets: Sequence[D_contra]
    ) -> None:
        """Raise ConfigError for a request its datasets cannot be planned from, before any
        request is sent."""
        ...

    async def preview(self, context: PlanContext, datasets: Sequence[D_contra]) -> Preview:
        """What a run would do with ``datasets``, and what it would cost; no record fetched."""
        ...

    async def prepare(self, context: RunContext, datasets: Sequence[D_contra]) -> Work:
        """Decide what ``datasets`` need this run (a dataset denied here is tallied)."""
        ...
