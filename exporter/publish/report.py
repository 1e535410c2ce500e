"""What a format's publish reports as it goes, and what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Observer(Protocol):
    """Told of each step as it completes: ``planned`` (the markers read; detail: how many
    days to write), ``uploaded`` (a day's files written, not yet committed), ``committed``
    (a day replaced; detail: ``table/day``), ``vacuumed`` (after a forget, a table's older
    files deleted, not yet recorded; detail: the table). Progress, and tests that stop
    there."""

    def step(self, name: str, detail: str) -> None: ...


class Silent:
    def step(self, name: str, detail: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Written:
    """One table's day, replaced by this publish."""

    label: str  # table/day
    rows: int
    bytes: int  # uploaded (Parquet, Delta) or read (Iceberg writes its own files)


@dataclass(slots=True)
class Report:
    """What a format's publish did: days written, days already published with this content,
    days another publish committed while this one was about to (skipped, never twice), and
    the tables whose older versions it dropped after a forget, with the files that took."""

    written: list[Written] = field(default_factory=list)
    unchanged: int = 0
    raced: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    purged_files: int = 0

    def add(self, other: Report) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.raced += other.raced
        self.purged += other.purged
        self.purged_files += other.purged_files
