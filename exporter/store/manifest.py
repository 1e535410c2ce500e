"""The output folder's manifest: what each window's file holds, and how far an unfinished one got.

One JSON file, ``<out>/manifest.json``, maps dataset -> window name -> WindowRecord, and, once
``genesys-export prune`` has run, dataset -> the instant its windows were pruned up to. It is
written atomically (temporary file, fsync, rename, fsync of the folder) and only after the data
it describes, so after a crash it never claims more than what is on disk. It holds no credentials:
no field carries a secret or a token (a job cursor is a page position, not a credential).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

import orjson

from exporter import __version__
from exporter.errors import OutputError
from exporter.store.jsonl import output_error, write_atomically

MANIFEST_NAME = "manifest.json"
VERSION = 3
# Version 2 added snapshots (source listing, taken_at); 3 the org the folder belongs to, which
# a tool that reads only 2 would not check, so it refuses the folder instead. 4 adds what was
# pruned: a tool that reads only 3 would drop it at its next save and export the pruned days
# again, so it must refuse. Only a pruned folder is written as 4; others stay readable by 3.
PRUNED_VERSION = 4
# 5 adds windows read by ids (source "ids", each naming the file it was read from): a tool
# that reads only 4 refuses their fields. Only a folder holding one is written as 5.
BY_ID_VERSION = 5
# 6 adds the privacy profile the files were written with: a tool that reads only 5 would drop
# it at its next save and write unprotected records beside protected ones, so it must refuse.
# Only a folder written with a profile is written as 6; a folder without it is profile none.
PRIVACY_VERSION = 6
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)

Status = Literal["complete", "provisional", "in-progress", "failed"]
# "ids": read one by one (ById); "search": searched per unit and local day (UnitDays)
Source = Literal["jobs", "query", "listing", "ids", "search"]
_STATUSES: frozenset[str] = frozenset(get_args(Status))
_SOURCES: frozenset[str | None] = frozenset((*get_args(Source), None))
_COMPRESSIONS = frozenset(("none", "gzip", "zstd"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def instant_ms(text: str) -> int:
    """Epoch milliseconds of an ISO instant such as ``2026-11-01T00:00:00.000Z``."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return (moment - _EPOCH) // _MS  # integer arithmetic: no float rounding of milliseconds


@dataclass(frozen=True, slots=True)
class OrgIdentity:
    """The Genesys Cloud org an export folder's data came from, and the login host reached."""

    id: str
    name: str
    login_host: str

    def describe(self) -> str:
        return f"{self.name!r} (id {self.id}, via {self.login_host})"

    @classmethod
    def from_dict(cls, data: Any) -> OrgIdentity:
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != fields:
            raise ValueError(f"it is not an object of {sorted(fields)}")
        if not all(isinstance(value, str) and value for value in data.values()):
            raise ValueError("its fields are not all non-empty strings")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Opened:
    """A record still going on when its window was written (a conversation with no
    ``conversationEnd``, a status with no ``endTime``): tracked until it closes.

    ``key`` names it within its dataset, ``subject`` is the id a refresh filters by (the
    conversation's, the user's) and ``time`` its start, as an API instant."""

    key: str
    subject: str
    time: str

    def to_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "time": self.time}

    @classmethod
    def from_dict(cls, key: str, data: Any) -> Opened:
        if not isinstance(data, dict) or set(data) != {"subject", "time"}:
            raise ValueError("it is not an object of subject and time")
        if not all(isinstance(v, str) and v for v in data.values()):
            raise ValueError("its subject and time are not non-empty strings")
        instant_ms(data["time"])  # an instant, or ValueError
        return cls(key, data["subject"], data["time"])


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One window of one dataset: its interval, state, and the file that holds it (if any)."""

    name: str
    start: str
    end: str
    status: Status
    source: Source | None
    file: str | None  # relative to the output folder, POSIX separators
    records: int = 0
    bytes: int = 0
    sha256: str | None = None
    compression: str = "none"
    job_id: str | None = None
    cursor: str | None = None
    job_interval: str | None = None  # in-progress: the interval of the job the cursor reads
    part_offset: int = 0  # in-progress: the part file's checkpointed length ...
    part_records: int = 0  # ... and the records it holds
    job_expires: str | None = None
    data_availability_date: str | None = None
    taken_at: str | None = None  # a snapshot: when its walk began
    derived_from: str | None = None  # read by ids: the sha256 of the source window's file
    run_id: str = ""
    updated: str = ""
    error: str | None = None
    # Parsed once: planning compares thousands of windows per run.
    start_ms: int = field(init=False, repr=False, compare=False)
    end_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_ms", instant_ms(self.start))
        object.__setattr__(self, "end_ms", instant_ms(self.end))
        if self.status not in _STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.source not in _SOURCES:
            raise ValueError(f"unknown source {self.source!r}")
        if self.compression not in _COMPRESSIONS:
            raise ValueError(f"unknown compression {self.compression!r}")
        if self.start_ms >= self.end_ms:
            raise ValueError(f"window {self.name!r} ends before it starts")
        if self.file is not None:
            relative = PurePosixPath(self.file)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"file {self.file!r} is not inside the output folder")

    def to_dict(self) -> dict[str, Any]:
        """Every field; ``derived_from`` only where set (a version 3 or 4 reader refuses it)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.init and (f.name != "derived_from" or self.derived_from is not None)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowRecord:
        """Build from JSON, checking every field's type; unknown keys are refused so nothing
        unexpected rides along (a file edited by hand is caught here, not mid-run)."""
        extra = sorted(set(data) - _FIELD_TYPES.keys())
        if extra:
            raise ValueError(f"unknown fields {extra}")
        for name, value in data.items():
            kind, optional = _FIELD_TYPES[name]
            if value is None and optional:
                continue
            if not isinstance(value, kind) or isinstance(value, bool):
                wanted = "an integer" if kind is int else "a string"
                raise ValueError(f"field {name!r} is {_json_type(value)}, not {wanted}")
            if isinstance(value, int) and value < 0:
                raise ValueError(f"field {name!r} is negative ({value})")
        missing = [name for name in _REQUIRED if name not in data]
        if missing:
            raise ValueError(f"fields {missing} are missing")
        return cls(**data)


