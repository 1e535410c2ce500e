"""Publishing to a real S3 server with an Iceberg REST catalog (SeaweedFS), in each format:
the tables read back with pyarrow, deltalake and pyiceberg equal the local tables; a
re-exported day replaces its rows; nothing changed writes nothing; a publish SIGKILLed at any
step, then run again, is exact; two publishes at once leave the tables exact; Delta and
Iceberg readers only ever see a day whole; bad credentials and endpoints are one line."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import obstore
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from obstore.store import S3Store
from pyiceberg.catalog import load_catalog
from pyiceberg.table import StaticTable
from pyiceberg.utils.config import Config

from exporter.datasets import select
from exporter.progress import NoProgress
from exporter.publish import FORMATS, PublishRequest, PublishSummary, publish_tables
from exporter.publish.iceberg import IcebergPublish
from exporter.publish.local import read_local
from exporter.publish.report import Silent
from exporter.runner import ExportRequest, export
from exporter.tables import TABLES, TablesRequest, build_tables
from exporter.tables.parquet import day_of
from exporter.tables.specs import Table
from exporter.tables.stop import Stop
from genesys_sandbox import Sandbox, run_sandbox_in_thread
from tests import seaweedfs as weed
from tests.support import (
    START,
    assert_one_clear_line,
    cli_env,
    counted,
    days,
    exporter_settings,
    gdpr_truth,
    last_json,
    put_window_file,
    strong,
    tables_sandbox_settings,
)

ROOT = Path(__file__).resolve().parents[1]
CONVERSATION_TABLES = [t.name for t in TABLES.values() if t.dataset == "conversations"]
Row = dict[str, Any]


# -- one small export, built, per module; a destination of its own per test


async def _export(out: Path) -> None:
    async with Sandbox(tables_sandbox_settings()) as sb:
        settings = exporter_settings(sb, out)
        request = ExportRequest(START, START + days(3), datasets=select("all"))
        assert (await export(settings, request, progress=NoProgress())).status == "ok"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of every dataset (the third provisional), the tables built."""
    out = tmp_path_factory.mktemp("export")
    asyncio.run(_export(out))
    build_tables(TablesRequest(out, threads=2))
    return out


