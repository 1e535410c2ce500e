"""Tables built from real sandbox exports: each holds exactly what the raw JSON holds, keys are
unique, a re-exported day replaces its rows, a killed build leaves the old database usable, the
Parquet files read back the same, and drift or a hand-edited file are handled as documented."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from exporter.datasets import select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.lock import RunLock
from exporter.store.manifest import Manifest
from exporter.tables import TABLES, BuildSummary, TablesRequest, build_tables, sources, specs
from exporter.tables.parquet import relative_path
from exporter.tables.request import Limits, parse_size
from exporter.tables.sources import Built, Source
from exporter.tables.specs import Table
from genesys_sandbox import Sandbox
from tests.support import (
    START,
    TABLES_DATA,
    TABLES_WATERMARK,
    days,
    exporter_settings,
    put_window_file,
    raw_lines,
    raw_metric_sum,
    raw_table_rows,
    sandbox_settings,
    tables_sandbox_settings,
)

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_TABLES = [t for t in TABLES.values() if t.snapshot and t.parent is None]
SNAPSHOT_PARTS = [t for t in TABLES.values() if t.snapshot and t.parent is not None]


async def export_into(out: Path, sb: Sandbox, datasets: str = "all", first_day: int = 0,
                      **output: object) -> None:  # fmt: skip
    """Export the sandbox's days from ``first_day`` (0: the first) to the third."""
    settings = exporter_settings(sb, out, output=output) if output else exporter_settings(sb, out)
    request = ExportRequest(START + days(first_day), START + days(3), datasets=select(datasets))
    summary = await export(settings, request, progress=NoProgress())
    assert summary.status == "ok", summary


async def _export_once(out: Path) -> None:
    async with Sandbox(tables_sandbox_settings()) as sb:
        await export_into(out, sb)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of conversations (the third provisional: past the watermark) and of user
    details (a day holding statuses still going on is provisional too), and every snapshot."""
    out = tmp_path_factory.mktemp("export")
    asyncio.run(_export_once(out))
    return out


@pytest.fixture
def out(exported: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(exported, copy)
    return copy


def build(out: Path, **changes: object) -> BuildSummary:
    return build_tables(dataclasses.replace(TablesRequest(out, threads=2), **changes))


@pytest.fixture(scope="module")
def built(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build of the export, shared by the tests that only read it."""
    copy = tmp_path_factory.mktemp("built") / "export"
    shutil.copytree(exported, copy)
    build(copy)
    return copy


@pytest.fixture
def db(built: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(built / "genesys.duckdb"), read_only=True)
    yield con
    con.close()


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[object, ...]]:
    return con.execute(query).fetchall()


def table_keys(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[object, ...]]:
    key = ", ".join(TABLES[table].key)
    return rows(con, f"SELECT {key} FROM {table}")


def test_the_export_crosses_midnight_and_carries_a_provisional_day(exported: Path) -> None:
    """The fixture is what the other tests claim: conversations that end the next UTC day,
    and a provisional window."""
    statuses = {r.name: r.status for r in Manifest.load(exported).records("conversations")}
    assert statuses == {"2026-11-01": "complete", "2026-11-02": "complete",
                        "2026-11-03": "provisional"}  # fmt: skip
    crossing = [c for c in raw_lines(exported, "conversations")
                if c.get("conversationEnd", "")[:10] > c["conversationStart"][:10]]  # fmt: skip
    assert len(crossing) >= 2


def test_each_table_holds_exactly_the_rows_of_the_raw_json(built: Path, db) -> None:
    """Row count and key set of every conversation, user-details and workforce table equal
    what the raw lines hold, counted with orjson; every key is unique and never null."""
    raw = raw_table_rows(built)
    for name, expected in raw.items():
        assert expected, name
        got = table_keys(db, name)
        if name.startswith("user_"):
            got = [(u, t.isoformat(timespec="milliseconds").replace("+00:00", "Z"))  # type: ignore[attr-defined]
                   for u, t in got]  # fmt: skip
        if name.startswith(("schedule_", "adherence_")):  # the unit-local date is a DATE
            got = [(key[0], key[1].isoformat(), *key[2:]) for key in got]  # type: ignore[attr-defined]
        assert len(got) == len(expected), name
        assert sorted(got) == sorted(expected), name
        assert len(set(got)) == len(got), name
        assert all(None not in key for key in got), name


def test_every_snapshot_table_holds_the_newest_snapshot_keyed_by_id(built: Path, db) -> None:
    """Each snapshot table has one row per entity of the newest snapshot file (per parent and
    entity where it is listed per parent: queue members, unit users, activity codes), unique
    keys, and the snapshot's day."""
    for table in SNAPSHOT_TABLES:
        lines = raw_lines(built, table.dataset)
        fields = {c.name: c.field for c in table.columns}  # key columns are top-level fields
        expected = {tuple(line[fields[k]] for k in table.key) for line in lines}
        got = table_keys(db, table.name)
        assert len(got) == len(lines) == len(set(got)) and set(got) == expected, table.name
        (record,) = Manifest.load(built).records(table.dataset)
        days_ = rows(db, f"SELECT DISTINCT snapshot_date::VARCHAR FROM {table.name}")
        assert days_ == [(record.name,)], table.name