def _field_types() -> dict[str, tuple[type, bool]]:
    """Field name -> (JSON type, whether null is allowed), from the dataclass annotations."""
    types: dict[str, tuple[type, bool]] = {}
    for f in dataclasses.fields(WindowRecord):
        if f.init:
            annotation = str(f.type)
            types[f.name] = (int if annotation.startswith("int") else str, "None" in annotation)
    return types


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "an object"
    )


_FIELD_TYPES = _field_types()
_REQUIRED = [
    f.name
    for f in dataclasses.fields(WindowRecord)
    if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]


class Manifest:
    """Every dataset's windows in one output folder; ``save`` replaces the file atomically."""

    def __init__(
        self,
        out_dir: Path,
        datasets: dict[str, dict[str, WindowRecord]] | None = None,
        org: OrgIdentity | None = None,
        opened: dict[str, dict[str, dict[str, Opened]]] | None = None,
        pruned: dict[str, str] | None = None,
        privacy: dict[str, Any] | None = None,
    ):
        self.out_dir = out_dir
        self._windows: dict[str, dict[str, WindowRecord]] = datasets or {}
        self.org = org  # None until a run that reached the API records it
        # dataset -> window -> key -> a record of that window's file still going on
        self._opened: dict[str, dict[str, dict[str, Opened]]] = opened or {}
        # dataset -> the instant its windows ending at or before it were pruned (API instant)
        self._pruned: dict[str, str] = pruned or {}
        # The privacy profile the files were written with (exporter.privacy); None: none.
        self.privacy = privacy

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """Read ``<out>/manifest.json``; a missing file is an empty manifest."""
        path = out_dir / MANIFEST_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(out_dir)
        except OSError as exc:
            raise output_error(exc, path, "read the manifest") from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _corrupt(path, f"it is not valid JSON ({exc})") from exc
        return cls.from_dict(data, out_dir)

    @classmethod
    def from_dict(cls, data: Any, out_dir: Path) -> Manifest:
        path = out_dir / MANIFEST_NAME
        # The datasets' windows are under "entities", the key's name since format 1.
        if not isinstance(data, dict) or not isinstance(data.get("entities"), dict):
            raise _corrupt(path, "it has no 'entities' object")
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise OutputError(
                f"The manifest {path} has format version {version!r}, but this genesys-export "
                f"reads versions 1 to {READABLE_VERSIONS[-1]}; use the genesys-export that wrote "
                f"it ({data.get('tool', 'unknown')}) or choose another --out."
            )
        datasets: dict[str, dict[str, WindowRecord]] = {}
        dataset = name = ""
        try:
            for dataset, windows in data["entities"].items():
                datasets[dataset] = {}
                for name, fields in windows.items():
                    if not isinstance(fields, dict):
                        raise TypeError(f"it is {_json_type(fields)}, not an object")
                    datasets[dataset][name] = WindowRecord.from_dict({**fields, "name": name})
        except (AttributeError, TypeError, ValueError) as exc:
            raise _corrupt(path, f"the entry {dataset}/{name} is invalid: {exc}") from exc
        try:
            org = None if data.get("org") is None else OrgIdentity.from_dict(data["org"])
        except ValueError as exc:
            raise _corrupt(path, f"its org is invalid: {exc}") from exc
        opened = _opened_from(path, data.get("open"), datasets)
        privacy = data.get("privacy")
        if privacy is not None and not isinstance(privacy, dict):
            raise _corrupt(path, f"its privacy is {_json_type(privacy)}, not an object")
        pruned = _pruned_from(path, data.get("pruned"))
        return cls(out_dir, datasets, org, opened, pruned, privacy)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: windows in time order, each keyed by name (not repeated inside)."""
        datasets = {
            dataset: {
                record.name: {k: v for k, v in record.to_dict().items() if k != "name"}
                for record in self.records(dataset)
            }
            for dataset in sorted(self._windows)
        }
        return {
            "version": self._version(),
            "tool": f"genesys-exporter {__version__}",
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "org": None if self.org is None else dataclasses.asdict(self.org),
            "entities": datasets,
            "open": {
                dataset: {
                    window: {key: o.to_dict() for key, o in sorted(records.items())}
                    for window, records in sorted(windows.items())
                    if records
                }
                for dataset, windows in sorted(self._opened.items())
                if any(windows.values())
            },
            **({"pruned": dict(sorted(self._pruned.items()))} if self._pruned else {}),
            **({"privacy": self.privacy} if self.privacy is not None else {}),
        }

    def _version(self) -> int:
        """The oldest format that holds what this manifest does."""
        by_id = any(r.source == "ids" for records in self._windows.values()
                    for r in records.values())  # fmt: skip
        if self.privacy is not None:
            return PRIVACY_VERSION
        return BY_ID_VERSION if by_id else PRUNED_VERSION if self._pruned else VERSION

    def datasets(self) -> list[str]:
        return sorted(self._windows)

    def get(self, dataset: str, name: str) -> WindowRecord | None:
        return self._windows.get(dataset, {}).get(name)

    def put(self, dataset: str, record: WindowRecord) -> None:
        self._windows.setdefault(dataset, {})[record.name] = record

    def remove(self, dataset: str, name: str) -> None:
        self._windows.get(dataset, {}).pop(name, None)
        self._opened.get(dataset, {}).pop(name, None)

    def opened(self, dataset: str) -> dict[str, dict[str, Opened]]:
        """Window name -> key -> the dataset's records still going on, by window."""
        return {w: dict(records) for w, records in self._opened.get(dataset, {}).items() if records}

    def set_opened(self, dataset: str, window: str, records: Mapping[str, Opened]) -> None:
        """The records still going on in ``window``'s file, replacing what it held before."""
        windows = self._opened.setdefault(dataset, {})
        if records:
            windows[window] = dict(records)
        else:
            windows.pop(window, None)

    def pruned_before(self, dataset: str) -> int | None:
        """Epoch ms up to which the dataset's windows were pruned: every window ending at or
        before it is gone on purpose, and no run exports it again (None: never pruned)."""
        instant = self._pruned.get(dataset)
        return None if instant is None else instant_ms(instant)

    def mark_pruned(self, dataset: str, before: str) -> None:
        """Record that the dataset's windows ending at or before ``before`` (an API instant)
        were pruned; an earlier mark is kept if it is later."""
        current = self.pruned_before(dataset)
        if current is None or instant_ms(before) > current:
            self._pruned[dataset] = before

    def records(self, dataset: str) -> list[WindowRecord]:
        """The dataset's windows sorted by start (then end)."""
        windows = self._windows.get(dataset, {}).values()
        return sorted(windows, key=lambda record: (record.start_ms, record.end_ms))

    def overlapping(self, dataset: str, start_ms: int, end_ms: int) -> list[WindowRecord]:
        """Windows sharing any instant with ``[start_ms, end_ms)``, sorted by start."""
        return [r for r in self.records(dataset) if r.start_ms < end_ms and r.end_ms > start_ms]

    def save(self) -> None:
        """Replace the manifest atomically. Blocking: call it through ``asyncio.to_thread``."""
        data = orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
        write_atomically(self.path, data, "write the manifest")


