"""Retention: prune removes old windows' files, manifest records and table rows consistently,
refuses durations that would remove recent days, survives a kill at any step, and the export
never brings the pruned days back."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.datasets import DATASETS, select
from exporter.engine.kinds import kind_of
from exporter.errors import ConfigError, InputError
from exporter.plan import ExportRequest, since_last_start
from exporter.progress import NoProgress
from exporter.prune import PruneRequest, PruneSummary, plan_prune, prune
from exporter.runner import export
from exporter.store.lock import RunLock
from exporter.store.manifest import BY_ID_VERSION, VERSION, Manifest, WindowRecord
from exporter.store.prune import DayFile, window_of
from exporter.tables import TablesRequest, build_tables, sources
from exporter.tables.parquet import relative_path
from exporter.windows import Window, format_instant
from genesys_sandbox import Sandbox
from tests.support import (
    START,
    days,
    exported_ids,
    exporter_settings,
    ground_truth,
    last_json,
    raw_table_rows,
    run_cli,
    tables_sandbox_settings,
)

ROOT = Path(__file__).resolve().parents[1]
NOW = START + days(40)  # 2026-12-11: 39 days back is 2026-11-02, the first day's end
OLD = timedelta(days=39)
# Every dated dataset, in the order a prune lists them.
WINDOWED = tuple(sorted(name for name, d in DATASETS.items() if kind_of(d).dated))


async def _export_all(out: Path) -> None:
    async with Sandbox(tables_sandbox_settings()) as sb:
        settings = exporter_settings(sb, out)
        request = ExportRequest(START, START + days(3), datasets=select("all"))
        summary = await export(settings, request, progress=NoProgress())
        assert summary.status == "ok", summary


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of conversations and user details (records still going on tracked in every
    user-details day), and a snapshot of every snapshot dataset."""
    out = tmp_path_factory.mktemp("export")
    asyncio.run(_export_all(out))
    return out