def nested_keys(table: Table, lines: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    """The keys a table's rows must have, read from the raw lines down its parents' fields."""

    def own(t: Table, obj: dict[str, Any]) -> tuple[object, ...]:
        fields = {c.name: c.path for c in t.columns}
        values = []
        for name in t.own_key:
            value: Any = obj
            for part in fields[name]:
                value = value[part]
            values.append(value)
        return tuple(values)

    def walk(t: Table) -> list[tuple[tuple[object, ...], dict[str, Any]]]:
        if t.parent is None:
            return [(own(t, line), line) for line in lines]
        assert t.field is not None
        found = []
        for key, parent in walk(t.parent):
            children: Any = parent
            for part in t.field.split("."):
                children = children.get(part, {}) if isinstance(children, dict) else {}
            found += [((*key, *own(t, child)), child) for child in children or []]
        return found

    return [key for key, _ in walk(table)]


def test_every_snapshot_part_holds_the_objects_of_its_parents_field(built: Path, db) -> None:
    """The forms' question groups, questions and answer options: one row per object in the
    newest snapshot, keyed by its parents' ids and its own."""
    for table in SNAPSHOT_PARTS:
        expected = nested_keys(table, raw_lines(built, table.dataset))
        got = table_keys(db, table.name)
        assert len(got) == len(set(got)) and sorted(got) == sorted(expected), table.name
        assert expected, table.name


def test_metric_totals_equal_the_raw_sums(built: Path, db) -> None:
    """The sum of tTalk (and of tHandle) over the metrics table equals the sum over the raw
    records."""
    for name in ("tTalk", "tHandle"):
        ((total,),) = rows(db, f"SELECT sum(value) FROM metrics WHERE name = '{name}'")
        assert total == raw_metric_sum(built, name) > 0, name


def test_columns_are_snake_case_typed_and_utc(db) -> None:
    """Columns follow the API's names in snake_case; timestamps are TIMESTAMPTZ instants."""
    types = dict(rows(db, "SELECT column_name, data_type FROM duckdb_columns() "
                          "WHERE table_name = 'segments'"))  # fmt: skip
    assert types["segment_start"] == "TIMESTAMP WITH TIME ZONE"
    assert types["queue_id"] == "VARCHAR" and types["segment_index"] == "BIGINT"
    ((first,),) = rows(db, "SELECT min(conversation_start) FROM conversations")
    assert first.utcoffset().total_seconds() == 0 or first.tzinfo is not None  # type: ignore[union-attr]
    ((utc,),) = rows(db, "SELECT strftime(timezone('UTC', min(conversation_start)), '%Y-%m-%d') "
                         "FROM conversations")  # fmt: skip
    assert utc == "2026-11-01"


def test_the_views_name_queues_users_and_wrap_up_codes(built: Path, db) -> None:
    """segments_named and metrics_named keep every row and resolve every name the snapshots
    hold."""
    for view, table in (("segments_named", "segments"), ("metrics_named", "metrics")):
        assert rows(db, f"SELECT count(*) FROM {view}") == rows(db, f"SELECT count(*) FROM {table}")
    missing = rows(db, "SELECT count(*) FROM segments_named WHERE queue_id IS NOT NULL "
                       "AND queue_name IS NULL")  # fmt: skip
    assert missing == [(0,)]
    named = rows(db, "SELECT count(*) FROM metrics_named WHERE user_name IS NOT NULL "
                     "AND wrap_up_name IS NOT NULL AND queue_name IS NOT NULL")  # fmt: skip
    assert named[0][0] > 0


def test_a_second_build_with_nothing_changed_reads_nothing(out: Path) -> None:
    """Unchanged day files are not read again; the summary says the tables are up to date."""
    first = build(out)
    dated = {t.dataset for t in specs.ALL if not t.snapshot}  # conversations, ..., schedules
    days_ = 3 * len(dated)
    assert first.status == "built" and len(first.built) == days_ + len(SNAPSHOT_TABLES)
    again = build(out)
    assert again.status == "up-to-date" and again.built == () and again.records == 0
    assert again.rows == first.rows


async def test_a_reexported_day_replaces_its_rows_exactly(tmp_path: Path) -> None:
    """The provisional day exported again (complete, now with participant attributes) is the
    only window built again, and its rows are replaced: counts equal the raw JSON, no key
    twice, the other days untouched."""
    async with Sandbox(tables_sandbox_settings()) as sb:
        await export_into(tmp_path, sb)
        build(tmp_path)
        before = raw_table_rows(tmp_path)
        sb.update(availability_date=START + days(4))
        # Conversations only: a snapshot taken again is today's file written again, and a
        # per-parent listing's lines come in the order its parents' pages arrive, so its
        # bytes (and the build's digest of them) may differ with the same entities.
        await export_into(tmp_path, sb, datasets="conversations")
    summary = build(tmp_path)
    assert summary.built == ("conversations/2026-11-03",)
    after = raw_table_rows(tmp_path)
    assert len(after["participant_attributes"]) > len(before["participant_attributes"])
    con = duckdb.connect(str(tmp_path / "genesys.duckdb"), read_only=True)
    for name in ("conversations", "participants", "participant_attributes", "sessions",
                 "segments", "metrics"):  # fmt: skip
        got = table_keys(con, name)
        assert sorted(got) == sorted(after[name]) and len(set(got)) == len(got), name
    con.close()


def test_a_window_gone_from_the_manifest_loses_its_rows_and_files(out: Path) -> None:
    """A window whose record and file are both gone (what pruning a day does) is removed
    from every table and its Parquet files are deleted."""
    build(out)
    manifest = Manifest.load(out)
    manifest.remove("conversations", "2026-11-02")
    manifest.save()
    (out / "conversations/2026-11-02.jsonl").unlink()
    summary = build(out)
    assert summary.removed == ("conversations/2026-11-02",) and summary.built == ()
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    for name in ("conversations", "segments", "metrics"):
        windows = rows(con, f"SELECT DISTINCT source_window FROM {name} ORDER BY 1")
        assert windows == [("2026-11-01",), ("2026-11-03",)], name
    con.close()
    assert not (out / "tables" / relative_path("flat", "segments", "2026-11-02")).exists()
    assert (out / "tables" / relative_path("flat", "segments", "2026-11-01")).exists()


@pytest.mark.parametrize("layout", ["flat", "hive"])
def test_parquet_files_read_back_with_the_same_rows(out: Path, layout: str) -> None:
    """Every table's Parquet files, one per table and day file, hold exactly its rows; a
    change of layout rewrites them all and sweeps the files of the old one."""
    if layout == "hive":
        build(out, layout="flat")
    build(out, layout=layout)
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    for name in TABLES:
        windows = [w for (w,) in rows(con, "SELECT window_name FROM _build_sources WHERE "
                                           f"dataset = '{TABLES[name].dataset}'")]  # fmt: skip
        files = [str(out / "tables" / relative_path(layout, name, w))  # type: ignore[arg-type]
                 for w in windows]  # fmt: skip
        assert files and all(Path(f).exists() for f in files), name
        listed = ", ".join(f"'{f}'" for f in files)
        parquet = f"read_parquet([{listed}], hive_partitioning = false)"
        for a, b in ((name, parquet), (parquet, name)):
            assert rows(con, f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})") == [(0,)]
        assert rows(con, f"SELECT count(*) FROM {parquet}") == rows(
            con, f"SELECT count(*) FROM {name}"
        )
    con.close()
    if layout == "hive":
        assert (out / "tables/segments/date=2026-11-01/part.parquet").exists()
        assert not list((out / "tables").rglob("2026-11-01.parquet"))


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from exporter.tables import TablesRequest, build_tables

