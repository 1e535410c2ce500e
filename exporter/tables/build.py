"""One table build: from an export folder's manifest and files to genesys.duckdb and Parquet.

The build holds the export folder's lock (an export and a build never overlap), refuses while
another process has the database open for writing, plans from the manifest and what the
database recorded (``sources.plan``), verifies every file it will read against the manifest's
sha256, and then works on a copy of the database (``database.BuildDatabase``): each removed
window's rows are deleted, each new or changed window is read once into ``stage`` and its rows
inserted into every table of its dataset (the tables in parallel, one DuckDB cursor each).
The next version of the Parquet set (``versions.Draft``) gets the files of the windows built,
written, and every other file hard-linked from the current version.

Then the commit, renames only: ``tables`` is switched to the new version, and the database
copy renamed over the old database. Killed before the switch, the old database and Parquet
set stay as they were; killed between the two renames, the Parquet set is the new build's and
the database the old one, and the next build redoes what the database does not record, so they
agree again. A stop (``Stop``: SIGTERM, Ctrl-C) before the commit interrupts the running
queries and whatever the build raises then is reported as Interrupted; a commit once begun ends.

This module is the one boundary where DuckDB's exceptions, and the file system's, become ours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from exporter.errors import ConfigError, ExportError, InputError, Interrupted, OutputError
from exporter.store.forgotten import ForgetLedger, finish_interrupted
from exporter.store.jsonl import output_error
from exporter.store.lock import RunLock
from exporter.store.manifest import MANIFEST_NAME, Manifest
from exporter.tables import parquet, sources, sql, versions
from exporter.tables.database import (
    DB_NAME,
    BuildDatabase,
    Previous,
    read_previous,
    refuse_writer,
    remove_leftovers,
)
from exporter.tables.report import BuildSummary, Observer, Silent
from exporter.tables.request import TablesRequest
from exporter.tables.sources import BuildPlan, Source
from exporter.tables.specs import TABLES, Table
from exporter.tables.stop import Stop
from exporter.tables.views import VIEWS


def build_tables(
    request: TablesRequest,
    observer: Observer | None = None,
    clock: Callable[[], float] = time.monotonic,
    stop: Stop | None = None,
    *,
    locked: bool = False,
) -> BuildSummary:
    """Build or bring up to date ``<out>/genesys.duckdb`` and ``<out>/tables/``. After
    ``stop.request()`` (a signal handler's), whatever stops the build is Interrupted.
    ``locked``: the caller holds the folder's lock already (a prune, a run)."""
    began = clock()
    stop = stop or Stop()
    _require_manifest(request.out_dir)  # before the lock, which would create files in DIR
    lock = contextlib.nullcontext() if locked else RunLock(request.out_dir, _lock_id())
    try:
        with lock:
            summary = _Build(request, observer or Silent(), stop).run()
    except BaseException as exc:
        if not stop.requested:
            raise
        raise Interrupted(
            f"{request.out_dir / DB_NAME} is as the last build left it; run genesys-export "
            "tables again to finish."
        ) from exc
    return _with_seconds(summary, clock() - began)


class _Build:
    def __init__(self, request: TablesRequest, observer: Observer, stop: Stop) -> None:
        self.request = request
        self.limits = request.limits
        self.out = request.out_dir
        self.observer = observer
        self.stop = stop
        self.lenient: list[str] = []
        self.records = 0
        self.conversations = 0
        self.forgotten = ""  # the fingerprint of the GDPR deletions applied to the folder

    def run(self) -> BuildSummary:
        manifest = _load_manifest(self.out)
        finish_interrupted(manifest)  # a killed forget's files, swapped and recorded
        offered, in_flight = sources.collect(manifest)
        refuse_writer(self.out / DB_NAME)  # before reading it: a writer's lock blocks that too
        previous = None if self.request.full else read_previous(self.out)  # --full: unread
        self.forgotten = ForgetLedger.load(self.out).fingerprint()
        full = self.request.full or not _compatible(previous, self.request.layout, self.forgotten)
        if full:
            self._refuse_left_out(offered)
        built = list(previous.built) if previous else []
        plan = sources.plan(offered, in_flight, built, full=full,
                            on_disk=lambda b: sources.on_disk(self.out, b))  # fmt: skip
        try:
            if plan.empty and not full:  # not full: there is a database, built alike
                return self._up_to_date(plan)
            for source in plan.build:  # every file checked before anything changes
                self.stop.check()
                sources.verify(self.out, source)
            return self._apply(plan, fresh=full)
        except (duckdb.Error, OSError) as exc:
            raise self._ours(exc) from exc

    def _ours(self, exc: duckdb.Error | OSError) -> ExportError:
        if isinstance(exc, OSError):
            return output_error(exc, Path(exc.filename or self.out), "write the tables at")
        if isinstance(exc, duckdb.OutOfMemoryException):
            return ConfigError(
                f"The build ran out of memory within --memory-limit {self.request.memory_limit} "
                f"({_first_line(exc)}); give it more, e.g. --memory-limit 2GB."
            )
        return OutputError(f"The tables could not be built in {self.out}: {_first_line(exc)}")

    def _up_to_date(self, plan: BuildPlan) -> BuildSummary:
        remove_leftovers(self.out)
        versions.remove_stale(self.out)
        return self._summary("up-to-date", plan, rows=_read_rows(self.out), files=0)

    def _refuse_left_out(self, offered: list[Source]) -> None:
        """A build from nothing reads the manifest alone: refuse rather than drop the rows of
        day files it does not list."""
        left = sources.left_out(self.out, offered)
        if not left:
            return
        why = "--full" if self.request.full else "no database built with this --layout and version"
        more = f" and {len(left) - 1} more" if len(left) > 1 else ""
        raise InputError(
            f"{len(left)} day file(s) in {self.out} are not in its manifest ({left[0]}{more}), "
            f"and a build from nothing ({why}) reads the manifest alone, so their rows would be "
            "dropped; export those days again so the manifest records them, or delete the "
            "files to leave them out."
        )

    def _apply(self, plan: BuildPlan, *, fresh: bool) -> BuildSummary:
        versions.remove_stale(self.out)
        db = BuildDatabase(self.out, self.limits, fresh=fresh)
        draft: versions.Draft | None = None
        try:
            with self.stop.watching(db.con):
                self._change(db, plan)
                draft = versions.Draft(self.out)
                files = self._fill(db, draft, {(s.dataset, s.window) for s in plan.build})
                draft.seal()
                self._step("parquet-written", f"{files} files")
                rows = _count_rows(db.con)
            db.finish()
            self.stop.check()  # the last moment a stop cancels the build: renames from here
            refuse_writer(self.out / DB_NAME)  # one that opened it while we built
            draft.publish()
        except BaseException:
            db.discard()
            if draft is not None:
                draft.discard()
            raise
        self.observer.step("parquet-published", str(draft.root))
        db.swap()
        self.observer.step("database-swapped", str(self.out / DB_NAME))
        versions.remove_stale(self.out)
        return self._summary("built", plan, rows=rows, files=files)

    def _change(self, db: BuildDatabase, plan: BuildPlan) -> None:
        """The database's part: delete what is gone, build what changed, record how."""
        for statement in [sql.ddl(t) for t in TABLES.values()] + list(VIEWS.values()):
            db.con.execute(statement)
        for gone in plan.remove:
            self._delete(db, gone.dataset, gone.window)
            db.forget(gone.dataset, gone.window)
        for source in plan.build:
            self._build_window(db, source)
        db.set_info({"fingerprint": sql.fingerprint(), "layout": self.request.layout,
                     "forgotten": self.forgotten})  # fmt: skip

    def _step(self, name: str, detail: str) -> None:
        self.observer.step(name, detail)
        self.stop.check()

    def _delete(self, db: BuildDatabase, dataset: str, window: str) -> None:
        for table in _tables_of(dataset):
            db.con.execute(sql.delete_sql(table, None if table.snapshot else window))

    def _build_window(self, db: BuildDatabase, source: Source) -> None:
        path = str(self.out / source.file)
        self._delete(db, source.dataset, source.window)
        self._stage(db.con, source, path)
        tables = sorted(_tables_of(source.dataset), key=_weight, reverse=True)
        if len(tables) == 1:
            db.con.execute(sql.insert_sql(tables[0], source.window))
        else:
            with ThreadPoolExecutor(max_workers=self.limits.threads) as pool:
                list(pool.map(lambda t: self._insert(db, t, source.window), tables))
        (count,) = db.con.execute("SELECT count(*) FROM scratch.stage").fetchone() or (0,)
        db.con.execute("DROP TABLE scratch.stage")
        db.record(source, int(count))
        self.records += int(count)
        if source.dataset == "conversations":
            self.conversations += int(count)
        self._step("window", source.label)

    def _stage(self, con: duckdb.DuckDBPyConnection, source: Source, path: str) -> None:
        """Read the file into ``scratch.stage``: typed, or leniently if the typed read fails
        on a value of another type (or the dataset is a snapshot)."""
        if not source.snapshot:
            root = sql.root_of(source.dataset)
            keys = {k for (k,) in con.execute(sql.census_sql(path, source.compression)).fetchall()}
            unknown = keys - set(sql.held_fields(root)) if root.extra else set()
            try:
                con.execute(sql.typed_stage_sql(source.dataset, path, source.compression, unknown))
                return
            except (duckdb.InvalidInputException, duckdb.ConversionException):
                self.lenient.append(source.label)
        try:
            con.execute(sql.lenient_stage_sql(source.dataset, path, source.compression))
        except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
            raise InputError(
                f"{path} does not hold one JSON object per line ({_first_line(exc)}); export "
                f"{source.label} again."
            ) from exc

    def _insert(self, db: BuildDatabase, table: Table, window: str) -> None:
        self._on_cursor(db, lambda cursor: cursor.execute(sql.insert_sql(table, window)))

    def _on_cursor(
        self, db: BuildDatabase, work: Callable[[duckdb.DuckDBPyConnection], object]
    ) -> None:
        """Run ``work`` on a cursor of its own (one per thread: DuckDB runs them side by
        side), interrupted on a stop."""
        cursor = db.con.cursor()
        try:
            with self.stop.watching(cursor):
                work(cursor)
        finally:
            cursor.close()

    def _fill(self, db: BuildDatabase, draft: versions.Draft, rebuilt: set[tuple[str, str]]) -> int:
        """Give the draft a file for each table and window the database holds: written for the
        windows just built (and any the current version lacks), hard-linked otherwise.
        Returns how many were written."""
        layout = self.request.layout
        jobs = []
        for dataset, window in db.built():
            for table in _tables_of(dataset):
                relative = parquet.relative_path(layout, table.name, window)
                if (dataset, window) not in rebuilt and draft.link_current(relative):
                    continue
                jobs.append((table, window, draft.path(relative)))
        jobs.sort(key=lambda job: _weight(job[0]), reverse=True)

        def write(job: tuple[Table, str, Path]) -> None:
            table, window, path = job
            self._on_cursor(db, lambda cursor: parquet.write(cursor, path, table, window))

        with ThreadPoolExecutor(max_workers=self.limits.threads) as pool:
            list(pool.map(write, jobs))
        return len(jobs)

    def _summary(
        self, status: str, plan: BuildPlan, *, rows: dict[str, int], files: int
    ) -> BuildSummary:
        return BuildSummary(
            status=status,
            built=tuple(s.label for s in plan.build),
            removed=tuple(b.label for b in plan.remove),
            in_flight=plan.in_flight,
            kept_unlisted=plan.unlisted,
            lenient=tuple(self.lenient),
            records=self.records,
            conversations=self.conversations,
            rows=rows,
            parquet_files=files,
            database=str(self.out / DB_NAME),
            threads=self.limits.threads,
        )


def _tables_of(dataset: str) -> list[Table]:
    return [t for t in TABLES.values() if t.dataset == dataset]


def _weight(table: Table) -> int:
    """Deeper tables have more rows: start them first so the threads finish together."""
    return table.depth * 10 + len(table.columns)


def _lock_id() -> str:
    return f"tables-{uuid.uuid4().hex[:8]}"


def _require_manifest(out: Path) -> None:
    if not (out / MANIFEST_NAME).is_file():
        raise InputError(
            f"{out} holds no {MANIFEST_NAME}: it is not an export folder. Export into it first "
            f"(genesys-export export --out {out} ...), or give the folder you exported to."
        )


def _load_manifest(out: Path) -> Manifest:
    _require_manifest(out)
    try:
        return Manifest.load(out)
    except OutputError as exc:
        raise InputError(str(exc)) from exc


def _compatible(previous: Previous | None, layout: str, forgotten: str) -> bool:
    """Whether the database on disk was built by these declarations into this layout, after
    the GDPR deletions applied to the folder so far: a build after a forget starts a new file,
    so no erased value lingers in the old one's free pages."""
    if previous is None:
        return False
    info = previous.info
    return (info.get("fingerprint") == sql.fingerprint() and info.get("layout") == layout
            and info.get("forgotten", "") == forgotten)  # fmt: skip


def _count_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = {}
    for name in TABLES:
        row = con.execute(f"SELECT count(*) FROM {sql.ident(name)}").fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


def _read_rows(out: Path) -> dict[str, int]:
    con = duckdb.connect(str(out / DB_NAME), read_only=True)
    try:
        return _count_rows(con)
    finally:
        con.close()


def _with_seconds(summary: BuildSummary, seconds: float) -> BuildSummary:
    return dataclasses.replace(summary, seconds=seconds)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