@pytest.fixture
def out(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(built, copy, symlinks=True)
    return copy


@dataclass(frozen=True)
class Lake:
    """A destination of one test in the session's SeaweedFS: a prefix, or a namespace."""

    server: weed.SeaweedFS
    format: str
    tag: str

    @property
    def to(self) -> str:
        return f"s3://{weed.BUCKET}/{self.tag}"

    def request(self, out: Path) -> PublishRequest:
        return PublishRequest(out, self.format, to=self.to, catalog=weed.CATALOG,  # type: ignore[arg-type]
                              namespace=self.tag)  # fmt: skip

    def publish(self, out: Path) -> PublishSummary:
        return publish_tables(self.request(out))

    def args(self) -> list[str]:
        if self.format == "iceberg":
            return ["--format", "iceberg", "--catalog", weed.CATALOG, "--namespace", self.tag]
        return ["--format", self.format, "--to", self.to]

    def store(self, bucket: str = weed.BUCKET, prefix: str = "") -> S3Store:
        """The test's prefix (or another bucket and prefix), as a reader reaches it."""
        return S3Store(bucket, prefix=prefix or self.tag, endpoint=self.server.s3_url,
                       access_key_id=weed.ACCESS_KEY, secret_access_key=weed.SECRET_KEY,
                       region=weed.REGION, client_options={"allow_http": True})  # fmt: skip

    def objects(self) -> dict[str, str]:
        """Every object under the prefix, with its ETag."""
        return {m["path"]: str(m["e_tag"]) for m in obstore.list(self.store()).collect()}

    def catalog(self) -> Any:
        """The catalog as a reader configures it: where the catalog is, where its storage is."""
        config = Config().get_catalog_config(weed.CATALOG) or {}
        return load_catalog(
            weed.CATALOG,
            **{k: str(v) for k, v in config.items()},
            **{"s3.endpoint": self.server.s3_url, "s3.region": weed.REGION},
        )

    def rows(self, table: Table) -> list[Row] | None:
        """The published table's rows (windowed: with ``date``), None if it is not there."""
        if self.format == "parquet":
            return self._parquet_rows(table)
        if self.format == "delta":
            uri = f"{self.to}/{table.name}"
            exists = DeltaTable.is_deltatable(uri)
            return _rows(DeltaTable(uri).to_pyarrow_table()) if exists else None
        name = (self.tag, table.name)
        if not self.catalog().table_exists(name):
            return None
        return _rows(self.catalog().load_table(name).scan().to_arrow())

    def _parquet_rows(self, table: Table) -> list[Row] | None:
        store, found = self.store(), []
        keys = [meta["path"] for meta in obstore.list(store, f"{table.name}/").collect()]
        for key in keys:
            day = re.search(r"/date=(\d{4}-\d\d-\d\d)/", key)
            rows = _rows(pq.read_table(io.BytesIO(obstore.get(store, key).bytes())))
            found += [{**r, "date": date.fromisoformat(day.group(1))} if day else r for r in rows]
        return found if keys else None

    def state(self) -> Any:
        """What a publish that changes anything would change: the objects (Parquet, Delta:
        the log is objects too), or every table's metadata file and snapshots (Iceberg)."""
        if self.format != "iceberg":
            return self.objects()
        catalog = self.catalog()
        tables = [catalog.load_table(name) for name in catalog.list_tables(self.tag)]
        return {t.name(): (t.metadata_location, len(t.snapshots())) for t in tables}


@pytest.fixture
def lake_env(seaweedfs: weed.SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> weed.SeaweedFS:
    """The process's environment pointed at the SeaweedFS, the standard way."""
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    return seaweedfs


@pytest.fixture(params=FORMATS)
def lake(request: pytest.FixtureRequest, lake_env: weed.SeaweedFS) -> Lake:
    return Lake(lake_env, request.param, f"t{uuid.uuid4().hex[:10]}")


def _rows(table: pa.Table) -> list[Row]:
    """Rows as dicts; a JSON column as its text, whichever library read it."""
    columns = [c.storage if isinstance(c.type, pa.ExtensionType) else c for c in table.columns]
    return pa.table(columns, names=table.column_names).to_pylist()  # type: ignore[no-any-return]


def local_rows(out: Path, table: Table) -> list[Row]:
    con = duckdb.connect(str(out / "genesys.duckdb"), read_only=True)
    try:
        return _rows(con.sql(f'SELECT * FROM "{table.name}"').to_arrow_table())
    finally:
        con.close()


def by_key(rows: list[Row], table: Table) -> dict[tuple[Any, ...], Row]:
    """Rows by their key, every value hashable; fails if a key is there twice."""
    keyed = {tuple(r[k] for k in table.key): _plain(r) for r in rows}
    assert len(keyed) == len(rows), f"{table.name}: a row is there twice"
    return keyed


def _plain(row: Row) -> Row:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items() if k != "date"}


def by_day(rows: list[Row], table: Table) -> dict[str, dict[tuple[Any, ...], Row]]:
    """Rows by the day they are filed under (one group for a snapshot table)."""
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped["snapshot" if table.snapshot else day_of(row["source_window"])].append(row)
    return {day: by_key(group, table) for day, group in grouped.items()}


def assert_exact(lake: Lake, out: Path) -> None:
    """Every table published holds exactly the local table's rows, keyed the same, values
    equal; a windowed row's ``date`` is the day its window is filed under."""
    for table in TABLES.values():
        published = lake.rows(table)
        assert published is not None, table.name
        if not table.snapshot:
            assert all(r["date"] == date.fromisoformat(day_of(r["source_window"]))
                       for r in published), table.name  # fmt: skip
        assert by_key(published, table) == by_key(local_rows(out, table), table), table.name


def assert_whole_days(lake: Lake, out: Path) -> None:
    """Each day a reader finds published holds exactly the local rows of that day: no day
    half-written, none with a row twice."""
    for table in TABLES.values():
        local = by_day(local_rows(out, table), table)
        for day, rows in by_day(lake.rows(table) or [], table).items():
            assert rows == local[day], (table.name, day)


def change_the_third_day(out: Path) -> None:
    """The provisional day exported again with half its conversations, then built."""
    lines = (out / "conversations/2026-11-03.jsonl").read_bytes().splitlines()
    put_window_file(out, "conversations", "2026-11-03", lines[::2], status="provisional")
    assert build_tables(TablesRequest(out, threads=2)).built == ("conversations/2026-11-03",)


# -- the tables, exactly


def test_published_tables_read_back_equal_the_local_tables(lake: Lake, out: Path) -> None:
    """Every table, read back with pyarrow (Parquet), deltalake or pyiceberg, holds the local
    table's rows: same keys, none twice, equal values, the day in ``date``."""
    summary = lake.publish(out)
    assert summary.status == "published" and summary.raced == () and summary.unchanged == 0
    dated = sum(not t.snapshot for t in TABLES.values())
    assert len(summary.written) == dated * 3 + (len(TABLES) - dated)
    assert_exact(lake, out)


def test_a_reexported_day_replaces_its_rows_and_only_that_day_is_written(
    lake: Lake, out: Path
) -> None:
    """A day exported again with other content is the only day written (in each table of its
    dataset); its rows are replaced, none left twice, every other day as it was."""
    first = lake.publish(out)
    change_the_third_day(out)
    again = lake.publish(out)
    assert sorted(again.written) == sorted(f"{t}/2026-11-03" for t in CONVERSATION_TABLES)
    assert again.unchanged == len(first.written) - len(CONVERSATION_TABLES)
    assert_exact(lake, out)


def test_a_publish_with_nothing_changed_writes_nothing(lake: Lake, out: Path) -> None:
    """Published once, a second publish says up to date and writes nothing: no object, no
    Delta version, no Iceberg snapshot or metadata file."""
    first = lake.publish(out)
    before = lake.state()
    again = lake.publish(out)
    assert again.status == "up-to-date" and again.written == () and again.rows == 0
    assert again.unchanged == len(first.written)
    assert lake.state() == before


# -- kills and races

KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from exporter.publish import PublishRequest, publish_tables

out, fmt, to, catalog, namespace, step, nth = sys.argv[1:8]

class KillAt:
    seen = 0
    def step(self, name, detail):
        if name == step:
            KillAt.seen += 1
            if KillAt.seen == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

request = PublishRequest(Path(out), fmt, to=to, catalog=catalog, namespace=namespace)
publish_tables(request, KillAt())
"""
# The first day's files written, not committed; the first day committed; a later day's files
# written, not committed, with days committed before it.
KILL_POINTS = [("uploaded", 1), ("committed", 1), ("uploaded", 12)]


@pytest.mark.parametrize(("step", "nth"), KILL_POINTS)
def test_a_publish_killed_at_any_step_then_run_again_is_exact(
    lake: Lake, out: Path, step: str, nth: int
) -> None:
    """SIGKILLed at a step (seen by an observer, not a guessed delay), a publish leaves every
    day a reader can find whole; the next publish writes what is missing, and the tables are
    exact."""
    args = [str(out), lake.format, lake.to, weed.CATALOG, lake.tag, step, str(nth)]
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *args], cwd=ROOT,
                            capture_output=True, timeout=120)  # fmt: skip
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert_whole_days(lake, out)
    again = lake.publish(out)
    assert again.status == "published" and again.raced == ()
    assert_exact(lake, out)
    assert lake.publish(out).status == "up-to-date"


TERM_SCRIPT = """
import os, signal, sys
from exporter import cli
from exporter.publish import report

def term_at(self, name, detail):
    if name == "committed":
        os.kill(os.getpid(), signal.SIGTERM)

report.Silent.step = term_at
sys.exit(cli.main(["publish", *sys.argv[1:]]))
"""


def test_sigterm_stops_a_publish_between_days_with_130(lake_env: weed.SeaweedFS, out: Path) -> None:
    """SIGTERM (a CronJob's grace period) once a day is committed stops the publish before
    the next: exit 130 saying each day is as its last commit left it, the JSON summary last;
    the next publish finishes, exact."""
    lake = Lake(lake_env, "delta", f"t{uuid.uuid4().hex[:10]}")
    env = {**os.environ, **lake.server.env()}
    command = [sys.executable, "-c", TERM_SCRIPT, "--out", str(out), *lake.args()]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert "each day is as the last commit left it" in done.stderr
    assert last_json(done)["status"] == "interrupted"
    assert_whole_days(lake, out)
    assert lake.publish(out).status == "published"
    assert_exact(lake, out)


RACE_SCRIPT = """
import os, sys, time
from pathlib import Path
from exporter import cli
from exporter.publish import report

barrier = Path(sys.argv[1])

def together(self, name, detail):
    if name == "planned":  # both have read what is published before either writes
        (barrier / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)

report.Silent.step = together
sys.exit(cli.main(["publish", *sys.argv[2:]]))
"""


def test_two_publishes_at_once_both_succeed_and_leave_the_tables_exact(
    lake: Lake, out: Path, tmp_path: Path
) -> None:
    """Two publishes from two copies of the folder (two pods), both past reading the markers
    before either writes: both exit 0 (75 would say another kept committing), no day is
    committed by both (the loser of each race skips it), the tables are exact, and a third
    publish finds nothing to write."""
    other = tmp_path / "other"
    shutil.copytree(out, other, symlinks=True)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, **lake.server.env()}
    runs = [subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, str(barrier), "--out",
                              str(folder), *lake.args()], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for folder in (out, other)]  # fmt: skip
    results = [(run.wait(timeout=180), *run.communicate()) for run in runs]
    codes = [code for code, _, _ in results]
    assert set(codes) <= {0, 75} and 0 in codes, results
    summaries = [orjson.loads(stdout.splitlines()[-1]) for _, stdout, _ in results]
    written = [label for s in summaries for label in s.get("written", [])]
    assert len(written) == len(set(written)), "a day committed by both"
    assert_exact(lake, out)
    assert lake.publish(out).status == "up-to-date"


# -- what a reader of Delta or Iceberg sees


def _day_versions(lake: Lake, table: Table) -> Iterator[list[Row]]:
    """The table's rows at every state a reader could have loaded: each Delta version, each
    Iceberg metadata file (each commit's table state)."""
    if lake.format == "delta":
        delta = DeltaTable(f"{lake.to}/{table.name}")
        for version in range(delta.version() + 1):
            delta.load_as_version(version)
            yield _rows(delta.to_pyarrow_table())
        return
    current = lake.catalog().load_table((lake.tag, table.name))
    files = [entry.metadata_file for entry in current.metadata.metadata_log]
    for location in [*files, current.metadata_location]:
        static = StaticTable.from_metadata(location, properties=current.io.properties)
        yield _rows(static.scan().to_arrow()) if static.current_snapshot() else []


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_readers_see_a_replaced_day_old_or_new_never_a_mix(
    lake_env: weed.SeaweedFS, out: Path, tmp_path: Path, fmt: str
) -> None:
    """Every version (Delta) or metadata file (Iceberg) of a table, across the first publish
    and the replacement of a day, holds that day either absent, or exactly as first built, or
    exactly as rebuilt: never part of each, never a row twice."""
    lake = Lake(lake_env, fmt, f"t{uuid.uuid4().hex[:10]}")
    before = tmp_path / "before"
    shutil.copytree(out, before, symlinks=True)
    lake.publish(out)
    change_the_third_day(out)
    lake.publish(out)
    for name in ("conversations", "segments"):
        table = TABLES[name]
        old = by_day(local_rows(before, table), table)["2026-11-03"]
        new = by_day(local_rows(out, table), table)["2026-11-03"]
        seen = [by_day(rows, table).get("2026-11-03") for rows in _day_versions(lake, table)]
        assert all(day in (None, old, new) for day in seen), name
        assert seen[-1] == new and old in seen, name


# -- a forget reaches the lake's history


def forget_and_build(out: Path) -> list[str]:
    """``genesys-export forget`` on the folder (the sandbox's completed deletions, about
    customers of its conversations), then the tables built; the values forgotten."""
    with run_sandbox_in_thread(tables_sandbox_settings()) as sb:
        forgotten = [v for r in counted(gdpr_truth(sb)) for v in strong(r["subject"])]
        command = [sys.executable, "-m", "exporter", "forget", "--out", str(out)]
        done = subprocess.run(command, env=cli_env(sb), capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert done.returncode == 0 and last_json(done)["applied"] >= 2, done.stderr
    build_tables(TablesRequest(out, threads=2))
    return forgotten


def lake_files(lake: Lake) -> dict[str, tuple[S3Store, str]]:
    """Every file a publish wrote, by its bucket and key (``lake/t1a2b/users/...``), with the
    store and the key to read it by: under the prefix (Parquet, Delta), under each table's
    location (Iceberg)."""
    if lake.format != "iceberg":
        store = lake.store()
        return {f"{weed.BUCKET}/{lake.tag}/{key}": (store, key) for key in lake.objects()}
    found: dict[str, tuple[S3Store, str]] = {}
    catalog = lake.catalog()
    for name in catalog.list_tables(lake.tag):
        location = urlsplit(catalog.load_table(name).location())
        folder = f"{location.netloc}{location.path}".rstrip("/")
        store = lake.store(location.netloc, location.path.strip("/"))
        keys = [m["path"] for m in obstore.list(store).collect()]
        # SeaweedFS lists its table bucket's folders (metadata, data) as objects too
        found |= {f"{folder}/{key}": (store, key) for key in keys if "." in key.rsplit("/")[-1]}
    return found


def _bucket_key(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.netloc}{parts.path}"


def unreferenced(lake: Lake) -> set[str]:
    """The data files and manifests in the lake that no table's current version references:
    what a reader with time travel, or of the raw files, could still find."""
    live: set[str] = set()
    for table in TABLES.values():
        if lake.format == "delta":
            live |= {_bucket_key(f) for f in DeltaTable(f"{lake.to}/{table.name}").file_uris()}
        elif lake.format == "iceberg":
            iceberg = lake.catalog().load_table((lake.tag, table.name))
            if snapshot := iceberg.current_snapshot():
                paths = iceberg.inspect.files()["file_path"].to_pylist()
                paths += iceberg.inspect.manifests()["path"].to_pylist()
                live |= {_bucket_key(p) for p in [*paths, snapshot.manifest_list]}
    files = [path for path in lake_files(lake) if path.endswith((".parquet", ".avro"))]
    return set() if lake.format == "parquet" else {p for p in files if p not in live}


def lake_text(lake: Lake) -> str:
    """Every value of every Parquet file in the lake, and every other file's bytes, lower
    case."""
    parts = []
    for path, (store, key) in lake_files(lake).items():
        data = bytes(obstore.get(store, key).bytes())
        parquet = path.endswith(".parquet")
        parts.append(str(pq.read_table(io.BytesIO(data)).to_pylist()) if parquet
                     else data.decode("latin-1"))  # fmt: skip
    return "\n".join(parts).lower()


def forget_then_publish(lake: Lake, out: Path, *, killed: bool = False) -> None:
    """Publish, forget (the tables built again), publish again (``killed``: once a publish has
    deleted the older files, before the tables record it; then again); check the lake holds
    no forgotten value, no file its current versions do not reference, and the exact tables;
    a publish after writes nothing."""
    lake.publish(out)
    forgotten = forget_and_build(out)
    text = lake_text(lake)
    assert [v for v in forgotten if v in text] == forgotten  # published before the forget
    if killed:
        args = [str(out), lake.format, lake.to, weed.CATALOG, lake.tag, "vacuumed", "1"]
        done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *args], cwd=ROOT,
                              capture_output=True, timeout=300)  # fmt: skip
        assert done.returncode == -9, done.stderr.decode()[-2000:]
    summary = lake.publish(out)
    purging = lake.format != "parquet"
    assert summary.status == "published"
    assert set(summary.purged) == ({t.name for t in TABLES.values()} if purging else set())
    assert [v for v in forgotten if v in lake_text(lake)] == []
    assert unreferenced(lake) == set()
    assert_exact(lake, out)
    before = lake.state()
    assert lake.publish(out).status == "up-to-date" and lake.state() == before


def test_after_a_forget_no_version_of_the_lake_holds_what_was_forgotten(
    lake: Lake, out: Path
) -> None:
    """A forget applied and the tables built, the next publish writes the days it changed
    and drops the versions before it (Delta vacuumed, Iceberg's older snapshots expired and
    their files deleted; Parquet objects were replaced in place): no file left in the lake
    holds a forgotten value, every file left is one the current version references, the
    tables are exact, and the publish after writes nothing."""
    forget_then_publish(lake, out)


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_a_purge_killed_before_the_tables_record_it_is_finished_by_the_next_publish(
    lake_env: weed.SeaweedFS, out: Path, fmt: str
) -> None:
    """SIGKILLed once the older files are deleted and before the table records the forget,
    the next publish purges again (what is gone already is no error) and records it."""
    forget_then_publish(Lake(lake_env, fmt, f"t{uuid.uuid4().hex[:10]}"), out, killed=True)


def test_keep_history_leaves_the_versions_before_a_forget_until_a_publish_without_it(
    lake_env: weed.SeaweedFS, out: Path
) -> None:
    """``keep_history``: the days a forget changed are written and the older versions stay,
    so their files still hold what was forgotten (the lake's own retention decides); nothing
    is recorded, so the next publish without it drops them, writing no day."""
    lake = Lake(lake_env, "delta", f"t{uuid.uuid4().hex[:10]}")
    lake.publish(out)
    forgotten = forget_and_build(out)
    kept = publish_tables(dataclasses.replace(lake.request(out), keep_history=True))
    assert kept.written and kept.purged == ()
    assert unreferenced(lake) and all(v in lake_text(lake) for v in forgotten)
    purged = lake.publish(out)
    assert purged.written == () and set(purged.purged) == set(TABLES)
    assert unreferenced(lake) == set()


@pytest.mark.parametrize("hours_later", [0, 2])
def test_the_files_a_killed_publish_left_go_with_the_history_once_an_hour_old(
    lake_env: weed.SeaweedFS, out: Path, hours_later: int
) -> None:
    """Iceberg: a publish killed with a day's files written and not committed leaves files no
    snapshot reaches. The purge after a forget deletes them once they are an hour old (the
    clock moved), and spares them before, since they could be a running publish's."""
    lake = Lake(lake_env, "iceberg", f"t{uuid.uuid4().hex[:10]}")
    args = [str(out), lake.format, lake.to, weed.CATALOG, lake.tag, "uploaded", "1"]
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *args], cwd=ROOT,
                            capture_output=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    left = unreferenced(lake)
    assert left, "the killed publish wrote no file"
    forget_and_build(out)
    now = time.time() + hours_later * 3600
    publish = IcebergPublish(weed.CATALOG, lake.tag, Silent(), Stop(), keep_history=False,
                             clock=lambda: now)  # fmt: skip
    report = publish.publish(read_local(out))
    assert set(report.purged) == set(TABLES)
    assert unreferenced(lake) == (set() if hours_later else left)
    assert_exact(lake, out)


# -- errors: one line, the right exit code


def publish_cli(out: Path, lake: Lake, **env: str | None) -> subprocess.CompletedProcess[str]:
    """``genesys-export publish`` in a child, its environment the SeaweedFS's but ``env``
    (None: unset; ``PREFIX*``: every variable that begins so)."""
    merged: dict[str, str | None] = {**os.environ, **lake.server.env(), **env}
    for pattern in [name for name in env if name.endswith("*")]:
        merged = {k: v for k, v in merged.items() if not k.startswith(pattern[:-1])}
    return subprocess.run([sys.executable, "-m", "exporter", "publish", "--out", str(out),
                           *lake.args()], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in merged.items() if v is not None})  # fmt: skip