class KillAt:
    def step(self, name, detail):
        if name == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)

build_tables(TablesRequest(Path(sys.argv[1]), threads=2), KillAt())
"""


@pytest.mark.parametrize(
    ("step", "database", "parquet"),
    [
        ("window", "old", "old"),
        ("parquet-written", "old", "old"),  # the new version written, not switched to
        ("parquet-published", "old", "new"),
        ("database-swapped", "new", "new"),
    ],
)
def test_a_build_killed_at_any_step_leaves_a_whole_database_and_one_builds_parquet(
    out: Path, tmp_path: Path, step: str, database: str, parquet: str
) -> None:
    """A rebuild SIGKILLed after a window, with its Parquet version written, after switching
    to it, or after swapping the database leaves a whole database (the old one until the
    swap) and Parquet files that are one build's in every table (the old set until the
    switch, the new one after), never a mix; the next build finishes, exact, and cleans up."""
    first = build(out)
    shutil.copyfile(out / "genesys.duckdb", tmp_path / "old.duckdb")
    lines = (out / "conversations/2026-11-03.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-03", lines[::2], status="provisional")
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(out), step], cwd=ROOT,
                            capture_output=True, timeout=60)  # fmt: skip
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    left = table_counts(out / "genesys.duckdb")
    shutil.copytree(out / "tables", tmp_path / "seen")  # what readers saw: the set linked then
    again = build(out)
    assert again.built == (("conversations/2026-11-03",) if database == "old" else ())
    assert left == (first.rows if database == "old" else again.rows)
    assert again.rows["conversations"] == first.rows["conversations"] - len(lines) // 2
    shutil.copyfile(out / "genesys.duckdb", tmp_path / "new.duckdb")
    builds = {"old": tmp_path / "old.duckdb", "new": tmp_path / "new.duckdb"}
    assert parquet_matches(tmp_path / "seen", builds) == {parquet}
    assert parquet_matches(out / "tables", builds) == {"new"}
    assert not list(out.glob(".genesys.duckdb*")) and not (out / ".tables.switch").exists()
    assert len(list((out / ".tables").iterdir())) == 1


def parquet_matches(tables: Path, databases: dict[str, Path]) -> set[str]:
    """The databases whose every table equals, row for row, what its Parquet files under
    ``tables`` hold (``out/tables``: read as a reader would, a glob through the link)."""
    con = duckdb.connect()
    matching = set(databases)
    for alias, path in databases.items():
        con.execute(f"ATTACH '{path}' AS {alias} (READ_ONLY)")
    for table in TABLES:
        files = f"read_parquet('{tables}/{table}/**/*.parquet', hive_partitioning = false)"
        for alias in list(matching):
            theirs = f"{alias}.{table}"
            for a, b in ((files, theirs), (theirs, files)):
                if rows(con, f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})") != [(0,)]:
                    matching.discard(alias)
    con.close()
    return matching


TERM_SCRIPT = """
import os, signal, sys
from exporter import cli
from exporter.tables import report