def _opened_from(
    path: Path, data: Any, datasets: Mapping[str, Mapping[str, WindowRecord]]
) -> dict[str, dict[str, dict[str, Opened]]]:
    """The ``open`` section: dataset -> window -> key -> Opened, each window a recorded one."""
    if data is None:
        return {}
    found: dict[str, dict[str, dict[str, Opened]]] = {}
    where = ""
    try:
        if not isinstance(data, dict):
            raise TypeError("it is not an object")
        for dataset, windows in data.items():
            for window, records in windows.items():
                where = f" {dataset}/{window}"
                if window not in datasets.get(dataset, {}):
                    raise ValueError("it names a window the manifest does not hold")
                found.setdefault(dataset, {})[window] = {
                    key: Opened.from_dict(key, value) for key, value in records.items()
                }
    except (AttributeError, TypeError, ValueError) as exc:
        raise _corrupt(path, f"its open records{where} are invalid: {exc}") from exc
    return found


def _pruned_from(path: Path, data: Any) -> dict[str, str]:
    """The ``pruned`` section: dataset -> the instant its windows were pruned up to."""
    if data is None:
        return {}
    try:
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise TypeError("it is not an object of instants")
        for instant in data.values():
            instant_ms(instant)  # an instant, or ValueError
    except (TypeError, ValueError) as exc:
        raise _corrupt(path, f"its pruned section is invalid: {exc}") from exc
    return dict(data)


def _corrupt(path: Path, why: str) -> OutputError:
    return OutputError(
        f"The manifest {path} cannot be read: {why}; restore it from a backup, or move it "
        "aside to export every window again."
    )
