"""What the local build holds, cut into what a publish replaces: one table's rows of one day.

A publish reads what ``genesys-export tables`` built, never the raw export: the database's
record of the build (``_build_sources``: each window built and its source file's sha256;
``_build_info``: the declarations' fingerprint and the Parquet layout) and the Parquet files
of the current version (the folder ``tables`` links to). The folder's lock is held while they
are read, so no build switches them meanwhile.

A windowed table's rows are published by UTC day: a day holds the windows that begin in it
(one, with the default one-day window). A snapshot table is published whole, as its newest
snapshot, under the "day" ``SNAPSHOT``.

Each ``TableDay`` carries a digest: sha256 over the publish's own version, the declarations'
fingerprint, the table, and each of the day's windows with its source file's sha256, size and
records. It changes when a window of the day is exported again with other bytes, is added or
removed, or when the declarations change (a release that adds a column), and only then: the
digest published with a day is the marker a publish compares before writing it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter.errors import InputError
from exporter.tables import TABLES, sql
from exporter.tables.database import DB_NAME, read_previous
from exporter.tables.parquet import Layout, check_layout, day_of, relative_path
from exporter.tables.sources import Built
from exporter.tables.specs import Table
from exporter.tables.versions import LINK

SNAPSHOT = "snapshot"  # the "day" of a snapshot table: its newest snapshot, replaced whole
# Changes whenever the same build would be published differently (a new object layout, a
# column added on the way): every day's digest changes with it, so every day is rewritten.
PUBLISH_VERSION = "1"


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One Parquet file of the current version: one table's rows of one window."""

    window: str
    path: Path

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True, slots=True)
class TableDay:
    """One table's rows of one UTC day (or, for a snapshot table, of its newest snapshot)."""

    table: Table
    day: str  # YYYY-MM-DD, or SNAPSHOT
    files: tuple[LocalFile, ...]
    digest: str

    @property
    def label(self) -> str:
        return f"{self.table.name}/{self.day}"

    @property
    def snapshot(self) -> bool:
        return self.day == SNAPSHOT


@dataclass(frozen=True, slots=True)
class LocalTables:
    """Every table's days, as the last build left them; ``root`` is the Parquet version;
    ``forgotten`` the fingerprint of the GDPR deletions the build's files had applied ("":
    none)."""

    root: Path
    days: tuple[TableDay, ...]
    forgotten: str = ""

    def tables(self) -> list[Table]:
        """The tables that hold any day, in declaration order."""
        held = {d.table.name for d in self.days}
        return [t for t in TABLES.values() if t.name in held]

    def of(self, table: Table) -> list[TableDay]:
        return [d for d in self.days if d.table.name == table.name]


def require_tables(out_dir: Path) -> None:
    """InputError unless ``out_dir`` holds a build's database."""
    if not (out_dir / DB_NAME).is_file():
        raise InputError(
            f"{out_dir} holds no {DB_NAME}: there are no tables to publish. Build them first "
            f"(genesys-export tables --out {out_dir}), or give the folder they were built in."
        )


def read_local(out_dir: Path) -> LocalTables:
    """The tables the last build left in ``out_dir``; InputError when there are none, or
    they were built by other declarations than this version's."""
    require_tables(out_dir)
    previous = read_previous(out_dir)
    fingerprint = previous.info.get("fingerprint") if previous else None
    if previous is None or fingerprint != sql.fingerprint():
        raise InputError(
            f"The tables in {out_dir} were built by another version of genesys-export; run "
            "genesys-export tables to bring them up to date, then publish."
        )
    layout = check_layout(previous.info.get("layout", "flat"))
    root = Path(os.path.realpath(out_dir / LINK))
    days = table_days(previous.built, fingerprint)
    placed = tuple(_placed(day, root, layout) for day in days)
    return LocalTables(root, placed, str(previous.info.get("forgotten", "")))


def _placed(day: TableDay, root: Path, layout: Layout) -> TableDay:
    """``day`` with each file's path in the Parquet version ``root``."""
    files = tuple(
        LocalFile(f.window, root / relative_path(layout, day.table.name, f.window))
        for f in day.files
    )
    return dataclasses.replace(day, files=files)


def table_days(built: Sequence[Built], fingerprint: str) -> list[TableDay]:
    """Every table's days from the windows built, files named by window alone (``path`` is
    the window's relative name until ``read_local`` places it in the version)."""
    by_dataset: dict[str, list[Built]] = defaultdict(list)
    for window in built:
        by_dataset[window.dataset].append(window)
    days: list[TableDay] = []
    for table in TABLES.values():
        windows = by_dataset.get(table.dataset, [])
        if table.snapshot and windows:  # a build keeps one snapshot; the newest if ever more
            windows = [max(windows, key=lambda w: w.window)]
        grouped: dict[str, list[Built]] = defaultdict(list)
        for window in windows:
            grouped[SNAPSHOT if table.snapshot else day_of(window.window)].append(window)
        for day in sorted(grouped):
            held = sorted(grouped[day], key=lambda w: w.window)
            files = tuple(LocalFile(w.window, Path(w.window)) for w in held)
            days.append(TableDay(table, day, files, digest(fingerprint, table, day, held)))
    return days


def digest(fingerprint: str, table: Table, day: str, windows: Iterable[Built]) -> str:
    """The marker of a table's day: what it was built from, and by which declarations."""
    lines = [f"genesys-export publish {PUBLISH_VERSION}", fingerprint, table.name, day]
    lines += [f"{w.window} {w.sha256} {w.bytes} {w.records}" for w in windows]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