def term_at(self, name, detail):
    if name == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGTERM)

report.Silent.step = term_at
sys.exit(cli.main(["tables", "--out", sys.argv[1]]))
"""


@pytest.mark.parametrize("step", ["window", "parquet-written"])
def test_sigterm_stops_a_build_with_130_and_leaves_nothing_behind(out: Path, step: str) -> None:
    """``genesys-export tables`` stopped by SIGTERM (a CronJob's grace period, systemd, timeout)
    exits 130 saying the database is as it was, discards its copy aside and its unpublished
    Parquet files at once, and leaves the previous database and files as they were."""
    first = build(out)
    before = {p: p.read_bytes() for p in (out / "tables").rglob("*.parquet")}
    lines = (out / "conversations/2026-11-02.jsonl").read_bytes().splitlines()
    kept = lines[: len(lines) // 2]
    put_window_file(out, "conversations", "2026-11-02", kept)
    stopped = subprocess.run([sys.executable, "-c", TERM_SCRIPT, str(out), step], cwd=ROOT,
                             capture_output=True, timeout=60)  # fmt: skip
    assert stopped.returncode == 130, stopped.stderr.decode()[-2000:]
    assert "as the last build left it" in stopped.stderr.decode()
    assert orjson.loads(stopped.stdout.splitlines()[-1])["status"] == "interrupted"
    assert not list(out.glob(".genesys.duckdb*")) and not list(out.rglob("*.tmp"))
    assert {p: p.read_bytes() for p in (out / "tables").rglob("*.parquet")} == before
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    for name, count in first.rows.items():
        assert rows(con, f"SELECT count(*) FROM {name}") == [(count,)], name
    con.close()
    again = build(out)
    assert again.built == ("conversations/2026-11-02",)
    assert again.rows["conversations"] == first.rows["conversations"] - (len(lines) - len(kept))


def test_a_top_level_field_the_api_adds_lands_in_extra_and_a_changed_type_is_lenient(
    out: Path,
) -> None:
    """A hand-edited line with a new top-level field, a new segment field and a field whose
    type changed (manifest updated, as a re-export would) builds: the new top-level field is
    in `extra`, the changed value is NULL, nothing else is lost."""
    path = out / "conversations/2026-11-02.jsonl"
    lines = path.read_bytes().splitlines()
    edited = orjson.loads(lines[0])
    edited["brandNewField"] = {"x": 1}
    edited["participants"][0]["sessions"][0]["segments"][0]["segmentNewField"] = True
    edited["divisionIds"] = "no longer a list"
    lines[0] = orjson.dumps(edited)
    put_window_file(out, "conversations", "2026-11-02", lines)
    summary = build(out)
    assert summary.lenient == ("conversations/2026-11-02",)
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    cid = edited["conversationId"]
    ((extra, divisions),) = rows(con, "SELECT extra, division_ids FROM conversations "
                                      f"WHERE conversation_id = '{cid}'")  # fmt: skip
    assert orjson.loads(str(extra)) == {"brandNewField": {"x": 1}} and divisions is None
    assert rows(con, "SELECT count(*) FROM conversations WHERE extra IS NOT NULL") == [(1,)]
    raw = raw_table_rows(out)
    for name in ("conversations", "segments", "metrics"):
        assert len(table_keys(con, name)) == len(raw[name]), name
    con.close()


def test_a_new_top_level_field_keeps_the_fast_typed_read(out: Path) -> None:
    """A new field alone (no type change) is found by the census and kept in `extra` without
    falling back to the lenient read."""
    path = out / "conversations/2026-11-01.jsonl"
    lines = path.read_bytes().splitlines()
    lines[-1] = lines[-1][:-1] + b',"addedLater":[1,2]}'
    put_window_file(out, "conversations", "2026-11-01", lines)
    summary = build(out)
    assert summary.lenient == ()
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    assert rows(con, "SELECT extra FROM conversations WHERE extra IS NOT NULL") == [
        ('{"addedLater":[1,2]}',)
    ]
    con.close()


def run_tables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", "tables", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def failed(done: subprocess.CompletedProcess[str], code: int, status: str) -> str:
    """Check a failed build: exit ``code``, one line on stderr and no traceback, and a JSON
    summary saying so as the last line of stdout. Returns the stderr line."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    summary = orjson.loads(done.stdout.splitlines()[-1])
    assert summary["status"] == status and summary["exit_code"] == code, summary
    assert summary["error"] in done.stderr
    return done.stderr.strip()


def test_a_hand_edited_file_is_refused_naming_it_with_exit_2(out: Path) -> None:
    """A day file whose bytes no longer match the manifest's sha256 stops the build before
    anything changes: one line naming the file and saying to export it again, exit 2."""
    path = out / "conversations/2026-11-02.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"inbound"', b'"INBOUND"', 1))
    line = failed(run_tables("--out", str(out)), 2, "bad_input")
    assert str(path) in line and "export conversations/2026-11-02 again" in line
    assert not (out / "genesys.duckdb").exists()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", [], "holds no manifest.json"),
        ("corrupt", [], "cannot be read"),
        ("ok", ["--layout", "nested"], "--layout: invalid choice (choose from 'flat', 'hive')"),
        ("ok", ["--memory-limit", "lots"], "is not a size"),
        ("ok", ["--memory-limit", "300MB"], "below what a build needs at 2 threads (448MB)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, setup: str, args: list[str],
                                          message: str) -> None:  # fmt: skip
    """No manifest, an unreadable manifest, a bad memory limit: one line, exit 2, and the
    JSON summary saying so."""
    if setup == "corrupt":
        (tmp_path / "manifest.json").write_text("{not json")
    elif setup == "ok":
        Manifest(tmp_path).save()
    done = run_tables("--out", str(tmp_path), *args, "--threads", "2")
    assert message in failed(done, 2, "bad_input")


def test_a_database_that_cannot_be_opened_is_exit_1_with_a_json_summary(out: Path) -> None:
    """A genesys.duckdb that is not a database (a disk error, a stray copy): one line naming
    it and the fix (--full), exit 1, the JSON summary saying so."""
    (out / "genesys.duckdb").write_bytes(b"not a database" * 1000)
    line = failed(run_tables("--out", str(out)), 1, "error")
    assert "genesys.duckdb cannot be opened" in line and "--full" in line


def test_the_memory_limit_bounds_the_process_and_duckdb_gets_the_rest() -> None:
    """--memory-limit is the build's peak RSS: DuckDB's pool is what is left once the
    interpreter and each thread's buffers are set aside, in DuckDB's units."""
    assert parse_size("512MB") == 512 * 10**6 and parse_size(" 1.5 gib ") == 3 * 2**29
    assert parse_size("2TB") == 2 * 10**12 and parse_size("4096B") == 4096
    assert parse_size("lots") is None and parse_size("5XB") is None and parse_size("MB") is None
    two, four = Limits(512 * 10**6, threads=2), Limits(512 * 10**6, threads=4)
    assert two.pool_bytes == 320 * 10**6 and four.pool_bytes == two.pool_bytes - 32 * 10**6
    assert two.minimum_bytes == 448 * 10**6 and four.minimum_bytes == 736 * 10**6
    cores = len(os.sched_getaffinity(0))
    assert Limits.fitting(512 * 10**6).threads == min(cores, 2)  # 144MB a thread fits twice
    assert Limits.fitting(10**10).threads == cores and Limits.fitting(10**6).threads == 1


def test_the_default_threads_fit_the_memory_limit_and_too_little_is_refused(out: Path) -> None:
    """Without --threads a build takes the cores it may run on, no more than the memory
    limit allows; a limit too small for one thread is one line, exit 2."""
    request = TablesRequest(out, memory_limit="448MB")
    threads = min(len(os.sched_getaffinity(0)), 2)
    assert request.limits.threads == threads
    summary = build_tables(request)
    assert summary.status == "built" and summary.as_json()["threads"] == threads
    done = run_tables("--out", str(out), "--memory-limit", "300MB")
    assert done.returncode == 2 and "at 1 thread (304MB); give more." in done.stderr, done.stderr


def test_a_reader_keeps_the_database_open_while_a_build_replaces_it(out: Path) -> None:
    """An analyst's open (read-only) connection neither blocks a rebuild nor sees it half
    done: it keeps reading the old rows, and a new connection reads the new ones."""
    first = build(out)
    reader = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    lines = (out / "conversations/2026-11-02.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-02", lines[:10])
    done = run_tables("--out", str(out), "--threads", "2")
    assert done.returncode == 0, done.stderr
    assert rows(reader, "SELECT count(*) FROM conversations") == [(first.rows["conversations"],)]
    reader.close()
    fresh = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    expected = first.rows["conversations"] - (len(lines) - 10)
    assert rows(fresh, "SELECT count(*) FROM conversations") == [(expected,)]
    fresh.close()


def test_a_build_while_an_export_holds_the_folder_is_refused_with_exit_75(out: Path) -> None:
    """The build takes the export folder's lock: while an export runs, exit 75."""
    with RunLock(out, "an-export"):
        done = run_tables("--out", str(out))
    assert "an-export" in failed(done, 75, "locked")


def test_the_cli_reports_what_it_built_and_ends_with_a_json_summary(out: Path) -> None:
    """stderr says which windows were built; the last stdout line is the JSON summary."""
    done = run_tables("--out", str(out), "--memory-limit", "432MB", "--threads", "1")
    assert done.returncode == 0, done.stderr
    manifest = Manifest.load(out)
    files = sum(len(manifest.records(name)) for name in manifest.datasets())  # all tabled
    assert f"built {files} windows (conversations/2026-11-01" in done.stderr
    assert " s at 1 thread within 432MB; " in done.stderr
    summary = orjson.loads(done.stdout.splitlines()[-1])
    assert summary["status"] == "built" and summary["conversations"] > 0
    presence = sum(len(line["primaryPresence"]) for line in raw_lines(out, "user-details"))
    assert summary["rows"]["user_presence"] == presence > 1000
    again = run_tables("--out", str(out))
    assert "up to date" in again.stderr and orjson.loads(again.stdout)["built"] == []


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
async def test_compressed_exports_build_the_same_tables(tmp_path: Path, compression: str) -> None:
    """gzip and zstd day files (one member or frame per page) build the same rows."""
    async with Sandbox(tables_sandbox_settings()) as sb:
        await export_into(tmp_path, sb, "conversations", compression=compression)
    summary = build(tmp_path)
    raw = raw_table_rows(tmp_path)
    for name in ("conversations", "participants", "sessions", "segments", "metrics"):
        assert summary.rows[name] == len(raw[name]) > 0, name


def test_a_day_being_exported_again_keeps_its_earlier_rows(out: Path) -> None:
    """A window the manifest shows in progress (an export redoing it) keeps the rows it was
    last built with, and the summary says so."""
    first = build(out)
    manifest = Manifest.load(out)
    record = manifest.get("conversations", "2026-11-02")
    assert record is not None
    manifest.put("conversations", dataclasses.replace(record, status="in-progress", file=None))
    manifest.save()
    again = build(out)
    assert again.status == "up-to-date" and again.in_flight == ("conversations/2026-11-02",)
    assert again.rows == first.rows


# -- a manifest that lost windows: their rows stay while their files do


@pytest.fixture(scope="module")
def forgotten(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The situation of issue #20: a built folder whose manifest was moved aside (the advice
    for a corrupt one), then two days of conversations exported again into a new one."""
    out = tmp_path_factory.mktemp("forgotten") / "export"
    shutil.copytree(exported, out)
    build(out)
    (out / "manifest.json").rename(out / "manifest.json.corrupt")

    async def export_two_days() -> None:
        async with Sandbox(tables_sandbox_settings()) as sb:
            await export_into(out, sb, "conversations", first_day=1)

    asyncio.run(export_two_days())
    return out


@pytest.fixture
def lost(forgotten: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(forgotten, copy, symlinks=True)  # tables stays the link it is
    return copy


def table_counts(database: Path) -> dict[str, int]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {name: int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]
                for name in TABLES}  # fmt: skip
    finally:
        con.close()


def parquet_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out / "tables")) for p in (out / "tables").rglob("*.parquet"))


def test_a_manifest_that_lost_windows_keeps_their_rows_and_files_and_says_so(lost: Path) -> None:
    """The windows the new manifest does not list, whose day files are still on disk, keep
    their rows and Parquet files; the build exits 0 with one warning line saying how many
    and what to do, and lists them in the JSON summary."""
    before, files = table_counts(lost / "genesys.duckdb"), parquet_files(lost)
    done = run_tables("--out", str(lost))
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout.splitlines()[-1])
    assert summary["kept_unlisted"] == forgotten_windows(lost) and summary["removed"] == []
    # a day of conversations, and every day of the other dated datasets (user details,
    # evaluations, surveys, schedules)
    others = len({t.dataset for t in specs.ALL if not t.snapshot}) - 1
    assert len(summary["kept_unlisted"]) == 1 + 3 * others + len(SNAPSHOT_TABLES)
    (warning,) = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert f"kept {len(summary['kept_unlisted'])} window(s) the manifest no longer lists" in warning
    assert "Export those days again" in warning and "delete their files" in warning
    assert table_counts(lost / "genesys.duckdb") == before and parquet_files(lost) == files


def forgotten_windows(out: Path) -> list[str]:
    """The windows the moved-aside manifest held and the new one does not."""
    old = orjson.loads((out / "manifest.json.corrupt").read_bytes())["entities"]
    new = Manifest.load(out)
    return sorted(f"{entity}/{name}" for entity, windows in old.items() for name in windows
                  if new.get(entity, name) is None)  # fmt: skip


@pytest.mark.parametrize("how", ["--full", "no database"])
def test_a_build_from_nothing_refuses_while_day_files_the_manifest_lacks_are_on_disk(
    lost: Path, how: str
) -> None:
    """A build that would read the manifest alone (--full, or no database to update) and so
    drop the unlisted days is refused: one line naming a file and what to do, exit 2, the
    database and Parquet files as they were."""
    if how == "no database":
        (lost / "genesys.duckdb").unlink()
    before = (lost / "genesys.duckdb").read_bytes() if how == "--full" else b""
    files = parquet_files(lost)
    flags = ["--full"] if how == "--full" else []
    line = failed(run_tables("--out", str(lost), *flags), 2, "bad_input")
    more = len(forgotten_windows(lost)) - 1
    assert f"are not in its manifest (conversations/2026-11-01.jsonl and {more} more)" in line
    assert "export those days again" in line and "delete the files" in line
    if how == "--full":
        assert (lost / "genesys.duckdb").read_bytes() == before
    assert parquet_files(lost) == files


def test_deleting_an_unlisted_days_file_drops_it_from_the_tables(lost: Path) -> None:
    """What the warning offers: once an unlisted day's file is deleted, the next build
    removes its rows and Parquet files, and keeps the other unlisted windows."""
    before = table_counts(lost / "genesys.duckdb")
    (lost / "conversations/2026-11-01.jsonl").unlink()
    summary = build(lost)
    assert summary.removed == ("conversations/2026-11-01",)
    assert "conversations/2026-11-01" not in summary.kept_unlisted
    assert len(summary.kept_unlisted) == len(forgotten_windows(lost)) - 1
    assert summary.rows["users"] == before["users"]
    con = duckdb.connect(str(lost / "genesys.duckdb"), read_only=True)
    for name in ("conversations", "segments", "metrics"):
        windows = rows(con, f"SELECT DISTINCT source_window FROM {name} ORDER BY 1")
        assert windows == [("2026-11-02",), ("2026-11-03",)], name
    con.close()
    assert not (lost / "tables/segments/2026-11-01.parquet").exists()
    assert (lost / "tables/user_presence/2026-11-01.parquet").exists()


# -- an analyst's read-write session, and a crashed writer's WAL

SESSION_SCRIPT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # read-write, as `duckdb genesys.duckdb` opens it
print("open", flush=True)
sys.stdin.read()  # until the test ends the session
con.close()
"""


@contextlib.contextmanager
def analyst_session(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``database`` open read-write until the block ends."""
    command = [sys.executable, "-c", SESSION_SCRIPT, str(database)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    with subprocess.Popen(command, text=True, **pipes) as session:  # type: ignore[call-overload]
        assert session.stdin is not None and session.stdout is not None
        try:
            assert session.stdout.readline() == "open\n"
            yield session
        finally:
            session.stdin.close()
            assert session.wait(timeout=30) == 0


@pytest.mark.parametrize("flags", [[], ["--full"]])
def test_an_analysts_read_write_session_is_refused_with_exit_75(
    out: Path, flags: list[str]
) -> None:
    """While another process has genesys.duckdb open read-write, a build (incremental or
    --full) changes nothing and exits 75 naming the file, the process and the fix; once the
    session ends the database still opens with its rows, and a build then succeeds."""
    first = build(out)
    lines = (out / "conversations/2026-11-02.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-02", lines[:10])
    database = out / "genesys.duckdb"
    with analyst_session(database) as session:
        line = failed(run_tables("--out", str(out), *flags), 75, "locked")
        assert f"process {session.pid} holds {database} open for writing" in line
        assert f"duckdb -readonly {database}" in line
    assert table_counts(out / "genesys.duckdb") == first.rows
    assert run_tables("--out", str(out), *flags).returncode == 0
    counts = table_counts(out / "genesys.duckdb")
    assert counts["conversations"] == first.rows["conversations"] - len(lines) + 10


CRASH_SCRIPT = """
import os, sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET checkpoint_threshold = '1TB'")  # the commit stays in the WAL
con.execute("CREATE TABLE notes AS SELECT 'kept' AS note")
os._exit(0)  # a crash: no checkpoint at close
"""


@pytest.mark.parametrize("flags", [[], ["--full"]])
def test_a_build_over_a_crashed_writers_wal_yields_a_database_that_opens(
    out: Path, flags: list[str]
) -> None:
    """A writer that died left genesys.duckdb.wal: a build (incremental or --full) leaves no
    WAL beside the new database, which opens and holds exactly the export's rows; an
    incremental build keeps the crashed writer's commit, which it found in the WAL."""
    build(out)
    subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(out / "genesys.duckdb")], check=True)
    assert (out / "genesys.duckdb.wal").exists()
    lines = (out / "conversations/2026-11-02.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-02", lines[:10])
    assert run_tables("--out", str(out), *flags).returncode == 0
    assert not (out / "genesys.duckdb.wal").exists()
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    raw = raw_table_rows(out)
    for name in ("conversations", "segments", "metrics"):
        assert sorted(table_keys(con, name)) == sorted(raw[name]), name
    tables = {name for (name,) in rows(con, "SELECT table_name FROM duckdb_tables()")}
    assert ("notes" in tables) == (flags == [])
    con.close()


