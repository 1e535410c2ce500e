"""`genesys-export run` and the Python API: one command from Genesys to tables, under one lock."""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import obstore
import orjson
import pyarrow.parquet as pq
import pytest
from obstore.store import S3Store

from exporter import api
from exporter.errors import ConfigError, ExportError, Interrupted, PermissionDenied
from exporter.pipeline import RunStop
from exporter.publish import parquet
from exporter.publish.report import Silent
from exporter.store.manifest import Manifest
from exporter.tables import TABLES
from genesys_sandbox import Sandbox, run_sandbox_in_thread
from tests import seaweedfs as weed
from tests.support import (
    START,
    TABLES_DATA,
    assert_exact,
    cli_env,
    days,
    raw_table_rows,
    tables_sandbox_settings,
)

# What a CronJob's config holds: everything `run` needs, no flag.
SCHEDULE: dict[str, dict[str, object]] = {
    "export": {"datasets": "conversations,user-details,users", "start": "2026-11-01",
               "end": "2026-11-04", "lookback": ""},
    "output": {"progress": False, "checkpoint_s": 0.0},
    "jobs": {"poll_initial_s": 0.02, "poll_max_s": 0.05, "max_concurrent_jobs": 2},
    "http": {"retry_backoff_base_s": 0.01},
    "tables": {"threads": 2},
}  # fmt: skip


def schedule(tmp_path: Path, out: Path, **jobs: object) -> Path:
    """The schedule's config file, writing into ``out``; ``jobs`` adds [jobs] keys."""
    sections = {**SCHEDULE, "output": {**SCHEDULE["output"], "out_dir": str(out)},
                "jobs": {**SCHEDULE["jobs"], **jobs}}  # fmt: skip
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in keys.items())
        for name, keys in sections.items()
    )
    config = tmp_path / f"schedule-{out.name}.toml"
    config.write_text(text)
    return config


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def options(sb: Any) -> dict[str, str]:
    """The connection, as the API takes it (the environment's names would do as well)."""
    return {"api_url": sb.url, "login_url": sb.url, "client_id": sb.client_id}


def env(sb: Any) -> dict[str, str]:
    return {"GENESYSCLOUD_OAUTHCLIENT_SECRET": sb.client_secret}


async def asyncio_run(function: Any, **kwargs: Any) -> Any:
    """Call a blocking API function from a test's event loop (the sandbox serves meanwhile)."""
    return await asyncio.to_thread(function, **kwargs)


