"""What the engine asks of a window's file: the sink interface.

``store.jsonl.JsonlFile`` implements it (JSONL, optionally gzip or zstd members); another file
format is one more class with these methods. Every method blocks: the engine calls them in its
one files thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from exporter.store.jsonl import FileDigest

if TYPE_CHECKING:
    from exporter.store.jsonl import Buffer


class Sink(Protocol):
    """One window's records, hidden in a part file until committed."""

    part_path: Path

    @property
    def records(self) -> int: ...
    @property
    def bytes_written(self) -> int: ...

    def create(self) -> None:
        """Start an empty part file (truncating one left behind)."""

    def resume(self, offset: int, records: int) -> None:
        """Reopen the part file at a checkpoint; raise PartFileLost when it cannot be."""

    def append(self, records: Sequence[Buffer]) -> None:
        """Append one page's records."""

    def written(self) -> Iterator[bytes]:
        """The records appended so far, one line each."""

    def sync(self) -> tuple[int, int]:
        """Make what was appended durable; return the (offset, records) to resume at."""

    def commit(self) -> FileDigest:
        """Make the file durable and visible under its final name."""

    def commit_instead(self, pages: Iterable[Sequence[Buffer]]) -> FileDigest:
        """Commit the records of ``pages`` in place of what was appended, never touching the
        part file before the final file is in place (a kill meanwhile leaves the checkpoint
        valid)."""

    def close(self) -> None:
        """Close, keeping the part file for a later resume."""

    def discard(self) -> None:
        """Close and delete the part file."""


SinkFactory = Callable[[Path], Sink]
"""Makes the sink that will become the file at the given final path."""