# -- SIGTERM while DuckDB is at work


@pytest.fixture(scope="module")
def larger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six times the conversations, for a build long enough to be stopped mid-query."""
    out = tmp_path_factory.mktemp("larger")
    data = dataclasses.replace(TABLES_DATA, conversations=6 * TABLES_DATA.conversations)
    settings = sandbox_settings(dataset=data, availability_date=TABLES_WATERMARK)

    async def export_larger() -> None:
        async with Sandbox(settings) as sb:
            await export_into(out, sb, "conversations")

    asyncio.run(export_larger())
    return out


@pytest.fixture(scope="module")
def larger_rows(larger: Path) -> dict[str, int]:
    """How many rows each conversation table of ``larger`` should hold, from the raw JSON."""
    return {name: len(keys) for name, keys in raw_table_rows(larger).items() if keys}


def _wal_bytes(out: Path) -> int:
    wal = out / ".genesys.duckdb.build.wal"
    return wal.stat().st_size if wal.exists() else 0


def _reading(out: Path, pid: int, day: str) -> bool:
    """Whether the build's DuckDB has the day file open: a read_json query is running."""
    if not (out / ".genesys.duckdb.build").exists():  # before it, the file is open to hash
        return False
    with contextlib.suppress(OSError):  # a descriptor closed while we looked
        fds = Path(f"/proc/{pid}/fd")
        return any(os.readlink(fd).endswith(f"conversations/{day}.jsonl") for fd in fds.iterdir())
    return False


