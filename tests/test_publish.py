"""The publish's decisions, without a server: what a request needs, how the build is cut into
days and what each day's digest follows, the published schemas, where Parquet objects go and
when a day counts as published, how the libraries' failures become ours, and the command's
own refusals (nothing configured, no tables, the folder held, the extra missing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import api
from exporter.errors import AuthError, ConfigError, LockHeld, OutputError, Unreachable
from exporter.publish import FORMATS, PublishRequest, publish_tables
from exporter.publish import arrow as published_arrow
from exporter.publish.failures import catalog_error, storage_error, translating
from exporter.publish.local import SNAPSHOT, LocalFile, TableDay, table_days
from exporter.publish.parquet import in_day, in_place, object_key
from exporter.store.lock import RunLock
from exporter.tables import TABLES
from exporter.tables.parquet import day_of
from exporter.tables.sources import Built
from tests.support import assert_one_clear_line, last_json, run_cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CONVERSATION_TABLES = [t for t in TABLES.values() if t.dataset == "conversations"]


def built(dataset: str, window: str, sha: str = "a") -> Built:
    return Built(dataset, window, f"{dataset}/{window}.jsonl", sha, 100, 10)


# -- the request


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "parquet"}, "--format parquet needs --to"),
        ({"format": "delta", "to": "https://example.com/x"}, "--to must be an object storage URL"),
        ({"format": "iceberg"}, "--format iceberg needs --catalog"),
        ({"format": "iceberg", "catalog": "lake", "namespace": ""}, "--namespace must name"),
        ({"format": "csv", "to": "s3://b/p"}, "--format 'csv' is not a format"),
    ],
)
def test_a_request_is_refused_without_what_its_format_needs(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    """Parquet and Delta need an object storage URL, Iceberg a catalog and a namespace; each
    refusal is a sentence naming the flag."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        PublishRequest(tmp_path, **changes)  # type: ignore[arg-type]


def test_a_request_keeps_only_what_its_format_uses(tmp_path: Path) -> None:
    """A trailing slash is dropped; an Iceberg publish ignores --to, a Parquet one --catalog
    (one config file may name both kinds)."""
    parquet = PublishRequest(tmp_path, "parquet", to="s3://lake/genesys/", catalog="x")
    assert parquet.to == "s3://lake/genesys" and parquet.destination == "s3://lake/genesys"
    iceberg = PublishRequest(tmp_path, "iceberg", to="", catalog="lake")
    assert iceberg.destination == "Iceberg catalog lake namespace genesys"


# -- days and digests


def test_the_build_is_cut_into_days_per_table_and_snapshots_whole() -> None:
    """Each conversation table gets a day per day window, with the windows beginning in it
    (a 6h window under its first day); a snapshot table its newest snapshot, as SNAPSHOT."""
    windows = [built("conversations", "2026-11-01"),
               built("conversations", "20261102T000000Z_20261102T060000Z"),
               built("conversations", "20261102T060000Z_20261102T120000Z"),
               built("users", "2026-12-01"), built("users", "2026-12-02")]  # fmt: skip
    days = table_days(windows, "fp")
    conversations = [d for d in days if d.table.name == "conversations"]
    assert [(d.day, [f.window for f in d.files]) for d in conversations] == [
        ("2026-11-01", ["2026-11-01"]),
        ("2026-11-02", ["20261102T000000Z_20261102T060000Z", "20261102T060000Z_20261102T120000Z"]),
    ]
    (users,) = [d for d in days if d.table.name == "users"]
    assert users.day == SNAPSHOT and [f.window for f in users.files] == ["2026-12-02"]
    assert {d.table.name for d in days} == {t.name for t in CONVERSATION_TABLES} | {"users"}


def test_a_days_digest_follows_its_windows_and_the_declarations_only() -> None:
    """A window exported again (another sha256) changes its day's digest in every table of
    the dataset and no other day's; the same windows give the same digests; other
    declarations (a new fingerprint) change every digest."""

    def digests(windows: list[Built], fingerprint: str = "fp") -> dict[str, str]:
        return {d.label: d.digest for d in table_days(windows, fingerprint)}

    before = [built("conversations", "2026-11-01"), built("conversations", "2026-11-02")]
    after = [before[0], built("conversations", "2026-11-02", sha="b")]
    assert digests(before) == digests(list(before))
    changed = {k for k, v in digests(after).items() if digests(before)[k] != v}
    assert changed == {f"{t.name}/2026-11-02" for t in CONVERSATION_TABLES}
    assert all(digests(before, "other")[k] != v for k, v in digests(before).items())


WINDOWS = st.lists(
    st.sampled_from([f"2026-11-0{d}" for d in range(1, 5)]
                    + [f"2026110{d}T{h:02d}0000Z_2026110{d}T{h + 6:02d}0000Z"
                       for d in range(1, 5) for h in (0, 6, 12)]),
    unique=True,
)  # fmt: skip


