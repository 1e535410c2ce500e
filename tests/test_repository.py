"""What every file of the repository keeps to: no merge left half-done."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(rb"^(<<<<<<< |>>>>>>> |=======$)", re.MULTILINE)


def test_no_file_holds_a_merge_conflict_marker() -> None:
    """A conflict resolved in one place but not another shows up here, not in a reader's docs."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    files = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    marked = [
        str(path.relative_to(ROOT))
        for path in files
        if path.is_file()
        and path.suffix in {".py", ".md", ".toml", ".yaml", ".yml", ".txt", ""}
        and MARKER.search(path.read_bytes())
    ]
    assert marked == []
