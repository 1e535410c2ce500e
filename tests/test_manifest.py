"""The manifest on a real disk: atomic saves, exact round trips, clear errors when unreadable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from exporter.errors import OutputError
from exporter.store.manifest import MANIFEST_NAME, VERSION, Manifest, WindowRecord, instant_ms

DAY_MS = 86_400_000


def record(day: int, status: str = "complete", **fields: object) -> WindowRecord:
    """A window for 2026-11-<day>, one day long."""
    name = f"2026-11-{day:02d}"
    values: dict[str, object] = {
        "name": name,
        "start": f"{name}T00:00:00.000Z",
        "end": f"2026-11-{day + 1:02d}T00:00:00.000Z",
        "status": status,
        "source": "jobs",
        "file": f"conversations/{name}.jsonl.gz",
        "compression": "gzip",
    }
    return WindowRecord(**{**values, **fields})  # type: ignore[arg-type]


def test_a_missing_manifest_is_empty(tmp_path) -> None:
    """Loading from a folder without manifest.json gives no records and writes nothing."""
    manifest = Manifest.load(tmp_path)
    assert manifest.records("conversations") == [] and manifest.get("conversations", "x") is None
    assert list(tmp_path.iterdir()) == []


def test_save_round_trips_and_leaves_no_temporary(tmp_path) -> None:
    """A saved manifest loads back equal, is valid JSON with a version, and nothing else is left."""
    manifest = Manifest(tmp_path)
    done = record(1, records=12, bytes=345, sha256="ab" * 32, job_id="j1", run_id="r1")
    progress = record(2, "in-progress", file=None, cursor="cur", part_offset=99, part_records=7)
    manifest.put("conversations", done)
    manifest.put("conversations", progress)
    manifest.put("users", record(1, source=None, file="users/all.jsonl"))
    manifest.save()

    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]
    data = orjson.loads((tmp_path / MANIFEST_NAME).read_bytes())
    assert data["version"] == VERSION and data["tool"].startswith("genesys-exporter ")
    loaded = Manifest.load(tmp_path)
    assert loaded.records("conversations") == [done, progress]
    assert loaded.get("users", "2026-11-01") == manifest.get("users", "2026-11-01")
    assert loaded.to_dict()["entities"] == manifest.to_dict()["entities"]


def test_save_replaces_the_previous_manifest(tmp_path) -> None:
    """A second save replaces the first; removed windows are gone after reloading."""
    manifest = Manifest(tmp_path)
    manifest.put("conversations", record(1))
    manifest.put("conversations", record(2))
    manifest.save()
    manifest.remove("conversations", "2026-11-01")
    manifest.put("conversations", record(2, "provisional", source="query"))
    manifest.save()
    [only] = Manifest.load(tmp_path).records("conversations")
    assert only.name == "2026-11-02" and only.status == "provisional"


def test_a_failed_save_keeps_the_old_manifest_and_no_temporary(tmp_path) -> None:
    """If the rename fails the previous file is untouched and the temporary is removed."""
    (tmp_path / MANIFEST_NAME).mkdir()  # os.replace(file, directory) fails
    manifest = Manifest(tmp_path)
    manifest.put("conversations", record(1))
    with pytest.raises(OutputError, match=MANIFEST_NAME):
        manifest.save()
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_saving_into_a_missing_folder_is_an_output_error(tmp_path) -> None:
    """A manifest whose folder is a regular file gives an OutputError naming the fix."""
    (tmp_path / "out").write_bytes(b"")
    manifest = Manifest(tmp_path / "out")
    with pytest.raises(OutputError, match="choose another --out"):
        manifest.save()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "no 'entities'"),
        (b'{"version": 99, "entities": {}}', "version 99"),
        (
            b'{"version": 1, "entities": {"conversations": {"a": {"start": "x"}}}}',
            "entry conversations/a is invalid",
        ),
    ],
)
def test_an_unreadable_manifest_is_an_output_error(tmp_path, content, match) -> None:
    """Corrupt JSON, a wrong shape, another version or a bad entry name the file and a fix."""
    (tmp_path / MANIFEST_NAME).write_bytes(content)
    with pytest.raises(OutputError, match=match) as caught:
        Manifest.load(tmp_path)
    assert str(tmp_path / MANIFEST_NAME) in str(caught.value)
    assert "--out" in str(caught.value) or "move it aside" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"records": "12"}, "'records' is a string, not an integer"),
        ({"bytes": -5}, "'bytes' is negative"),
        ({"file": 7}, "'file' is an integer, not a string"),
        ({"records": True}, "'records' is a boolean"),
        ({"sha256": ["x"]}, "'sha256' is a list"),
        ({"status": "done"}, "unknown status 'done'"),
        ({"end": "2026-10-01T00:00:00.000Z"}, "ends before it starts"),
    ],
)
def test_fields_edited_by_hand_are_type_checked_on_load(tmp_path, change, match) -> None:
    """A field of the wrong type or out of range names the entry, the field and a fix."""
    entry = {k: v for k, v in {**record(1).to_dict(), **change}.items() if k != "name"}
    data = {"version": VERSION, "entities": {"conversations": {"2026-11-01": entry}}}
    (tmp_path / MANIFEST_NAME).write_bytes(orjson.dumps(data))
    with pytest.raises(OutputError, match="conversations/2026-11-01") as caught:
        Manifest.load(tmp_path)
    assert match in str(caught.value) and "move it aside" in str(caught.value)


def test_unknown_fields_are_refused(tmp_path) -> None:
    """An entry with a field the manifest does not define (say a token) makes it unreadable."""
    entry = {**record(1).to_dict(), "access_token": "abc"}
    data = {"version": VERSION, "entities": {"conversations": {"2026-11-01": entry}}}
    (tmp_path / MANIFEST_NAME).write_bytes(orjson.dumps(data))
    with pytest.raises(OutputError, match="access_token"):
        Manifest.load(tmp_path)


def test_records_are_sorted_and_overlap_is_half_open(tmp_path) -> None:
    """records() sorts by start; overlapping() shares an instant, touching ends do not count."""
    manifest = Manifest(tmp_path)
    for day in (3, 1, 2):
        manifest.put("conversations", record(day))
    assert [r.name for r in manifest.records("conversations")] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    day2 = instant_ms("2026-11-02T00:00:00.000Z")
    overlapping = manifest.overlapping("conversations", day2, day2 + DAY_MS)
    assert [r.name for r in overlapping] == ["2026-11-02"]
    hours = manifest.overlapping("conversations", day2 - 1, day2 + 1)
    assert [r.name for r in hours] == ["2026-11-01", "2026-11-02"]
    assert manifest.overlapping("users", 0, 2**62) == []


def test_window_records_validate_their_fields() -> None:
    """Unknown status, reversed intervals and files outside the folder are refused."""
    assert record(1).start_ms == instant_ms("2026-11-01T00:00:00.000Z") == 1_793_491_200_000
    with pytest.raises(ValueError, match="status"):
        record(1, status="done")
    with pytest.raises(ValueError, match="ends before"):
        record(1, end="2026-10-31T00:00:00.000Z")
    with pytest.raises(ValueError, match="inside the output folder"):
        record(1, file="../elsewhere.jsonl")
    with pytest.raises(ValueError, match="inside the output folder"):
        record(1, file="/etc/passwd")


def test_instants_keep_every_millisecond() -> None:
    """Millisecond parsing uses integers, so no instant is off by one from float rounding."""
    # timestamp() * 1000 gives 1079337347471 here
    assert instant_ms("2004-03-15T07:55:47.472Z") == 1_079_337_347_472


def test_manifest_follows_the_umask(tmp_path: Path) -> None:
    """The saved manifest has mode 0o666 minus the umask."""
    old = os.umask(0o027)
    try:
        Manifest(tmp_path).save()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / MANIFEST_NAME).stat().st_mode) == 0o640