def test_the_cli_publishes_then_says_up_to_date(lake_env: weed.SeaweedFS, out: Path) -> None:
    """``genesys-export publish`` exits 0 saying what it published, then, run again, that
    nothing changed; each time the JSON summary is the last line."""
    lake = Lake(lake_env, "parquet", f"t{uuid.uuid4().hex[:10]}")
    first = publish_cli(out, lake)
    assert first.returncode == 0, first.stderr
    assert f"to {lake.request(out).destination} ({lake.format})" in first.stderr
    assert last_json(first)["status"] == "published"
    again = publish_cli(out, lake)
    assert again.returncode == 0 and "up to date: no day changed" in again.stderr
    assert last_json(again)["written"] == []


STORAGE_FAULTS = {  # environment, exit code, what the line says
    "denied bucket": ({"AWS_ACCESS_KEY_ID": weed.DENIED_KEY,
                       "AWS_SECRET_ACCESS_KEY": weed.DENIED_SECRET}, 3, "refused the credentials"),
    "wrong secret": ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, 3, "SignatureDoesNotMatch"),
    "wrong endpoint": ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, 5,
                       "Cannot reach the object storage of"),
    "no credentials": ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                        "AWS_METADATA_ENDPOINT": "http://127.0.0.1:1"}, 2, "No credentials"),
}  # fmt: skip
CATALOG_FAULTS = {
    "wrong secret": ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, 3, "refused the credentials"),
    "wrong catalog uri": ({f"PYICEBERG_CATALOG__{weed.CATALOG.upper()}__URI":
                           "http://127.0.0.1:1"}, 5, "Cannot reach Iceberg catalog"),
    "unknown catalog": ({f"PYICEBERG_CATALOG__{weed.CATALOG.upper()}__*": None}, 2,
                        f"No Iceberg catalog named '{weed.CATALOG}' is configured"),
    "catalog without a uri": ({f"PYICEBERG_CATALOG__{weed.CATALOG.upper()}__URI": None}, 2,
                              f"Iceberg catalog '{weed.CATALOG}' is not configured completely"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "fault"),
    [(f, k) for f in ("parquet", "delta") for k in STORAGE_FAULTS] + [
        ("iceberg", k) for k in CATALOG_FAULTS],
)  # fmt: skip
def test_a_denied_bucket_or_a_wrong_endpoint_is_one_line_with_its_exit_code(
    lake_env: weed.SeaweedFS, built: Path, fmt: str, fault: str
) -> None:
    """Access denied, a wrong secret, an endpoint nobody answers, no credentials at all, an
    unknown catalog: one line naming the destination and the fix, the exit code of its kind,
    the JSON summary saying so, no traceback and no secret; nothing written."""
    lake = Lake(lake_env, fmt, f"t{uuid.uuid4().hex[:10]}")
    env, code, says = (STORAGE_FAULTS if fmt != "iceberg" else CATALOG_FAULTS)[fault]
    done = publish_cli(built, lake, **env)
    assert_one_clear_line(done, code, says)
    assert last_json(done)["exit_code"] == code
    for secret in (weed.SECRET_KEY, weed.DENIED_SECRET, "not-the-secret"):
        assert secret not in done.stderr + done.stdout
    if fmt != "iceberg":
        assert lake.objects() == {}
