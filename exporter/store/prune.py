"""The folder side of a prune: which files in a dataset's folder belong to which window, and
removing them.

A dataset's folder holds, per window, its data file (``<name>.jsonl``, ``.jsonl.gz`` or
``.jsonl.zst``) and, while an export or a refresh of it is unfinished, hidden part files
(``.<name>.jsonl.part``, ``.<name>.jsonl.merge.part``). Anything else a person keeps there is
not named after a window and is never listed, so never removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from exporter.store.jsonl import MERGE_PART, SUFFIXES, fsync_dir, output_error
from exporter.windows import Window

_PART_TAILS = (f".{MERGE_PART}", ".part")  # the longer first: it ends with the shorter


@dataclass(frozen=True, slots=True)
class DayFile:
    """A file in a dataset's folder named after one of its windows."""

    path: str  # relative to the output folder, POSIX separators
    window: str  # the window's name
    end_ms: int  # when the window ends
    bytes: int


def day_files(out_dir: Path, dataset: str) -> list[DayFile]:
    """Every data and part file in ``<out>/<dataset>/`` named after a window, sorted by path."""
    try:
        entries = list(os.scandir(out_dir / dataset))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise output_error(exc, out_dir / dataset, "list") from exc
    found = []
    for entry in entries:
        window = window_of(entry.name)
        if window is not None and entry.is_file(follow_symlinks=False):
            size = entry.stat(follow_symlinks=False).st_size
            found.append(DayFile(f"{dataset}/{entry.name}", window.name, window.end_ms, size))
    return sorted(found, key=lambda f: f.path)


def window_of(filename: str) -> Window | None:
    """The window a data or part file is named after, or None for any other file."""
    stem = filename
    if stem.startswith("."):
        tail = next((t for t in _PART_TAILS if stem.endswith(t)), None)
        if tail is None:
            return None
        stem = stem[1 : -len(tail)]
    suffix = next((s for s in SUFFIXES.values() if stem.endswith(s)), None)
    if suffix is None:
        return None
    try:
        return Window.from_name(stem[: -len(suffix)])
    except ValueError:
        return None


def remove_files(
    out_dir: Path, files: Iterable[DayFile], removed: Callable[[DayFile], None]
) -> int:
    """Delete each file (one already gone is passed over), telling ``removed`` of each, then
    persist the folders' entries. Returns the bytes freed."""
    freed = 0
    folders: set[Path] = set()
    for file in files:
        path = out_dir / file.path
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise output_error(exc, path, "remove") from exc
        freed += file.bytes
        folders.add(path.parent)
        removed(file)
    for folder in sorted(folders):
        fsync_dir(folder)
    return freed
