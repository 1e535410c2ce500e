"""Retention: remove the windows that ended before a cutoff, their files and manifest records.

``prune`` removes every window of a windowed dataset that ended by the cutoff (``now`` less
``older_than``, down to a UTC midnight), whatever its status: a complete or provisional
window's file, and an unfinished or failed one's files and part files too, since no export
goes back before a prune to finish them. A snapshot dataset keeps its newest
``keep_snapshots`` snapshot days (with a file) whatever their age; older ones that ended by
the cutoff go.

The manifest stays the source of truth. It records, per dataset, the instant its history was
pruned up to (``Manifest.mark_pruned``): ``--since-last`` takes that history as complete, so
a pruned day is never a gap to fill, and an explicit ``--start`` before it is moved up to it.

The order makes a kill at any point harmless. The manifest is saved first, without the
windows and with the mark, so nothing ever claims a file that may be gone; then the files are
deleted. A kill in between leaves files no record lists, and the next prune removes them:
every file in a dataset's folder named after a window the manifest does not list, that ended
by the cutoff or the mark (a file or part file of a window it lists is never touched). Until
then the tables keep those windows' rows, as they keep any window whose file is on disk.

The tables lose the pruned windows' rows and Parquet files at their next incremental build
(``exporter.tables.sources.plan``: built, no longer listed, file gone); ``--full`` works too,
since no unlisted day file is left. ``prune`` itself builds nothing, and expects the caller to
hold the folder's lock (a dry run needs none).

A duration shorter than the shortest safe one is refused (``PruneRequest``): a day (the cutoff
is a UTC midnight), ``jobs.window`` (the window being written), ``export.lookback`` (the days
each run exports again) and ``jobs.open_horizon`` (the days whose records still going on are
refreshed). So is a prune that would leave no window holding data in the folder: a folder not
exported to for that long, or a clock that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from exporter.config import LocalSettings, Settings
from exporter.datasets import DATASETS
from exporter.engine.kinds import kind_of
from exporter.errors import ConfigError, InputError, OutputError
from exporter.progress import show_size
from exporter.store.forgotten import finish_interrupted
from exporter.store.manifest import MANIFEST_NAME, Manifest, WindowRecord
from exporter.store.prune import DayFile, day_files, remove_files
from exporter.windows import DAY, EPOCH, as_utc, format_instant, show_instant

_MS = timedelta(milliseconds=1)
_WITH_DATA = ("complete", "provisional")


class Observer(Protocol):
    """Told of each step of a prune as it completes (tests that stop there)."""

    def step(self, name: str, detail: str) -> None: ...


class _Silent:
    def step(self, name: str, detail: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class PruneRequest:
    """What to prune, and the settings that bound how recent a cutoff may be."""

    out_dir: Path
    older_than: timedelta
    keep_snapshots: int = 7
    dry_run: bool = False
    window: timedelta = DAY  # jobs.window
    lookback: timedelta | None = None  # export.lookback
    open_horizon: timedelta = timedelta(days=14)  # jobs.open_horizon

    def __post_init__(self) -> None:
        if self.keep_snapshots < 1:
            raise ConfigError(
                f"retention.keep_snapshots {self.keep_snapshots} must be at least 1: the "
                "newest snapshot is the one the tables read."
            )
        shortest, why = max(self._bounds(), key=lambda bound: bound[0])
        if self.older_than < shortest:
            raise ConfigError(
                f"Pruning windows older than {show_duration(self.older_than)} would remove "
                f"{why}; give at least {show_duration(shortest)} (--older-than, or keep under "
                "[retention] in config.toml)."
            )

    def _bounds(self) -> list[tuple[timedelta, str]]:
        """Each shortest safe duration, and what a shorter one would remove."""
        return [
            (DAY, "yesterday's day file, which may not be complete yet (the cutoff is a UTC "
                  "midnight)"),
            (self.window, f"the window being written now (jobs.window "
                          f"{show_duration(self.window)})"),
            (self.lookback or timedelta(0), "days every run exports again (export.lookback "
             f"{show_duration(self.lookback or timedelta(0))})"),
            (self.open_horizon, "days whose records still going on are refreshed each run "
             f"(jobs.open_horizon {show_duration(self.open_horizon)})"),
        ]  # fmt: skip

    @classmethod
    def from_settings(
        cls, settings: Settings | LocalSettings, *, dry_run: bool = False
    ) -> PruneRequest:
        """The request ``[retention] keep`` (``--older-than``) makes of these settings."""
        keep = settings.retention.keep
        if keep is None:
            raise ConfigError(
                "Nothing says how old a window must be to go: give --older-than (e.g. 400d), "
                "or set keep under [retention] in config.toml."
            )
        return cls(
            settings.output.out_dir, keep, keep_snapshots=settings.retention.keep_snapshots,
            dry_run=dry_run, window=settings.jobs.window, lookback=settings.export.lookback,
            open_horizon=settings.jobs.open_horizon,
        )  # fmt: skip

    def cutoff(self, now: datetime) -> datetime:
        """The UTC midnight at or before ``now - older_than``: windows ending by it go."""
        try:
            moment = as_utc(now) - self.older_than
        except OverflowError:  # before the year 1: nothing is that old
            return EPOCH
        return max(EPOCH, moment.replace(hour=0, minute=0, second=0, microsecond=0))


@dataclass(frozen=True, slots=True)
class PruneSummary:
    """What one prune removed (or, in a dry run, would remove); ``as_json`` is its section of
    a summary."""

    status: str  # pruned | nothing | dry-run
    cutoff: str  # windows that ended by this instant were removed
    windows: tuple[str, ...]  # dataset/window
    snapshots: tuple[str, ...]  # dataset/day
    leftovers: tuple[str, ...]  # files no record listed (a killed prune's), relative paths
    files: int  # removed, every kind
    bytes_freed: int

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status, "exit_code": 0, "cutoff": self.cutoff,
            "windows": list(self.windows),
            "snapshots": list(self.snapshots), "leftovers": list(self.leftovers),
            "files": self.files, "bytes_freed": self.bytes_freed,
        }  # fmt: skip

    def listed(self) -> list[str]:
        """A dry run's list (stdout): what would go, one per line; nothing otherwise."""
        if self.status != "dry-run":
            return []
        kinds = (("window", self.windows), ("snapshot", self.snapshots),
                 ("leftover", self.leftovers))  # fmt: skip
        return [f"{kind:<9} {label}" for kind, labels in kinds for label in labels]

    def line(self) -> str:
        """What was pruned (or would be), in words (stderr)."""
        dry = self.status == "dry-run"
        cutoff = show_instant(datetime.fromisoformat(self.cutoff))
        if self.status == "nothing":
            return f"nothing to prune: no window ended by {cutoff} (the cutoff)."
        leftovers = f" and {len(self.leftovers)} leftover files" if self.leftovers else ""
        return (
            f"{'would prune' if dry else 'pruned'} {len(self.windows)} windows and "
            f"{len(self.snapshots)} snapshot days{leftovers} that ended by {cutoff} (the "
            f"cutoff): {self.files} files, {show_size(self.bytes_freed)} "
            f"{'to free' if dry else 'freed'}"
        )