async def test_run_on_an_empty_folder_exports_from_start_and_builds_exact_tables(
    tmp_path: Path,
) -> None:
    """The schedule's first `run` (config only, no flag) exports from the configured start and
    builds tables holding exactly the raw JSON's rows; the second fetches nothing already
    complete and finds the tables up to date; one summary with a section per step."""
    out = tmp_path / "out"
    async with Sandbox(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        first = await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
        assert (first.status, first.exit_code) == ("ok", 0), first.error
        assert set(first.steps) == {"export", "tables"}
        assert first.steps["export"]["windows"] == 6 and first.steps["export"]["snapshots"] == 1
        assert first.steps["tables"]["status"] == "built"
        raw = raw_table_rows(out)
        rows = first.steps["tables"]["rows"]
        assert {name: len(keys) for name, keys in raw.items()} == {n: rows[n] for n in raw}
        assert rows["users"] == len(sb.state.listings["users"].entities)
        conversations = Manifest.load(out).records("conversations")
        assert [r.name for r in conversations] == ["2026-11-01", "2026-11-02", "2026-11-03"]

        jobs = sb.stats().jobs_created
        second = await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
        assert second.exit_code == 0, second.error
        exported = second.steps["export"]  # only the day past the conversations' watermark
        assert exported["windows"] == exported["provisional"] == 1, exported
        assert sb.stats().jobs_created == jobs  # the query serves those: no job at all
    assert second.steps["tables"]["status"] in ("built", "up-to-date")


async def test_a_failing_step_fails_the_run_with_its_name(tmp_path: Path) -> None:
    """A database that cannot be opened stops the tables step: the run exits with that
    step's code, its error names the step, and the export step's work stands."""
    out = tmp_path / "out"
    async with Sandbox(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
        (out / "genesys.duckdb").write_bytes(b"not a database" * 1000)
        with pytest.raises(ExportError) as raised:
            await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
    summary = raised.value.summary
    assert raised.value.exit_code == summary.exit_code == 1
    assert summary.steps["export"]["exit_code"] == 0 and summary.steps["export"]["windows"] == 1
    assert summary.error.startswith("tables: ") and "cannot be opened" in summary.error


async def test_the_api_raises_the_exit_codes_error_with_the_summary(tmp_path: Path) -> None:
    """A dataset the OAuth client may not read: the API raises PermissionDenied (exit 3) with
    the run's summary, the others exported and the tables built all the same."""
    out = tmp_path / "out"
    denied = tables_sandbox_settings(denied_permissions=("analytics:userDetail:view",))
    async with Sandbox(denied) as sb:
        with pytest.raises(PermissionDenied) as raised:
            await asyncio_run(api.run, config=schedule(tmp_path, out), env=env(sb),
                              **options(sb))  # fmt: skip
    summary = raised.value.summary
    assert raised.value.exit_code == 3 and summary.status == "denied"
    assert summary.steps["tables"]["status"] == "built"
    assert summary.steps["export"]["denied"][0].startswith("user-details:")


def run_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "exporter", "run", "--config", str(config)]


def test_the_cli_prints_what_the_api_returns(tmp_path: Path) -> None:
    """The CLI's last line is the summary the API returns for the same run: the same steps,
    statuses, counts and rows (times and paths aside)."""
    with run_sandbox_in_thread(tables_sandbox_settings()) as sb:
        cli_out, api_out = tmp_path / "cli", tmp_path / "api"
        done = subprocess.run(run_command(schedule(tmp_path, cli_out)), env=cli_env(sb),
                              capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        printed = orjson.loads(done.stdout.splitlines()[-1])
        returned = api.run(config=schedule(tmp_path, api_out), env=env(sb), **options(sb))
    assert _comparable(printed) == _comparable(returned.as_json())


def _comparable(value: Any) -> Any:
    """A summary without what differs between two equal runs: times, paths, run ids."""
    varying = {"seconds", "database", "requests", "retries", "token_refreshes", "watermark",
               "run_id"}  # fmt: skip
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in varying}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


@pytest.mark.slow
@pytest.mark.parametrize("step", ["export", "tables"])
def test_sigterm_in_each_step_exits_130_keeping_the_work(tmp_path: Path, step: str) -> None:
    """SIGTERM during the export (jobs being read) or the build (the database copy aside):
    exit 130 naming the stop, the work done kept (checkpoints, the old tables), no traceback;
    the next run ends exact."""
    out = tmp_path / "out"
    with run_sandbox_in_thread(tables_sandbox_settings(latency_ms=20)) as sb:
        config = schedule(tmp_path, out, page_size=50)
        proc = subprocess.Popen(run_command(config), env=cli_env(sb), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        _wait_for(step, sb, out, proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr.decode()[-2000:]
        summary = orjson.loads(stdout.splitlines()[-1])
        assert summary["status"] == "interrupted" and b"Traceback" not in stderr
        assert summary["steps"][step]["exit_code"] == 130
        again = subprocess.run(run_command(config), env=cli_env(sb), capture_output=True,
                               timeout=120)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        assert_exact(sb, out / "conversations")
        _assert_tables_match(out)


def _wait_for(step: str, sb: Any, out: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until the step is under way: a job's pages being read, or the build's copy aside."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if step == "export" and sb.stats().count("jobs.results", 200) >= 3:
            return
        if step == "tables" and (out / ".genesys.duckdb.build").exists():
            return
        time.sleep(0.005)
    raise AssertionError(f"the {step} step never began")


def _assert_tables_match(out: Path) -> None:
    raw = raw_table_rows(out)
    with duckdb.connect(str(out / "genesys.duckdb"), read_only=True) as con:
        for table, keys in raw.items():
            (count,) = con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
            assert count == len(keys), table


def test_the_schedule_config_names_only_real_keys() -> None:
    """Every key the schedule's config sets exists: a CronJob's config can be all of `run`."""
    from exporter.config_rules import RULES

    for section, keys in SCHEDULE.items():
        assert set(keys) <= set(RULES[section]), section


async def test_the_api_exports_and_builds_as_the_commands_do(tmp_path: Path) -> None:
    """api.export returns the export's summary and api.tables the build's; bad input raises
    ConfigError (exit 2) with the summary the CLI would print attached; an unknown option
    is refused, naming the closest."""
    out = tmp_path / "out"
    async with Sandbox(tables_sandbox_settings()) as sb:
        exported = await asyncio_run(
            api.export, config=schedule(tmp_path, out), env=env(sb), **options(sb)
        )
        assert exported.exit_code == 0 and exported.windows == 6
        with pytest.raises(ConfigError) as raised:
            await asyncio_run(api.export, config=schedule(tmp_path, out), env=env(sb),
                              start="2099-01-01", **options(sb))  # fmt: skip
        assert raised.value.summary.as_json()["status"] == "bad_input"
    built = api.tables(config=schedule(tmp_path, out))
    assert built.status == "built" and built.rows["conversations"] == TABLES_DATA.conversations
    with pytest.raises(ConfigError, match="did you mean 'out'"):
        api.tables(config=schedule(tmp_path, out), oout="x")


async def test_run_prunes_what_retention_no_longer_keeps(tmp_path: Path) -> None:
    """With [retention] keep, run prunes after exporting: the oldest day goes from the folder
    and from the tables built right after, and the next run brings no pruned day back."""
    out = tmp_path / "out"
    age = (datetime.now(UTC) - (START + days(1))).days  # the cutoff falls on the second day
    async with Sandbox(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        config.write_text(config.read_text() + f'[retention]\nkeep = "{age}d"\n')
        first = await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
        assert first.exit_code == 0, first.error
        assert "conversations/2026-11-01" in first.steps["prune"]["windows"]
        names = [r.name for r in Manifest.load(out).records("conversations")]
        assert names == ["2026-11-02", "2026-11-03"]
        with duckdb.connect(str(out / "genesys.duckdb"), read_only=True) as con:
            days_left = con.execute(
                "SELECT DISTINCT source_window FROM conversations ORDER BY 1"
            ).fetchall()
        assert [d for (d,) in days_left] == names
        again = await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
    assert again.exit_code == 0 and again.steps["prune"]["status"] == "nothing"
    assert [r.name for r in Manifest.load(out).records("conversations")] == names


TERM_IN_PRUNE = """
import os, signal, sys
from exporter import cli, prune

def term_at(self, name, detail):
    if name == "manifest-saved":  # records removed, files not yet
        os.kill(os.getpid(), signal.SIGTERM)

prune._Silent.step = term_at
sys.exit(cli.main(["run", "--config", sys.argv[1]]))
"""


def test_sigterm_during_the_prune_lets_it_finish_then_stops_with_130(tmp_path: Path) -> None:
    """SIGTERM once the prune has saved the manifest and before it removed the files: the
    prune finishes (short, and its order kill-safe), the build not begun is marked
    interrupted, exit 130 with no traceback; the next run builds the tables without the
    pruned day and prunes nothing more."""
    out = tmp_path / "out"
    age = (datetime.now(UTC) - (START + days(1))).days  # the cutoff falls on the second day
    with run_sandbox_in_thread(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        config.write_text(config.read_text() + f'[retention]\nkeep = "{age}d"\n')
        done = subprocess.run([sys.executable, "-c", TERM_IN_PRUNE, str(config)],
                              env=cli_env(sb), capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 130, done.stderr.decode()[-2000:]
        assert b"Traceback" not in done.stderr
        steps = orjson.loads(done.stdout.splitlines()[-1])["steps"]
        assert steps["prune"]["status"] == "pruned" and steps["tables"]["exit_code"] == 130
        assert not (out / "conversations/2026-11-01.jsonl").exists()
        again = subprocess.run(run_command(config), env=cli_env(sb), capture_output=True,
                               timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert orjson.loads(again.stdout.splitlines()[-1])["steps"]["prune"]["status"] == "nothing"
    names = [r.name for r in Manifest.load(out).records("conversations")]
    assert names == ["2026-11-02", "2026-11-03"]
    with duckdb.connect(str(out / "genesys.duckdb"), read_only=True) as con:
        built = con.execute("SELECT DISTINCT source_window FROM conversations ORDER BY 1")
        assert [d for (d,) in built.fetchall()] == names


# -- run, then publish


def published_rows(server: weed.SeaweedFS, prefix: str) -> dict[str, int]:
    """Rows per table in the Parquet objects under ``prefix`` (each file's footer), the
    publish's own state objects aside."""
    store = S3Store(weed.BUCKET, prefix=prefix, endpoint=server.s3_url,
                    access_key_id=weed.ACCESS_KEY, secret_access_key=weed.SECRET_KEY,
                    region=weed.REGION, client_options={"allow_http": True})  # fmt: skip
    rows: dict[str, int] = {}
    for meta in obstore.list(store).collect():
        key = meta["path"]
        if key.endswith(".parquet") and not key.startswith("_"):
            footer = pq.read_metadata(io.BytesIO(obstore.get(store, key).bytes()))
            table = key.split("/", 1)[0]
            rows[table] = rows.get(table, 0) + footer.num_rows
    return rows


def local_counts(out: Path) -> dict[str, int]:
    with duckdb.connect(str(out / "genesys.duckdb"), read_only=True) as con:
        return {t.name: con.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0]  # type: ignore[index]
                for t in TABLES.values()}  # fmt: skip


@pytest.fixture
def lake_env(seaweedfs: weed.SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> weed.SeaweedFS:
    """The storage's credentials and endpoint in the environment, the standard way."""
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    return seaweedfs


async def test_run_publishes_what_it_built_then_only_what_changed(
    tmp_path: Path, lake_env: weed.SeaweedFS
) -> None:
    """With [publish] set, run publishes the tables it built, every row once; the next run
    publishes only days its build changed, and the objects hold the local tables' rows."""
    out, prefix = tmp_path / "out", f"run-{uuid.uuid4().hex[:8]}"
    async with Sandbox(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        config.write_text(config.read_text() + f'[publish]\nformat = "parquet"\n'
                          f'to = "s3://{weed.BUCKET}/{prefix}"\n')  # fmt: skip
        first = await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
        assert first.exit_code == 0, first.error
        assert set(first.steps) == {"export", "tables", "publish"}
        published = first.steps["publish"]
        assert published["status"] == "published" and published["unchanged"] == 0
        assert published["rows"] == sum(first.steps["tables"]["rows"].values())
        second = await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
    assert second.exit_code == 0, second.error
    rebuilt = {label.split("/")[1] for label in second.steps["tables"]["built"]}
    again = second.steps["publish"]
    assert {label.split("/")[1] for label in again["written"]} <= rebuilt | {"snapshot"}
    assert len(again["written"]) + again["unchanged"] == len(published["written"])
    assert published_rows(lake_env, prefix) == {
        name: count for name, count in local_counts(out).items() if count
    }


async def test_run_refuses_a_publish_it_cannot_do_before_exporting(tmp_path: Path) -> None:
    """A publish with no destination is bad input before anything runs: exit 2, nothing
    exported, the message naming the missing flag and key."""
    out = tmp_path / "out"
    async with Sandbox(tables_sandbox_settings()) as sb:
        with pytest.raises(ConfigError) as raised:
            await asyncio_run(api.run, config=schedule(tmp_path, out), env=env(sb),
                              format="delta", **options(sb))  # fmt: skip
        assert sb.stats().jobs_created == 0
    assert raised.value.exit_code == 2 and "needs --to" in str(raised.value)
    assert not (out / "manifest.json").exists()


async def test_a_failed_build_is_not_published(tmp_path: Path) -> None:
    """The tables step failing, the publish step is skipped, saying why: what a failed build
    left behind is never shipped."""
    out = tmp_path / "out"
    async with Sandbox(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        await asyncio_run(api.run, config=config, env=env(sb), **options(sb))
        (out / "genesys.duckdb").write_bytes(b"not a database" * 1000)
        with pytest.raises(ExportError) as raised:
            await asyncio_run(api.run, config=config, env=env(sb), format="parquet",
                              to="s3://nowhere/at-all", **options(sb))  # fmt: skip
    publish = raised.value.summary.steps["publish"]
    assert publish == {"status": "skipped", "exit_code": 0,
                       "reason": "the tables were not built (error)"}  # fmt: skip


async def test_a_stop_during_the_publish_keeps_whole_days_and_the_next_run_finishes(
    tmp_path: Path, lake_env: weed.SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop asked as the publish commits its first day (the moment seen by the publish's
    observer, not a guessed delay; a day a batch, as a large history is): the run exits 130
    with the export and tables done; the next run publishes the rest,
    and the objects hold the local tables' rows exactly."""
    out, prefix = tmp_path / "out", f"stop-{uuid.uuid4().hex[:8]}"
    stop = RunStop()

    def step(self: object, name: str, detail: str) -> None:
        if name == "committed":
            stop.publish.request()  # what RunStop.stop does in the publish step, thread-safe

    monkeypatch.setattr(Silent, "step", step)
    monkeypatch.setattr(parquet, "BATCH_BYTES", 1)  # a day a batch: a stop between them
    async with Sandbox(tables_sandbox_settings()) as sb:
        config = schedule(tmp_path, out)
        args = {"format": "parquet", "to": f"s3://{weed.BUCKET}/{prefix}", **options(sb)}
        with pytest.raises(Interrupted) as raised:
            await asyncio_run(api.run, config=config, env=env(sb), stop=stop, **args)
        steps = raised.value.summary.steps
        assert steps["export"]["exit_code"] == steps["tables"]["exit_code"] == 0
        assert steps["publish"]["exit_code"] == 130
        monkeypatch.undo()
        for name, value in lake_env.env().items():
            monkeypatch.setenv(name, value)
        again = await asyncio_run(api.run, config=config, env=env(sb), **args)
    assert again.exit_code == 0 and again.steps["publish"]["unchanged"] > 0
    assert published_rows(lake_env, prefix) == {
        name: count for name, count in local_counts(out).items() if count
    }