@pytest.fixture
def out(exported: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(exported, copy)
    return copy


def request(out: Path, older_than: timedelta = OLD, **changes: Any) -> PruneRequest:
    return PruneRequest(out, older_than, **changes)


def locked_prune(out: Path, older_than: timedelta = OLD, **changes: Any) -> PruneSummary:
    with RunLock(out, "test-prune"):
        return prune(request(out, older_than, **changes), now=NOW)


def build(out: Path, **changes: object) -> None:
    build_tables(dataclasses.replace(TablesRequest(out, threads=2), **changes))


def source_windows(out: Path, table: str) -> list[str]:
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    try:
        found = con.execute(f"SELECT DISTINCT source_window FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()
    return [str(w) for (w,) in found]


def assert_tables_exact(out: Path) -> None:
    """Every table holds exactly the rows of the files the manifest lists, and no day before
    2026-11-02 is left in DuckDB or among the Parquet files."""
    raw = raw_table_rows(out)
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    for name, expected in raw.items():
        (count,) = con.execute(f"SELECT count(*) FROM {name}").fetchone() or (0,)
        assert count == len(expected), name
    con.close()
    for table in ("conversations", "segments", "user_presence"):
        assert source_windows(out, table) == ["2026-11-02", "2026-11-03"], table
        assert not (out / "tables" / relative_path("flat", table, "2026-11-01")).exists()
        assert (out / "tables" / relative_path("flat", table, "2026-11-02")).exists()
    assert not list((out / ".tables").rglob("2026-11-01.parquet"))


def assert_pruned_first_day(out: Path) -> None:
    """The first day is gone from disk and from the manifest (records, open records); it is
    recorded as pruned; every other window and file is as the export left it."""
    manifest = Manifest.load(out)
    for dataset in WINDOWED:
        assert [r.name for r in manifest.records(dataset)] == ["2026-11-02", "2026-11-03"]
        assert "2026-11-01" not in manifest.opened(dataset)
        assert manifest.pruned_before(dataset) == Window.from_name("2026-11-02").start_ms
        assert sorted(p.name for p in (out / dataset).iterdir()) == [
            "2026-11-02.jsonl", "2026-11-03.jsonl"
        ]  # fmt: skip
    # Pruned, and holding windows read by id: the format that holds both.
    assert orjson.loads((out / "manifest.json").read_bytes())["version"] == BY_ID_VERSION


# -- what a prune removes


def test_a_prune_removes_the_old_days_files_records_and_open_records(out: Path) -> None:
    """Old days lose their files, records and open records; the summary counts them and bytes."""
    assert "2026-11-01" in Manifest.load(out).opened("user-details")
    sizes = sum((out / d / "2026-11-01.jsonl").stat().st_size for d in WINDOWED)
    summary = locked_prune(out)
    assert summary.status == "pruned" and summary.cutoff == "2026-11-02T00:00:00.000Z"
    assert summary.windows == tuple(f"{d}/2026-11-01" for d in WINDOWED)
    assert (summary.snapshots, summary.leftovers, summary.files) == ((), (), len(WINDOWED))
    assert summary.bytes_freed == sizes
    assert_pruned_first_day(out)


def test_after_a_prune_the_tables_lose_the_days_rows_and_parquet_files(out: Path) -> None:
    """The next build drops the pruned days' rows and Parquet files, and --full then works alike."""
    build(out)
    assert "2026-11-01" in source_windows(out, "conversations")
    locked_prune(out)
    summary = build_tables(TablesRequest(out, threads=2))
    assert sorted(summary.removed) == [f"{d}/2026-11-01" for d in WINDOWED]
    assert_tables_exact(out)
    assert sources.left_out(out, sources.collect(Manifest.load(out))[0]) == []
    full = build_tables(TablesRequest(out, threads=2, full=True))
    assert full.rows == summary.rows
    assert_tables_exact(out)


def test_a_second_prune_with_the_same_cutoff_removes_nothing(out: Path) -> None:
    """Pruning again finds nothing: the status says so and no file is touched."""
    locked_prune(out)
    manifest = (out / "manifest.json").read_bytes()
    again = locked_prune(out)
    assert (again.status, again.windows, again.files) == ("nothing", (), 0)
    assert (out / "manifest.json").read_bytes() == manifest


def test_a_prune_that_would_remove_every_window_is_refused(out: Path) -> None:
    """A cutoff after the newest day (stale folder, wrong clock) is refused; nothing changes."""
    manifest = (out / "manifest.json").read_bytes()
    with pytest.raises(ConfigError) as refused:
        locked_prune(out, OLD - days(3))
    text = str(refused.value)
    assert "would remove every window holding data" in text and "2026-11-03" in text
    assert "clock is wrong" in text and "Export first" in text
    assert (out / "manifest.json").read_bytes() == manifest
    assert (out / "conversations/2026-11-01.jsonl").exists()


def test_a_folder_without_a_manifest_is_never_pruned(tmp_path: Path) -> None:
    """A mistyped --out (a folder with no manifest) is refused before anything is read."""
    (tmp_path / "conversations").mkdir()
    (tmp_path / "conversations/2020-01-01.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match="not an export folder"):
        prune(request(tmp_path), now=NOW)
    assert (tmp_path / "conversations/2020-01-01.jsonl").exists()


# -- which durations are refused


@pytest.mark.parametrize(
    ("older_than", "changes", "named"),
    [
        (timedelta(hours=20), {"open_horizon": timedelta(hours=1)}, "the cutoff is a UTC"),
        (days(10), {}, "jobs.open_horizon 14d"),
        (days(20), {"window": days(30)}, "jobs.window 30d"),
        (days(20), {"lookback": days(21)}, "export.lookback 21d"),
    ],
)
def test_a_duration_under_the_shortest_safe_one_is_refused_naming_it(
    tmp_path: Path, older_than: timedelta, changes: dict[str, object], named: str
) -> None:
    """Under a day, the window, the lookback or the open horizon: refused, naming which binds."""
    with pytest.raises(ConfigError) as refused:
        request(tmp_path, older_than, **changes)
    assert named in str(refused.value) and "give at least" in str(refused.value)


def test_keep_snapshots_below_one_is_refused(tmp_path: Path) -> None:
    """The newest snapshot is what the tables read: keeping none is refused."""
    with pytest.raises(ConfigError, match="keep_snapshots 0 must be at least 1"):
        request(tmp_path, keep_snapshots=0)


# -- decisions, without I/O


def record(name: str, status: str = "complete", listing: bool = False) -> WindowRecord:
    window = Window.from_name(name)
    with_file = status in ("complete", "provisional")
    return WindowRecord(
        name=name, start=format_instant(window.start), end=format_instant(window.end),
        status=status, source="listing" if listing else "jobs",  # type: ignore[arg-type]
        file=f"x/{name}.jsonl" if with_file else None,
    )  # fmt: skip


def day_file(filename: str) -> DayFile:
    window = window_of(filename)
    assert window is not None, filename
    return DayFile(f"x/{filename}", window.name, window.end_ms, 10)


def manifest_of(dataset: str, records: list[WindowRecord]) -> Manifest:
    manifest = Manifest(Path("/nowhere"))
    for r in records:
        manifest.put(dataset, r)
    return manifest


CUTOFF = datetime(2026, 11, 3, tzinfo=UTC)


def test_old_windows_go_whatever_their_status_with_their_part_files() -> None:
    """Old in-progress and failed windows go with their part files; a kept window's files stay."""
    records = [record("2026-11-01", "in-progress"), record("2026-11-02", "failed"),
               record("2026-11-03", "in-progress")]  # fmt: skip
    files = [day_file(n) for n in (".2026-11-01.jsonl.part", "2026-11-01.jsonl",
                                   ".2026-11-02.jsonl.gz.merge.part", ".2026-11-03.jsonl.part",
                                   "2026-11-03.jsonl")]  # fmt: skip
    plan = plan_prune(manifest_of("x", records), {"x": files}, cutoff=CUTOFF, keep_snapshots=7)
    assert [r.label for r in plan.windows] == ["x/2026-11-01", "x/2026-11-02"]
    assert [f.path for f in plan.files] == [
        "x/.2026-11-01.jsonl.part", "x/2026-11-01.jsonl", "x/.2026-11-02.jsonl.gz.merge.part"
    ]  # fmt: skip
    assert plan.leftovers == () and plan.marks == {"x": Window.from_name("2026-11-03").start_ms}


def test_unlisted_files_older_than_the_cutoff_or_the_mark_are_swept_as_leftovers() -> None:
    """Unlisted files ending by the cutoff or an earlier mark are leftovers; others stay."""
    manifest = manifest_of("x", [record("2026-11-05")])
    manifest.mark_pruned("x", "2026-11-04T00:00:00.000Z")
    files = [day_file(n) for n in ("2026-10-30.jsonl.zst", ".2026-11-03.jsonl.part",
                                   "2026-11-04.jsonl", "2026-11-05.jsonl")]  # fmt: skip
    plan = plan_prune(manifest, {"x": files}, cutoff=CUTOFF, keep_snapshots=7)
    assert plan.windows == () and [f.path for f in plan.leftovers] == [
        "x/2026-10-30.jsonl.zst", "x/.2026-11-03.jsonl.part"
    ]  # fmt: skip
    assert window_of("notes.txt") is None and window_of(".2026-11-01.jsonl") is None
    assert window_of("2026-11-1.jsonl") is None


def test_snapshots_keep_their_newest_days_whatever_their_age() -> None:
    """A snapshot dataset keeps its newest days with a file however old; older ones go."""
    names = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"]
    records = [record(n, listing=True) for n in names[:4]] + [record(names[4], "failed", True)]
    files = [day_file(f"{n}.jsonl") for n in ["2026-09-30", *names[:4]]]
    plan = plan_prune(manifest_of("users", records), {"users": files}, cutoff=CUTOFF,
                      keep_snapshots=2)  # fmt: skip
    assert [r.label for r in plan.snapshots] == [
        "users/2026-10-01", "users/2026-10-02", "users/2026-10-05"
    ]  # fmt: skip
    assert [f.path for f in plan.leftovers] == ["x/2026-09-30.jsonl"]
    assert plan.windows == () and plan.marks == {"users": Window.from_name("2026-10-03").start_ms}
    kept_all = plan_prune(manifest_of("users", records[:4]), {"users": files}, cutoff=CUTOFF,
                          keep_snapshots=7)  # fmt: skip
    assert kept_all.snapshots == () and kept_all.files == plan.leftovers


DAY_NAMES = [f"2026-10-{d:02d}" for d in range(1, 29)]


@given(
    listed=st.dictionaries(
        st.sampled_from(DAY_NAMES),
        st.sampled_from(["complete", "provisional", "in-progress", "failed"]),
    ),
    unlisted=st.sets(st.sampled_from(DAY_NAMES)),
    cutoff_day=st.integers(1, 28),
)
def test_a_prune_plan_never_touches_a_kept_window_and_leaves_nothing_old(
    listed: dict[str, str], unlisted: set[str], cutoff_day: int
) -> None:
    """Any plan removes every old window and file and never a file of a window still listed."""
    cutoff = datetime(2026, 10, cutoff_day, tzinfo=UTC)
    manifest = manifest_of("x", [record(n, s) for n, s in listed.items()])
    names = set(listed) | unlisted
    files = [day_file(f"{n}.jsonl") for n in names] + [day_file(f".{n}.jsonl.part") for n in names]
    plan = plan_prune(manifest, {"x": files}, cutoff=cutoff, keep_snapshots=7)
    cutoff_ms = Window(cutoff, cutoff + days(1)).start_ms
    gone = {r.record.name for r in plan.windows}
    assert gone == {n for n in listed if Window.from_name(n).end_ms <= cutoff_ms}
    kept = set(listed) - gone
    assert not any(f.window in kept for f in plan.files)
    assert {f.path for f in plan.files} == {f.path for f in files if f.end_ms <= cutoff_ms}


# -- the manifest's mark, and the export that never brings pruned days back


def test_the_mark_round_trips_and_only_a_pruned_manifest_is_format_4(tmp_path: Path) -> None:
    """The mark round-trips (the later kept), makes the manifest format 4, and is checked."""
    manifest = Manifest(tmp_path)
    manifest.save()
    assert orjson.loads((tmp_path / "manifest.json").read_bytes())["version"] == VERSION == 3
    manifest.mark_pruned("conversations", "2026-11-02T00:00:00.000Z")
    manifest.mark_pruned("conversations", "2026-10-01T00:00:00.000Z")
    manifest.save()
    data = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert data["version"] == 4 and data["pruned"] == {"conversations": "2026-11-02T00:00:00.000Z"}
    again = Manifest.load(tmp_path)
    assert again.pruned_before("conversations") == Window.from_name("2026-11-02").start_ms
    data["pruned"] = {"conversations": "yesterday"}
    (tmp_path / "manifest.json").write_bytes(orjson.dumps(data))
    with pytest.raises(Exception, match="its pruned section is invalid"):
        Manifest.load(tmp_path)


def test_since_last_takes_pruned_history_as_complete() -> None:
    """--since-last passes over windows behind the mark and sees a day missing after it as a gap."""
    mark = datetime(2026, 11, 2, tzinfo=UTC)
    kept = [record("2026-11-02"), record("2026-11-03")]
    assert since_last_start([record("2026-11-01", "failed"), *kept], mark) == START + days(3)
    assert since_last_start([record("2026-11-03")], mark) == mark
    assert since_last_start([], mark) == mark
    assert since_last_start([record("2026-11-03")]) == START + days(3)


async def test_after_a_prune_the_scheduled_command_brings_no_pruned_day_back(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a prune the scheduled command exports nothing complete and never a pruned day."""
    settings = exporter_settings(sandbox, tmp_path)
    end = START + days(3)
    first = await export(settings, ExportRequest(START, end), progress=NoProgress())
    assert first.status == "ok"
    with RunLock(tmp_path, "test-prune"):
        prune(PruneRequest(tmp_path, OLD - days(1)), now=NOW)
    jobs = sandbox.stats().jobs_created
    scheduled = ExportRequest(START, end, since_last=True)
    again = await export(settings, scheduled, progress=NoProgress())
    assert (again.status, again.windows, sandbox.stats().jobs_created) == ("ok", 0, jobs)
    lookback = dataclasses.replace(scheduled, lookback=days(2))
    redone = await export(settings, lookback, progress=NoProgress())
    assert (redone.status, redone.windows) == ("ok", 1)
    jobs = sandbox.stats().jobs_created
    caplog.clear()
    explicit = await export(settings, ExportRequest(START, end), progress=NoProgress())
    assert (explicit.status, explicit.windows, sandbox.stats().jobs_created) == ("ok", 0, jobs)
    (moved,) = [r.getMessage() for r in caplog.records if "were pruned" in r.getMessage()]
    assert "2026-11-03T00:00:00.000Z" in moved and "--force" in moved
    assert [r.name for r in Manifest.load(tmp_path).records("conversations")] == ["2026-11-03"]
    assert set(exported_ids(tmp_path)) == ground_truth(sandbox, START + days(2), end)


async def test_a_dataset_pruned_to_nothing_resumes_at_the_mark_not_at_start(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A dataset pruned to nothing continues after the mark, not from --start."""
    settings = exporter_settings(sandbox, tmp_path)
    both = select("conversations,user-details")
    await export(settings, ExportRequest(START, START + days(1), datasets=both),
                 progress=NoProgress())  # fmt: skip
    await export(settings, ExportRequest(START, START + days(3)), progress=NoProgress())
    with RunLock(tmp_path, "test-prune"):
        prune(PruneRequest(tmp_path, OLD), now=NOW)
    assert Manifest.load(tmp_path).records("user-details") == []
    details = select("user-details")
    request_ = ExportRequest(START, START + days(3), since_last=True, datasets=details)
    summary = await export(settings, request_, progress=NoProgress())
    assert summary.status == "ok", summary.error
    names = [r.name for r in Manifest.load(tmp_path).records("user-details")]
    assert names == ["2026-11-02", "2026-11-03"]


# -- a kill at any step

KILL_SCRIPT = """
import os, signal, sys
from datetime import datetime, timedelta
from pathlib import Path
from exporter.prune import PruneRequest, prune
from exporter.store.lock import RunLock

class KillAt:
    def step(self, name, detail):
        if name == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)

out = Path(sys.argv[1])
with RunLock(out, "killed-prune"):
    prune(PruneRequest(out, timedelta(days=39)), now=datetime.fromisoformat(sys.argv[3]),
          observer=KillAt())
"""


@pytest.mark.parametrize("step", ["planned", "manifest-saved", "file-removed", "files-removed"])
def test_a_prune_killed_at_any_step_leaves_a_folder_every_command_handles(
    out: Path, step: str
) -> None:
    """SIGKILLed at any step: builds work, the next prune finishes, the tables end exact."""
    build(out)
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(out), step, NOW.isoformat()],
                            cwd=ROOT, capture_output=True, timeout=60)  # fmt: skip
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    build(out)  # whatever the kill left, an incremental build works
    finished = locked_prune(out)
    if step == "planned":
        assert finished.windows and not finished.leftovers
    elif step in ("manifest-saved", "file-removed"):
        assert finished.windows == () and finished.leftovers
    else:
        assert finished.status == "nothing"
    assert_pruned_first_day(out)
    build(out)
    assert_tables_exact(out)
    build(out, full=True)
    assert_tables_exact(out)


# -- the command line


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    config = tmp_path / "empty.toml"
    config.write_text("")
    return config


def older_than_to_first_day_end() -> str:
    """The --older-than whose cutoff, from today, is 2026-11-02: the first day goes."""
    return f"{(datetime.now(UTC).date() - date(2026, 11, 2)).days}d"


def test_the_cli_prunes_then_builds_the_tables_and_ends_with_a_json_summary(
    out: Path, empty_config: Path
) -> None:
    """The CLI prunes, updates the tables, says both and ends with a summary of both."""
    build(out)
    done = run_cli("prune", "--config", str(empty_config), "--out", str(out),
                   "--older-than", older_than_to_first_day_end())  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = last_json(done)
    assert (summary["status"], summary["exit_code"]) == ("ok", 0)
    assert summary["prune"]["windows"] == [f"{d}/2026-11-01" for d in WINDOWED]
    assert sorted(summary["tables"]["removed"]) == summary["prune"]["windows"]
    pruned, built = done.stderr.splitlines()
    expected = f"pruned {len(WINDOWED)} windows and 0 snapshot days that ended by 2026-11-02"
    assert f"{expected} (the cutoff)" in pruned
    assert "freed" in pruned and "removed conversations/2026-11-01" in built
    assert_pruned_first_day(out)
    assert_tables_exact(out)
    assert not (out / ".genesys-export.lock").exists()


def test_a_dry_run_lists_what_would_go_and_changes_nothing(out: Path, empty_config: Path) -> None:
    """--dry-run lists what would go, takes no lock and changes nothing."""
    manifest = (out / "manifest.json").read_bytes()
    with RunLock(out, "a-running-export"):  # a dry run needs no lock: it works meanwhile
        done = run_cli("prune", "--config", str(empty_config), "--out", str(out),
                       "--older-than", older_than_to_first_day_end(), "--dry-run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:-1] == [f"window    {d}/2026-11-01" for d in WINDOWED]
    assert last_json(done)["prune"]["status"] == "dry-run" and last_json(done)["tables"] is None
    assert f"would prune {len(WINDOWED)} windows" in done.stderr and "to free" in done.stderr
    assert (out / "manifest.json").read_bytes() == manifest
    assert (out / "conversations/2026-11-01.jsonl").exists()


def test_retention_keep_in_the_config_is_the_default_duration(out: Path, tmp_path: Path) -> None:
    """[retention] keep is the default --older-than; with neither, exit 2 says what to give."""
    config = tmp_path / "keep.toml"
    config.write_text(f'[retention]\nkeep = "{older_than_to_first_day_end()}"\n')
    done = run_cli("prune", "--config", str(config), "--out", str(out), "--dry-run")
    assert last_json(done)["prune"]["windows"] == [f"{d}/2026-11-01" for d in WINDOWED]
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    refused = run_cli("prune", "--config", str(empty), "--out", str(out))
    assert refused.returncode == 2 and "give --older-than" in last_json(refused)["error"]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--older-than", "3d"], 2, "jobs.open_horizon 14d"),
        (["--older-than", "3x"], 2, "--older-than"),
        (["--older-than", "400d"], 75, "Another export"),
    ],
)
def test_refusals_are_one_line_with_a_json_summary(
    out: Path, empty_config: Path, args: list[str], code: int, needle: str
) -> None:
    """A refused duration (2) or a held lock (75): one error line, the summary, nothing changed."""
    manifest = (out / "manifest.json").read_bytes()
    with RunLock(out, "a-running-export"):
        done = run_cli("prune", "--config", str(empty_config), "--out", str(out), *args)
    assert done.returncode == code and "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "error" in line]
    assert needle in line
    summary = last_json(done)
    assert summary["exit_code"] == code and summary["prune"] is None
    assert (out / "manifest.json").read_bytes() == manifest


def test_the_cli_sandbox_env_is_not_needed(out: Path, empty_config: Path) -> None:
    """prune reads no credentials: it runs with no GENESYSCLOUD_ variable at all."""
    done = run_cli("prune", "--config", str(empty_config), "--out", str(out),
                   "--older-than", "400d")  # fmt: skip
    assert done.returncode == 0 and last_json(done)["prune"]["status"] == "nothing"


def test_every_prune_flag_and_key_is_documented_in_the_readme() -> None:
    """Every prune flag and [retention] key is in the README's Retention section."""
    from exporter.cli import build_parser
    from exporter.config_rules import RULES

    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Retention\n", 1)[1].split("\n## ", 1)[0]
    parser = build_parser()
    command = parser._subparsers._group_actions[0].choices["prune"]  # type: ignore[union-attr]
    flags = [f for a in command._actions for f in a.option_strings if f.startswith("--")]
    # -v and --log-format are every command's, documented in the CLI reference
    for flag in [f for f in flags if f not in ("--help", "--config", "--verbose", "--log-format")]:
        assert flag in section, flag
    for key in RULES["retention"]:
        assert key in section, key
    assert "genesys-export prune   [--out DIR]" in readme