@dataclass(frozen=True, slots=True)
class Removal:
    """One window (or snapshot day) of one dataset to remove."""

    dataset: str
    record: WindowRecord

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.record.name}"


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a prune removes: records, every file of theirs, leftovers, and the marks."""

    windows: tuple[Removal, ...] = ()
    snapshots: tuple[Removal, ...] = ()
    files: tuple[DayFile, ...] = ()  # every file to delete, the leftovers included
    leftovers: tuple[DayFile, ...] = ()  # files of windows no record lists
    marks: Mapping[str, int] = field(default_factory=dict)  # dataset -> pruned up to, epoch ms

    @property
    def empty(self) -> bool:
        return not self.files and not self.windows and not self.snapshots


def prune(
    request: PruneRequest, *, now: datetime, observer: Observer | None = None
) -> PruneSummary:
    """Remove what ended by the cutoff: the manifest's records first (saved once), then the
    files. The caller holds the folder's lock, unless this is a dry run."""
    observer = observer or _Silent()
    out = request.out_dir
    manifest = load_manifest(out)
    if not request.dry_run:
        finish_interrupted(manifest)  # a killed forget's files, swapped and recorded
    cutoff = request.cutoff(now)
    plan = plan_prune(manifest, _files(out, manifest), cutoff=cutoff,
                      keep_snapshots=request.keep_snapshots)  # fmt: skip
    _refuse_emptying(manifest, plan, request, cutoff, now)
    if request.dry_run or plan.empty:
        return _summary("dry-run" if request.dry_run else "nothing", cutoff, plan)
    observer.step("planned", f"{len(plan.files)} files")
    for removal in (*plan.windows, *plan.snapshots):
        manifest.remove(removal.dataset, removal.record.name)
    for dataset, mark in plan.marks.items():
        manifest.mark_pruned(dataset, format_instant(EPOCH + mark * _MS))
    manifest.save()
    observer.step("manifest-saved", str(manifest.path))
    freed = remove_files(out, plan.files, lambda f: observer.step("file-removed", f.path))
    observer.step("files-removed", f"{freed} bytes")
    return _summary("pruned", cutoff, plan, freed)


def check_folder(out: Path) -> None:
    """InputError unless ``out`` holds a manifest: a prune never sweeps a folder that is not
    an export folder (a mistyped --out)."""
    if not (out / MANIFEST_NAME).is_file():
        raise InputError(
            f"{out} holds no {MANIFEST_NAME}: it is not an export folder, so nothing in it is "
            "pruned; give the folder you exported to (--out, or out_dir under [output])."
        )


def load_manifest(out: Path) -> Manifest:
    check_folder(out)
    try:
        return Manifest.load(out)
    except OutputError as exc:
        raise InputError(str(exc)) from exc