@given(WINDOWS)
def test_every_window_is_in_exactly_one_day_of_each_table(names: list[str]) -> None:
    """Whatever windows were built, each table of their dataset holds each window in exactly
    one day, the day the window begins."""
    days = table_days([built("conversations", n) for n in names], "fp")
    for table in CONVERSATION_TABLES:
        placed = [(f.window, d.day) for d in days if d.table is table for f in d.files]
        assert sorted(w for w, _ in placed) == sorted(names)
        assert all(day == day_of(window) for window, day in placed)


# -- schemas


def test_every_table_has_a_published_schema_all_nullable_json_as_text() -> None:
    """Each table's published schema has its declared columns, every one nullable, JSON as
    strings, and a date column when it is windowed (a snapshot is published whole)."""
    for table in TABLES.values():
        schema = published_arrow.schema(table)
        assert all(field.nullable for field in schema), table.name
        assert ("date" in schema.names) != table.snapshot, table.name
    conversations = published_arrow.schema(TABLES["conversations"])
    assert conversations.field("evaluations").type == pa.string()
    assert conversations.field("division_ids").type == pa.list_(pa.string())
    assert conversations.field("conversation_start").type == pa.timestamp("us", tz="UTC")


# -- where Parquet objects go, and when a day is in place


def test_parquet_objects_go_under_the_day_and_a_snapshot_has_one_name(tmp_path: Path) -> None:
    """A day window's file is <table>/date=<day>/part.parquet, a shorter window's
    <table>/date=<day>/<window>.parquet, a snapshot's <table>/snapshot.parquet; a key is in a
    day's folder only directly."""
    day = TableDay(TABLES["metrics"], "2026-11-02", (), "d")
    snap = TableDay(TABLES["users"], SNAPSHOT, (), "d")
    assert (
        object_key(day, LocalFile("2026-11-02", tmp_path)) == "metrics/date=2026-11-02/part.parquet"
    )
    short = "20261102T000000Z_20261102T060000Z"
    assert object_key(day, LocalFile(short, tmp_path)) == f"metrics/date=2026-11-02/{short}.parquet"
    assert object_key(snap, LocalFile("2026-12-01", tmp_path)) == "users/snapshot.parquet"
    assert in_day("metrics/date=2026-11-02/x.parquet", day)
    assert not in_day("metrics/date=2026-11-02/deeper/x.parquet", day)
    assert not in_day("metrics/date=2026-11-03/part.parquet", day)
    assert in_day("users/snapshot.parquet", snap) and not in_day("users/x/y.parquet", snap)


def test_a_parquet_day_is_in_place_only_as_recorded() -> None:
    """Published means: the digest recorded, and exactly the recorded objects at the recorded
    ETags; another digest, an object replaced, missing or added is not in place."""
    day = TableDay(TABLES["metrics"], "2026-11-02", (), "d1")
    key = "metrics/date=2026-11-02/part.parquet"
    recorded = {"digest": "d1", "objects": {key: '"e1"'}}
    assert in_place(recorded, {key: '"e1"', "metrics/date=2026-11-03/part.parquet": "x"}, day)
    assert not in_place({**recorded, "digest": "d0"}, {key: '"e1"'}, day)
    assert not in_place(recorded, {key: '"e2"'}, day)
    assert not in_place(recorded, {}, day)
    assert not in_place(recorded, {key: '"e1"', "metrics/date=2026-11-02/y.parquet": "y"}, day)
    assert not in_place(None, {key: '"e1"'}, day)


# -- failures


def _library_error(module: str, name: str, message: str) -> Exception:
    """An exception as a library raises it: its class from that library's module."""
    return type(name, (Exception,), {"__module__": module})(message)


@pytest.mark.parametrize(
    ("message", "kind", "says"),
    [
        ("Error performing PUT http://169.254.169.254/latest/api/token: 403", ConfigError,
         "No credentials for s3://lake/p were found: set AWS_ACCESS_KEY_ID"),
        ("Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket</Code>",
         ConfigError, "The bucket of s3://lake/p does not exist"),
        ("Server returned non-2xx status code: 403 Forbidden: <Code>AccessDenied</Code>",
         AuthError, "(403 Forbidden, AccessDenied)"),
        ("Error performing GET http://10.0.0.9:9000/lake in 3s - HTTP error: error sending "
         "request", Unreachable, "of s3://lake/p at http://10.0.0.9:9000 (error sending request)"),
        ("Server returned non-2xx status code: 500 Internal Server Error", OutputError,
         "Could not write x at s3://lake/p: 500 Internal Server Error."),
        # A status code inside a random name is none: this endpoint is unreachable, not denied.
        ("Error performing GET http://127.0.0.1:1/lake/t4013ab/_genesys_publish/format in 1s "
         "- HTTP error: error sending request", Unreachable, "(error sending request)"),
    ],
)  # fmt: skip
def test_storage_failures_become_ours_by_what_the_user_can_do(
    message: str, kind: type[Exception], says: str
) -> None:
    """Missing credentials, a missing bucket, access denied, an endpoint nobody answers and
    anything else: each its own class of error, naming the destination and the fix."""
    error = storage_error(_library_error("obstore.exceptions", "GenericError", message),
                          "s3://lake/p", "write x")  # fmt: skip
    assert type(error) is kind and says in str(error)


