"""The folder's forget ledger: which GDPR deletions its files have had applied, and a rewrite
under way.

``<out>/forgotten.json`` lists each applied request by id with when it was applied and how
many records and files it changed; never a value of its subject (an export that applies the
ledger asks Genesys for the subjects again). While ``forget`` replaces files it also holds
``pending``: each file being replaced, with the sha256 it had, the one it gets and its new size,
and the requests being applied. The order makes a kill at any instant recoverable
(``recover``):

1. every changed file is written beside the old one (``.<name>.forget.part``) and synced;
2. the ledger is saved with ``pending`` (the intent, durable);
3. each part is renamed over its file;
4. the manifest is saved with the new sizes and digests;
5. the ledger is saved with the requests applied and no ``pending``.

``recover`` finishes steps 3 to 5 from the ledger alone: a part left beside a file that still
has its old digest is renamed in, a file that has its new digest gets it in the manifest, and
a file that has neither was replaced since (an export wrote the day again) and is left alone.
Any command that writes the folder calls it first, under the folder's lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from exporter import __version__
from exporter.errors import OutputError
from exporter.store.jsonl import file_sha256, fsync_dir, output_error, write_atomically
from exporter.store.manifest import Manifest

LEDGER_NAME = "forgotten.json"
VERSION = 1
PART = "forget.part"


@dataclass(frozen=True, slots=True)
class Applied:
    """One request applied to the folder: when, and how much it changed."""

    applied: str
    records: int
    files: int

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "records": self.records, "files": self.files}


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A file being replaced by ``forget``: its dataset and window, and both digests."""

    dataset: str
    window: str
    file: str  # relative to the output folder
    old_sha256: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class ForgetLedger:
    """What ``forgotten.json`` holds."""

    out_dir: Path
    requests: dict[str, Applied] = field(default_factory=dict)
    pending: dict[str, Applied] = field(default_factory=dict)  # being applied now
    rewrites: list[Rewrite] = field(default_factory=list)  # the files they replace

    @property
    def path(self) -> Path:
        return self.out_dir / LEDGER_NAME

    def fingerprint(self) -> str:
        """Names the set of requests applied ("" for none): what a build compares."""
        if not self.requests:
            return ""
        return hashlib.sha256("\n".join(sorted(self.requests)).encode()).hexdigest()[:16]

    @classmethod
    def load(cls, out_dir: Path) -> ForgetLedger:
        """The folder's ledger; an empty one when it has none."""
        path = out_dir / LEDGER_NAME
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(out_dir)
        except OSError as exc:
            raise output_error(exc, path, "read the forget ledger") from exc
        except orjson.JSONDecodeError as exc:
            raise _corrupt(path, f"it is not valid JSON ({exc})") from exc
        try:
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError(f"its version is not {VERSION}")
            pending = data.get("pending") or {}
            return cls(
                out_dir,
                requests=_applied(data.get("requests")),
                pending=_applied(pending.get("requests")),
                rewrites=[Rewrite(**fields) for fields in pending.get("files", [])],
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise _corrupt(path, str(exc)) from exc

    def save(self) -> None:
        """Replace the file atomically (temporary file, fsync, rename, fsync of the folder)."""
        state = {
            "version": VERSION,
            "tool": f"genesys-exporter {__version__}",
            "requests": {key: applied.to_dict() for key, applied in sorted(self.requests.items())},
            "pending": None if not self.pending else {
                "requests": {key: applied.to_dict() for key, applied in self.pending.items()},
                "files": [rewrite.to_dict() for rewrite in self.rewrites],
            },
        }  # fmt: skip
        data = orjson.dumps(state, option=orjson.OPT_INDENT_2) + b"\n"
        write_atomically(self.path, data, "write the forget ledger")


def part_path(path: Path) -> Path:
    """Where the erased copy of a file is written before it replaces the file."""
    return path.with_name(f".{path.name}.{PART}")


def recover(
    manifest: Manifest, ledger: ForgetLedger, step: Callable[[str, str], None] | None = None
) -> int:
    """Finish a ``forget`` a kill interrupted (steps 3 to 5); returns the files it finished.
    Blocking; the caller holds the folder's lock. ``step`` is told of each step done (tests
    that stop there)."""
    step = step or _quiet
    if not ledger.pending:
        return 0
    finished = 0
    for rewrite in ledger.rewrites:
        path = manifest.out_dir / rewrite.file
        part = part_path(path)
        digest = _sha256(path)
        if part.exists():
            if digest == rewrite.old_sha256 and _sha256(part) == rewrite.sha256:
                _replace(part, path)
                digest = rewrite.sha256
                step("file-swapped", rewrite.file)
            else:
                part.unlink(missing_ok=True)
        if digest == rewrite.sha256 and apply_rewrite(manifest, rewrite):
            finished += 1
    manifest.save()
    step("manifest-saved", str(manifest.path))
    ledger.requests.update(ledger.pending)
    ledger.pending, ledger.rewrites = {}, []
    ledger.save()
    step("ledger-saved", str(ledger.path))
    return finished


def _quiet(name: str, detail: str) -> None:
    pass


def finish_interrupted(manifest: Manifest) -> None:
    """``recover`` when the folder's ledger holds a forget a kill interrupted (the caller holds
    the folder's lock): every command that writes the folder calls it first."""
    ledger = ForgetLedger.load(manifest.out_dir)
    if ledger.pending:
        recover(manifest, ledger)


def apply_rewrite(manifest: Manifest, rewrite: Rewrite) -> bool:
    """Give the manifest the rewritten file's size and digest, and the windows read from the
    file (by ids) their new source digest; False when the manifest no longer names the old
    file (the window was exported again meanwhile)."""
    record = manifest.get(rewrite.dataset, rewrite.window)
    if record is None or record.sha256 != rewrite.old_sha256 or record.file != rewrite.file:
        return False
    changed = dataclasses.replace(record, bytes=rewrite.bytes, sha256=rewrite.sha256)
    manifest.put(rewrite.dataset, changed)
    for dataset in manifest.datasets():
        derived = manifest.get(dataset, rewrite.window)
        if derived is not None and derived.derived_from == rewrite.old_sha256:
            manifest.put(dataset, dataclasses.replace(derived, derived_from=rewrite.sha256))
    return True


def _replace(part: Path, path: Path) -> None:
    try:
        os.replace(part, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise output_error(exc, path, "replace the file with its erased copy") from exc


def _sha256(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise output_error(exc, path, "read") from exc


def _applied(data: Any) -> dict[str, Applied]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError("its requests are not an object")
    found = {str(key): Applied(**fields) for key, fields in data.items()}
    for applied in found.values():
        counts = (applied.records, applied.files)
        if not isinstance(applied.applied, str) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts
        ):
            raise ValueError(f"a request's entry {applied.to_dict()} is not when, records, files")
    return found


def _corrupt(path: Path, why: str) -> OutputError:
    return OutputError(
        f"The forget ledger {path} cannot be read: {why}; restore it from a backup, or move it "
        "aside and run genesys-export forget at once (it applies every completed deletion again)."
    )


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