def plan_prune(
    manifest: Manifest,
    files: Mapping[str, Sequence[DayFile]],
    *,
    cutoff: datetime,
    keep_snapshots: int,
) -> PrunePlan:
    """Decide, without I/O, what a prune removes. ``files``: each dataset's window-named
    files on disk (``exporter.store.prune.day_files``)."""
    cutoff_ms = (as_utc(cutoff) - EPOCH) // _MS
    windows: list[Removal] = []
    snapshots: list[Removal] = []
    doomed: list[DayFile] = []
    leftovers: list[DayFile] = []
    marks: dict[str, int] = {}
    for dataset in sorted(set(manifest.datasets()) | set(files)):
        records = manifest.records(dataset)
        snapshot = not _dated(dataset)
        if snapshot:
            gone, bound = _old_snapshots(records, cutoff_ms, keep_snapshots)
        else:
            gone, bound = [r for r in records if r.end_ms <= cutoff_ms], cutoff_ms
        mark = manifest.pruned_before(dataset)
        bound = max(bound, mark) if mark is not None else bound
        going, stray = _doomed_files(records, gone, files.get(dataset, ()), bound)
        (snapshots if snapshot else windows).extend(Removal(dataset, r) for r in gone)
        doomed += going
        leftovers += stray
        if (gone or stray) and bound >= 0:
            marks[dataset] = bound
    return PrunePlan(tuple(windows), tuple(snapshots), tuple(doomed), tuple(leftovers), marks)


def _old_snapshots(
    records: list[WindowRecord], cutoff_ms: int, keep: int
) -> tuple[list[WindowRecord], int]:
    """The snapshot days to remove (ended by the cutoff, not among the newest ``keep`` with a
    file), and how old an unlisted file must be to go (and the mark): older than every day
    kept, and than the cutoff (-1, none, when no snapshot with a file is listed)."""
    kept = [r for r in records if r.file and r.status in _WITH_DATA][-keep:]
    names = {r.name for r in kept}
    gone = [r for r in records if r.end_ms <= cutoff_ms and r.name not in names]
    return gone, min(cutoff_ms, kept[0].start_ms) if kept else -1


def _doomed_files(
    records: list[WindowRecord], gone: list[WindowRecord], files: Sequence[DayFile], bound: int
) -> tuple[list[DayFile], list[DayFile]]:
    """The files to delete: every one of a window removed, and of a window no record lists
    that ended by ``bound`` (a leftover); never one of a window the manifest keeps."""
    removed = {r.name for r in gone}
    kept = {r.name for r in records} - removed
    doomed = [
        f for f in files if f.window not in kept and (f.window in removed or f.end_ms <= bound)
    ]
    return doomed, [f for f in doomed if f.window not in removed]


def _files(out: Path, manifest: Manifest) -> dict[str, list[DayFile]]:
    """Each dataset's window-named files: the known datasets' folders and the manifest's
    entities that are plain folder names."""
    names = set(DATASETS) | {e for e in manifest.datasets() if _plain(e)}
    return {name: day_files(out, name) for name in sorted(names)}


def _dated(name: str) -> bool:
    """Whether a dataset's files are windows of time (one the exporter no longer knows is
    taken to be: removing it by age is what its files' day names allow)."""
    return name not in DATASETS or kind_of(DATASETS[name]).dated


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _refuse_emptying(
    manifest: Manifest, plan: PrunePlan, request: PruneRequest, cutoff: datetime, now: datetime
) -> None:
    """A prune that leaves no window holding data in the folder is refused: the folder was
    not exported to for that long, or the clock is wrong, and neither means "delete it all"."""
    holding = [
        (r, d) for d in manifest.datasets() if _dated(d)
        for r in manifest.records(d) if r.status in _WITH_DATA and r.file
    ]  # fmt: skip
    going = {(w.dataset, w.record.name) for w in plan.windows}
    if not holding or any((d, r.name) not in going for r, d in holding):
        return
    newest, dataset = max(holding, key=lambda pair: pair[0].end_ms)
    raise ConfigError(
        f"Pruning windows older than {show_duration(request.older_than)} (those that ended by "
        f"{show_instant(cutoff)}) would remove every window holding data in "
        f"{request.out_dir}: the newest, {dataset}/{newest.name}, ended "
        f"{show_instant(EPOCH + newest.end_ms * _MS)}. Either the folder has not been "
        f"exported to since, or this machine's clock is wrong (it says "
        f"{show_instant(now)}). Export first (genesys-export run does), or delete the folder "
        "if its data is no longer wanted."
    )


def _summary(
    status: str, cutoff: datetime, plan: PrunePlan, freed: int | None = None
) -> PruneSummary:
    return PruneSummary(
        status=status,
        cutoff=format_instant(cutoff),
        windows=tuple(r.label for r in plan.windows),
        snapshots=tuple(r.label for r in plan.snapshots),
        leftovers=tuple(f.path for f in plan.leftovers),
        files=len(plan.files),
        bytes_freed=sum(f.bytes for f in plan.files) if freed is None else freed,
    )


def show_duration(span: timedelta) -> str:
    """A duration as config.toml writes it: ``400d``, ``1d12h``, ``90s``; ``0s`` for none."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
