"""Which export files the tables come from, and what a build must redo: pure decisions.

A windowed dataset contributes every window the manifest holds as complete or provisional
(the current, partial day: it is replaced by each export until it closes). A window that is
in progress or failed keeps whatever an earlier build made of it, since its file is being
exported again. A snapshot dataset contributes its newest snapshot only, complete or
provisional (one whose walks never settled: it holds every entity seen).

A build compares each source's sha256 with the one recorded when it was last built: new and
changed windows are built again, the rest are left alone. A window built earlier that the
manifest no longer lists (a manifest moved aside and begun again, say) is removed only once
its file is gone from disk; while the file is there its rows are kept and reported. So the
tables lose a window when its file is deleted, never because the manifest forgot it. A build
from nothing (``--full``) reads the manifest alone, so it refuses while such files are on disk
(``left_out``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exporter.errors import InputError
from exporter.store.jsonl import SUFFIXES, file_sha256
from exporter.store.manifest import Manifest, WindowRecord
from exporter.tables.specs import TABLES, datasets

_BUILDABLE = ("complete", "provisional")
_KEPT = ("in-progress", "failed")


@dataclass(frozen=True, slots=True)
class Source:
    """One export file a build reads: its dataset, window name and what the manifest says."""

    dataset: str
    window: str
    file: str  # relative to the output folder
    sha256: str
    bytes: int
    records: int
    compression: str  # none | gzip | zstd, as DuckDB names them
    snapshot: bool

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.window}"


@dataclass(frozen=True, slots=True)
class Built:
    """What the last build recorded of one source."""

    dataset: str
    window: str
    file: str  # relative to the output folder
    sha256: str
    bytes: int
    records: int

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.window}"


@dataclass(frozen=True, slots=True)
class BuildPlan:
    build: tuple[Source, ...]  # new or changed: (re)build these windows
    remove: tuple[Built, ...]  # file gone, or snapshot superseded: delete rows and files
    in_flight: tuple[str, ...]  # windows kept because the export is redoing them
    unlisted: tuple[str, ...]  # kept: the manifest no longer lists them, their files remain

    @property
    def empty(self) -> bool:
        return not self.build and not self.remove


def _snapshot_datasets() -> set[str]:
    return {t.dataset for t in TABLES.values() if t.snapshot}


def collect(manifest: Manifest) -> tuple[list[Source], list[str]]:
    """Every source the manifest offers, and the windows (``dataset/window``) being exported
    again, whose earlier build is kept."""
    sources: list[Source] = []
    in_flight: list[str] = []
    snapshots = _snapshot_datasets()
    for dataset in datasets():
        records = manifest.records(dataset)
        if dataset in snapshots:
            taken = [r for r in records if r.status in _BUILDABLE and r.file]
            sources += [_source(dataset, taken[-1], snapshot=True)] if taken else []
            continue
        for record in records:
            if record.status in _BUILDABLE and record.file and record.sha256:
                sources.append(_source(dataset, record, snapshot=False))
            elif record.status in _KEPT:
                in_flight.append(f"{dataset}/{record.name}")
    return sources, in_flight


def _source(dataset: str, record: WindowRecord, *, snapshot: bool) -> Source:
    assert record.file is not None
    return Source(
        dataset=dataset,
        window=record.name,
        file=record.file,
        sha256=record.sha256 or "",
        bytes=record.bytes,
        records=record.records,
        compression=record.compression,
        snapshot=snapshot,
    )


def plan(
    sources: list[Source],
    in_flight: list[str],
    built: list[Built],
    *,
    full: bool,
    on_disk: Callable[[Built], bool],
) -> BuildPlan:
    """What to build, remove and keep. ``full`` ignores what was built: every source again,
    into an empty database. ``on_disk`` tells whether a built window's file is still there."""
    previous = {} if full else {(b.dataset, b.window): b for b in built}
    offered = {(s.dataset, s.window) for s in sources}
    flying = {tuple(f.split("/", 1)) for f in in_flight}
    build = tuple(s for s in sources if _changed(s, previous.get((s.dataset, s.window))))
    superseded = {s.dataset for s in sources if s.snapshot}  # by the newer snapshot offered
    others = [b for key, b in previous.items() if key not in offered and key not in flying]
    unlisted = [b for b in others if b.dataset not in superseded and on_disk(b)]
    return BuildPlan(
        build=build,
        remove=tuple(b for b in others if b not in unlisted),
        in_flight=tuple(sorted(f"{d}/{w}" for d, w in flying if (d, w) in previous)),
        unlisted=tuple(sorted(b.label for b in unlisted)),
    )


def _changed(source: Source, built: Built | None) -> bool:
    return built is None or built.sha256 != source.sha256


def on_disk(out_dir: Path, built: Built) -> bool:
    """Whether the file a window was built from is still there, at the size it had.

    Size, not sha256: this runs on every build for every window the manifest has lost, and
    hashing would read all of them each time. The rows kept were built from the file when
    the manifest vouched for it; a file of the same size edited by hand since keeps them,
    which loses nothing, and the build says to export the day again either way."""
    try:
        return (out_dir / built.file).stat().st_size == built.bytes
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:  # there, but unreadable: keep the rows rather than lose them
        return True


def left_out(out_dir: Path, sources: list[Source]) -> list[str]:
    """Data files on disk (relative paths) that a build from the manifest alone would leave
    out: in a windowed dataset's folder and named by no source, or any file of a snapshot
    dataset the manifest offers no snapshot of."""
    named = {s.file for s in sources}
    offering = {s.dataset for s in sources}
    snapshots = _snapshot_datasets()
    found: list[str] = []
    for dataset in datasets():
        folder = out_dir / dataset
        if (dataset in snapshots and dataset in offering) or not folder.is_dir():
            continue
        files = (f"{dataset}/{p.name}" for p in folder.iterdir() if _is_data_file(p))
        found += sorted(f for f in files if f not in named)
    return found


def _is_data_file(path: Path) -> bool:
    # Part files are hidden; whatever else a person keeps in the folder is not ours to count.
    data = not path.name.startswith(".") and path.name.endswith(tuple(SUFFIXES.values()))
    return data and path.is_file()


def verify(out_dir: Path, source: Source) -> Path:
    """The source's path, once its size and sha256 match the manifest; InputError if not."""
    path = out_dir / source.file
    try:
        size = path.stat().st_size
        digest = file_sha256(path) if size == source.bytes else ""
    except FileNotFoundError:
        raise InputError(
            f"{path} is in the manifest but not on disk; export {source.label} again "
            "(genesys-export export ... --force) or restore the file."
        ) from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror}); check its permissions.") from exc
    if size != source.bytes or digest != source.sha256:
        raise InputError(
            f"{path} is not the file the manifest describes (its size or sha256 differs: "
            f"edited by hand?); export {source.label} again (genesys-export export ... --force) "
            "so the tables are built from what the API sent."
        )
    return path