# Moments seen from outside the build, each with much left to do: a day file being read (a
# query on the main thread: where a KeyboardInterrupt came out of DuckDB as RuntimeError),
# windows being inserted (queries on worker threads, the main thread waiting for them), the
# Parquet files being written (COPYs on worker threads).
MOMENTS: dict[str, Callable[[Path, int], bool]] = {
    "reading a day file": lambda out, pid: _reading(out, pid, "2026-11-02"),
    "inserting windows": lambda out, pid: _wal_bytes(out) > 2_000_000,
    "writing Parquet": lambda out, pid: any((out / ".tables").rglob("*.parquet")),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigterm_while_queries_run_exits_130_without_a_traceback(
    larger: Path, larger_rows: dict[str, int], tmp_path: Path, moment: str
) -> None:
    """SIGTERM sent the moment the build is seen at work (not after a guessed delay) stops it
    with exit 130, the stop message and JSON summary, never a traceback, and nothing left
    behind; the next build is exact."""
    out = tmp_path / "export"
    shutil.copytree(larger, out)
    reached = MOMENTS[moment]
    command = [sys.executable, "-m", "exporter", "tables", "--out", str(out), "--threads", "2"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:  # fmt: skip
        while not reached(out, proc.pid):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.001)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "as the last build left it" in stderr
    assert orjson.loads(stdout.splitlines()[-1])["status"] == "interrupted"
    assert not list(out.glob(".genesys.duckdb*")) and not (out / "genesys.duckdb").exists()
    assert not (out / ".tables").exists() or not list((out / ".tables").iterdir())
    rebuilt = build(out).rows
    assert {name: rebuilt[name] for name in larger_rows} == larger_rows


# -- the Parquet set: one build's files, switched in one rename


def test_a_rebuild_writes_the_changed_windows_files_and_links_the_rest(out: Path) -> None:
    """The new version holds the rebuilt window's files newly written and every other file as
    a hard link to the one before (no copy), and the version it replaced is deleted."""
    build(out)
    before = {p: p.stat().st_ino for p in (out / "tables").rglob("*.parquet")}
    lines = (out / "conversations/2026-11-03.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-03", lines[:5], status="provisional")
    summary = build(out)
    conversation_tables = [t for t in TABLES.values() if t.dataset == "conversations"]
    assert summary.parquet_files == len(conversation_tables)
    after = {p: p.stat().st_ino for p in (out / "tables").rglob("*.parquet")}
    assert after.keys() == before.keys()
    changed = {p for p in after if after[p] != before[p]}
    assert changed == {out / "tables" / t.name / "2026-11-03.parquet" for t in conversation_tables}
    assert len(list((out / ".tables").iterdir())) == 1


@pytest.mark.parametrize("left", ["a tables folder", "the folder moved aside, no link"])
def test_a_tables_folder_from_before_versions_becomes_a_version(out: Path, left: str) -> None:
    """A real tables/ folder (built before versions) is taken into the first build's version
    and replaced by the link; killed between moving that folder aside and making the link, the
    next build writes every file again from the database. Either way the set then equals the
    database and one version remains."""
    build(out)
    link = out / "tables"
    every_file = len(list(link.rglob("*.parquet")))
    real = out / ".tables" / "before-versions"
    shutil.copytree(link, out / "copy")
    link.unlink()
    shutil.rmtree(out / ".tables")
    (out / "copy").rename(link)
    if left != "a tables folder":
        (out / ".tables").mkdir()
        link.rename(real)  # as a build killed after its first rename leaves it
    lines = (out / "conversations/2026-11-03.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-03", lines[:5], status="provisional")
    summary = build(out)
    rebuilt = sum(1 for t in TABLES.values() if t.dataset == "conversations")
    assert summary.parquet_files == (rebuilt if left == "a tables folder" else every_file)
    assert link.is_symlink() and len(list((out / ".tables").iterdir())) == 1
    assert parquet_matches(link, {"built": out / "genesys.duckdb"}) == {"built"}


def test_the_plan_keeps_unlisted_windows_while_on_disk_and_drops_superseded_snapshots() -> None:
    """Planning alone: a built window the manifest no longer lists is kept while its file is
    on disk and removed once it is gone; an older snapshot is removed when a newer one is
    offered, though its file is still there; a window being exported again is kept."""

    def built(dataset: str, window: str) -> Built:
        return Built(dataset, window, f"{dataset}/{window}.jsonl", "sha", 10, 1)

    def source(dataset: str, window: str, snapshot: bool = False) -> Source:
        return Source(dataset, window, f"{dataset}/{window}.jsonl", "new", 10, 1, "none", snapshot)

    previous = [built("conversations", d) for d in ("2026-11-01", "2026-11-02", "2026-11-03")]
    previous += [built("users", "2026-12-01"), built("queues", "2026-12-01")]
    offered = [source("conversations", "2026-11-03"), source("users", "2026-12-02", True)]
    gone = {"conversations/2026-11-01"}
    plan = sources.plan(offered, ["conversations/2026-11-02"], previous, full=False,
                        on_disk=lambda b: b.label not in gone)  # fmt: skip
    assert [s.label for s in plan.build] == ["conversations/2026-11-03", "users/2026-12-02"]
    assert [b.label for b in plan.remove] == ["conversations/2026-11-01", "users/2026-12-01"]
    assert plan.unlisted == ("queues/2026-12-01",)
    assert plan.in_flight == ("conversations/2026-11-02",)