def test_catalog_failures_become_ours_and_a_bug_of_ours_passes_through() -> None:
    """pyiceberg's refusals and requests' connection errors are ours; a TypeError raised
    within ``translating`` is not a library's and stays itself."""
    forbidden = _library_error("pyiceberg.exceptions", "ForbiddenError", "signature mismatch")
    assert type(catalog_error(forbidden, "lake", "load")) is AuthError
    refused = _library_error("requests.exceptions", "ConnectionError",
                             "HTTPConnectionPool(host='10.0.0.1', port=8181): Max retries "
                             "exceeded ([Errno 111] Connection refused)")  # fmt: skip
    unreachable = catalog_error(refused, "lake", "load")
    assert type(unreachable) is Unreachable and "at 10.0.0.1:8181 (Connection refused)" in str(
        unreachable
    )
    with pytest.raises(TypeError), translating("s3://lake/p", "read"):
        raise TypeError("a bug")
    with pytest.raises(AuthError), translating("s3://lake/p", "read"):
        raise _library_error("deltalake._internal", "DeltaError", "403 Forbidden")


# -- the command's own refusals


def test_publish_with_nothing_configured_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """No --format and no [publish]: one line saying what to give, exit 2, the summary."""
    done = run_cli("publish", "--out", str(tmp_path), cwd=tmp_path)
    assert_one_clear_line(done, 2, "Nothing says where to publish", "--format")
    assert last_json(done)["status"] == "bad_input"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_folder_with_no_tables_is_refused_before_anything(tmp_path: Path, fmt: str) -> None:
    """A folder with no genesys.duckdb: one line saying to build the tables first, exit 2,
    and no lock file left in it."""
    flags = ["--catalog", "lake"] if fmt == "iceberg" else ["--to", "s3://lake/p"]
    done = run_cli("publish", "--out", str(tmp_path), "--format", fmt, *flags, cwd=tmp_path)
    assert_one_clear_line(done, 2, "holds no genesys.duckdb", "genesys-export tables --out")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_another_run_holds_is_refused_with_75(tmp_path: Path) -> None:
    """While an export, a build or another publish holds the folder, a publish is refused
    with LockHeld (exit 75) before it reads or writes anything."""
    (tmp_path / "genesys.duckdb").write_bytes(b"")
    request = PublishRequest(tmp_path, "parquet", to="s3://lake/p")
    with RunLock(tmp_path, "other-run"), pytest.raises(LockHeld):
        publish_tables(request)


def test_the_api_takes_the_flags_as_keywords_and_refuses_what_is_not_configured(
    tmp_path: Path,
) -> None:
    """api.publish_request reads [publish] or its keywords; with no format it is a
    ConfigError saying what to give."""
    settings = api.load_local(None, {}, {"out": str(tmp_path), "format": "delta",
                                         "to": "s3://lake/genesys"})  # fmt: skip
    request = api.publish_request(settings)
    assert (request.format, request.to, request.out_dir) == ("delta", "s3://lake/genesys", tmp_path)
    with pytest.raises(ConfigError, match="Nothing says where to publish"):
        api.publish(out=str(tmp_path))


MISSING_EXTRA = """
import sys
sys.modules["deltalake"] = None  # as if the lakehouse extra were not installed
from exporter import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_without_the_lakehouse_extra_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    """A format whose library is missing: one line naming the extra and the pip command,
    exit 2."""
    done = subprocess.run([sys.executable, "-c", MISSING_EXTRA, "publish", "--out",
                           str(tmp_path), "--format", "delta", "--to", "s3://lake/p"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert_one_clear_line(done, 2, "needs the lakehouse extra",
                          "pip install 'genesys-exporter[lakehouse]'")  # fmt: skip


def test_every_publish_flag_and_key_is_documented_in_the_lakehouse_section() -> None:
    """Every publish flag and [publish] key is in the README's Lakehouse section, and the
    command is in the CLI reference."""
    from exporter.cli import build_parser
    from exporter.config_rules import RULES

    section = README.split("\n## Lakehouse\n", 1)[1].split("\n## ", 1)[0]
    command = build_parser()._subparsers._group_actions[0].choices["publish"]  # type: ignore[union-attr]
    flags = [f for a in command._actions for f in a.option_strings if f.startswith("--")]
    shared = ("--help", "--config", "--out", "--verbose", "--log-format")  # the CLI reference's
    for flag in [f for f in flags if f not in shared]:
        assert flag in section, flag
    for key in RULES["publish"]:
        assert f"{key} = " in section, key
    assert "genesys-export publish" in README.split("\n## CLI reference\n", 1)[1]
