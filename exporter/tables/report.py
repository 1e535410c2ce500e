"""What a build reports as it goes, and what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Observer(Protocol):
    """Told of each step of a build as it completes (progress, and tests that stop there)."""

    def step(self, name: str, detail: str) -> None: ...


class Silent:
    def step(self, name: str, detail: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What one build did; ``as_json`` is the CLI's last line."""

    status: str  # built | up-to-date
    built: tuple[str, ...]  # dataset/window, rebuilt this time
    removed: tuple[str, ...]  # dataset/window: its file is gone (or a newer snapshot came)
    in_flight: tuple[str, ...]  # being exported again: the earlier build kept
    kept_unlisted: tuple[str, ...]  # no longer in the manifest, file still on disk: kept
    lenient: tuple[str, ...]  # read leniently: a field's type differs from its declaration
    records: int  # source lines read
    conversations: int  # of which conversations
    rows: dict[str, int] = field(default_factory=dict)  # each table's rows after the build
    parquet_files: int = 0  # written this build
    seconds: float = 0.0
    database: str = ""
    threads: int = 0  # DuckDB's, as given or as fitted to the memory limit

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status, "exit_code": 0, "built": list(self.built),
            "removed": list(self.removed), "in_flight": list(self.in_flight),
            "kept_unlisted": list(self.kept_unlisted), "lenient": list(self.lenient),
            "records": self.records, "conversations": self.conversations, "rows": self.rows,
            "parquet_files": self.parquet_files, "seconds": round(self.seconds, 3),
            "database": self.database, "threads": self.threads,
        }  # fmt: skip

    def lines(self, memory_limit: str) -> list[str]:
        """What the build did, in words (stderr): notes and warnings, then its figures."""
        said = [
            f"note: {label} has a field whose type differs from its declaration; read "
            "leniently (values that do not fit are NULL)."
            for label in self.lenient
        ]
        if self.in_flight:
            said.append(f"kept as last built, being exported again: {', '.join(self.in_flight)}")
        if self.kept_unlisted:
            kept = self.kept_unlisted
            more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
            said.append(
                f"warning: kept {len(kept)} window(s) the manifest no longer lists ({kept[0]}"
                f"{more}): their day files are still on disk. Export those days again so the "
                "manifest records them, or delete their files to drop them from the tables."
            )
        if self.status == "up-to-date":
            return [*said, f"up to date: no window changed since the last build ({self.database})."]
        rate = self.conversations / self.seconds if self.seconds else 0.0
        removed = f"; removed {', '.join(self.removed)}" if self.removed else ""
        return [
            *said,
            f"built {len(self.built)} windows ({', '.join(self.built)}){removed}: "
            f"{self.records:,} records ({self.conversations:,} conversations, "
            f"{rate:,.0f}/s) in {self.seconds:.1f} s at {self.threads} "
            f"thread{'s' if self.threads != 1 else ''} within {memory_limit}; "
            f"{self.database} and {self.parquet_files} Parquet files",
        ]
