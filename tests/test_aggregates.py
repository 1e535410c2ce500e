"""Conversation aggregates end to end: every group, bucket and metric of the sandbox's truth
exactly once over several days, through small pages, repeats, the query tail, a denied
permission and failing or expiring jobs."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import orjson
import pytest

from exporter.datasets import select
from exporter.datasets.conversation_aggregates import CONVERSATION_AGGREGATES
from exporter.datasets.records import WindowBounds
from exporter.datasets.seen import SeenKeys
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import Stopper, export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from exporter.summary import Summary
from exporter.tables import TABLES, TablesRequest, build_tables
from exporter.windows import Window
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from tests.support import (
    ANNOUNCED_BUDGET,
    START,
    TABLES_DATA,
    StopAfterPages,
    cli_env,
    days,
    exporter_settings,
    put_window_file,
    run_cli,
    sandbox_settings,
    stop_after,
)

AGGREGATES = select("conversation-aggregates")
Entry = tuple[str, str, str, str]  # group (sorted JSON), interval, metric, stats (sorted JSON)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def exported_entries(out: Path) -> Counter[Entry]:
    """Every (group, bucket, metric, stats) of the aggregates files, with multiplicity."""
    found: Counter[Entry] = Counter()
    for path in sorted((out / "conversation-aggregates").glob("*.jsonl")):
        for line in read_records(path):
            result = orjson.loads(line)
            (bucket,) = result["data"]  # one bucket a line
            for metric in bucket["metrics"]:
                found[(_json(result["group"]), bucket["interval"], metric["metric"],
                       _json(metric["stats"]))] += 1  # fmt: skip
    return found


def truth(sb: Any, days_: int = 3) -> set[Entry]:
    return {
        (_json(e["group"]), e["interval"], e["metric"], _json(e["stats"]))
        for e in sb.aggregate_truth(START, START + days(days_))
    }


def assert_aggregates_exact(sb: Any, out: Path, days_: int = 3) -> None:
    found = exported_entries(out)
    assert set(found) == truth(sb, days_) and max(found.values()) == 1
    assert not list(out.rglob("*.part"))


async def run(sb: Any, out: Path, datasets: Any = AGGREGATES, **sections: Any) -> Summary:
    settings = exporter_settings(sb, out, **sections)
    request = ExportRequest(start=START, end=START + days(3), datasets=datasets)
    return await export(settings, request, progress=NoProgress())


async def test_three_days_are_every_group_bucket_and_metric_once(sandbox, tmp_path) -> None:
    """Three days through pages of 7 groups (a job over two days sends each group's buckets
    of both): every entry of the truth once, one bucket a line in the day of its start,
    each day complete, and the jobs were asked for the default request."""
    summary = await run(sandbox, tmp_path, aggregates={"page_size": 7})
    assert summary.status == "ok", summary.error
    assert_aggregates_exact(sandbox, tmp_path)
    records = Manifest.load(tmp_path).records("conversation-aggregates")
    assert [r.name for r in records] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert {r.status for r in records} == {"complete"}
    for record in records:
        for line in read_records(tmp_path / record.file):
            assert orjson.loads(line)["data"][0]["interval"].startswith(record.name)
    stats = sandbox.stats()
    assert stats.count("aggregates.jobs.results", 200) > 3 * 2  # more than one page a job
    groups = {e[0] for e in truth(sandbox)}
    assert {tuple(orjson.loads(g)) for g in groups} >= {("direction", "mediaType", "queueId")}


async def test_repeated_groups_are_written_once(sandbox, tmp_path) -> None:
    """A results page that repeats the previous page's last group: dropped by (group, bucket)."""
    sandbox.add_fault(FaultRule("repeat-records", routes=("aggregates.jobs.results",), count=3))
    summary = await run(sandbox, tmp_path, aggregates={"page_size": 5})
    assert summary.status == "ok", summary.error
    assert summary.repeats_dropped > 0
    assert_aggregates_exact(sandbox, tmp_path)


async def test_past_the_watermark_the_unpaged_query_serves_a_provisional_tail(tmp_path) -> None:
    """Days past the details' watermark come from the sync aggregates query (one answer a
    span, no paging), provisional; once it passes them a rerun makes them complete."""
    mark = START + timedelta(days=1, hours=6)
    async with Sandbox(sandbox_settings(availability_date=mark)) as sb:
        first = await run(sb, tmp_path)
        assert first.status == "ok", first.error
        assert_aggregates_exact(sb, tmp_path)
        records = Manifest.load(tmp_path).records("conversation-aggregates")
        assert {r.name: r.source for r in records} == {
            "2026-11-01": "jobs", "2026-11-02": "query", "2026-11-03": "query"}  # fmt: skip
        assert sb.stats().count("aggregates.query", 200) == 2  # one answer a day: no page 2
        sb.update(availability_date=None)
        again = await run(sb, tmp_path)
        assert again.status == "ok", again.error
        assert_aggregates_exact(sb, tmp_path)
        records = Manifest.load(tmp_path).records("conversation-aggregates")
        assert {r.source for r in records} == {"jobs"}


async def test_a_denied_permission_fails_aggregates_alone(tmp_path) -> None:
    """Without analytics:conversationAggregate:view the dataset is denied in one line naming
    it, exit 3, and the conversations are exported all the same."""
    settings = sandbox_settings(denied_permissions=("analytics:conversationAggregate:view",))
    async with Sandbox(settings) as sb:
        summary = await run(sb, tmp_path, select("conversations,conversation-aggregates"))
    assert summary.exit_code == 3 and summary.status == "denied"
    (line,) = summary.denied
    assert "conversation-aggregates" in line and "analytics:conversationAggregate:view" in line
    records = Manifest.load(tmp_path).records("conversations")
    assert {r.status for r in records} == {"complete"} and len(records) == 3
    assert not Manifest.load(tmp_path).records("conversation-aggregates")


async def test_failed_and_expired_jobs_are_submitted_again(sandbox, tmp_path) -> None:
    """An aggregates job that fails once, and results that expire while read, are handled as
    details jobs are: submitted again (split when expired), still every entry once."""
    sandbox.add_fault(FaultRule("job-failed", routes=("aggregates.jobs.submit",), count=1))
    sandbox.add_fault(
        FaultRule("job-expired", routes=("aggregates.jobs.results",), count=1, skip=2)
    )
    summary = await run(sandbox, tmp_path, aggregates={"page_size": 5})
    assert summary.status == "ok", summary.error
    assert_aggregates_exact(sandbox, tmp_path)
    assert sandbox.stats().count("aggregates.jobs.submit", 202) >= 4


# ---- tables -------------------------------------------------------------------------------------


async def export_for_tables(out: Path) -> None:
    """Conversations from the day before the data (empty, so that the first day is compared
    too) to the third day, and the aggregates of the three days."""
    async with Sandbox(sandbox_settings(dataset=TABLES_DATA)) as sb:
        settings = exporter_settings(sb, out)
        for datasets, first in (("conversations", START - days(1)),
                                ("conversation-aggregates", START)):  # fmt: skip
            request = ExportRequest(start=first, end=START + days(3), datasets=select(datasets))
            summary = await export(settings, request, progress=NoProgress())
            assert summary.status == "ok", summary.error


def reconciliation(out: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(out / "genesys.duckdb"), read_only=True) as con:
        return con.execute(
            "SELECT status, metric, bucket_start::VARCHAR, aggregates_count, details_count "
            "FROM conversation_aggregates_reconciliation ORDER BY ALL"
        ).fetchall()


async def test_the_table_holds_every_stat_and_the_reconciliation_finds_no_difference(
    tmp_path,
) -> None:
    """conversation_aggregates holds one row per group, bucket and metric of the raw lines,
    keyed uniquely; the reconciliation view compares all three days (each has its
    conversations and the day before's) and every row is the same on both sides."""
    await export_for_tables(tmp_path)
    build_tables(TablesRequest(tmp_path, threads=2))
    lines = [orjson.loads(line) for path in sorted((tmp_path / "conversation-aggregates")
             .glob("*.jsonl")) for line in read_records(path)]  # fmt: skip
    expected = sum(len(line["data"][0]["metrics"]) for line in lines)
    with duckdb.connect(str(tmp_path / "genesys.duckdb"), read_only=True) as con:
        key = ", ".join(TABLES["conversation_aggregates"].key)
        (total, distinct, days_), = con.execute(
            f"SELECT count(*), count(DISTINCT ({key})), count(DISTINCT source_window) "
            "FROM conversation_aggregates"
        ).fetchall()  # fmt: skip
    assert total == distinct == expected > 0 and days_ == 3
    rows = reconciliation(tmp_path)
    assert rows and {status for status, *_ in rows} == {"same"}
    assert {bucket[:10] for _, _, bucket, _, _ in rows} == {"2026-11-01", "2026-11-02",
                                                           "2026-11-03"}  # fmt: skip


async def test_a_tampered_figure_shows_in_the_reconciliation(tmp_path) -> None:
    """One count changed by hand in a day file (recorded as an export would): that row, and
    only it, is 'different', with both figures beside each other."""
    await export_for_tables(tmp_path)
    path = tmp_path / "conversation-aggregates" / "2026-11-02.jsonl"
    lines = [orjson.loads(line) for line in read_records(path)]
    target = next(line for line in lines if line["data"][0]["metrics"][0]["metric"] == "nOffered")
    stats = target["data"][0]["metrics"][0]["stats"]
    real = stats["count"]
    stats["count"] = real + 1
    put_window_file(tmp_path, "conversation-aggregates", "2026-11-02",
                    [orjson.dumps(line) for line in lines])  # fmt: skip
    build_tables(TablesRequest(tmp_path, threads=2))
    differing = [row for row in reconciliation(tmp_path) if row[0] != "same"]
    bucket = target["data"][0]["interval"].split("/")[0]
    assert [(s, m, c_a, c_d) for s, m, _, c_a, c_d in differing] == [
        ("different", "nOffered", real + 1, real)]  # fmt: skip
    assert differing[0][2].replace(" ", "T").startswith(bucket[:16])


# ---- stops and kills ----------------------------------------------------------------------------


async def test_a_stop_mid_job_keeps_its_pages_and_the_next_run_resumes_exact(tmp_path) -> None:
    """Stopped (as SIGTERM does) after a few pages: exit 130, windows kept at their cursors;
    the next run continues those jobs, ends exact and submits no job for a kept window."""
    async with Sandbox(sandbox_settings()) as sb:
        settings = exporter_settings(sb, tmp_path, aggregates={"page_size": 3})
        request = ExportRequest(start=START, end=START + days(3), datasets=AGGREGATES)
        stopper = Stopper()
        stopper.attach(asyncio.current_task())  # type: ignore[arg-type]
        first = await export(settings, request, progress=StopAfterPages(stopper, 4),
                             stopper=stopper)  # fmt: skip
        assert first.exit_code == 130 and first.kept_windows >= 1, first
        kept = [r for r in Manifest.load(tmp_path).records("conversation-aggregates")
                if r.status == "in-progress" and r.cursor]  # fmt: skip
        assert kept
        submitted = sb.stats().count("aggregates.jobs.submit", 202)
        again = await export(settings, request, progress=NoProgress())
        assert again.status == "ok", again.error
        assert_aggregates_exact(sb, tmp_path)
        resumed = {r.job_id for r in kept}
        assert sb.stats().count("aggregates.jobs.submit", 202) - submitted <= 2 - len(resumed)


def command(tmp_path: Path, out: Path) -> list[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        "[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\nmax_concurrent_jobs = 2\n"
        "[aggregates]\npage_size = 3\n[output]\ncheckpoint_s = 0.0\n"
        "[http]\nretry_backoff_base_s = 0.01\n"
    )
    return [sys.executable, "-m", "exporter", "export", "--config", str(config),
            "--datasets", "conversation-aggregates", "--start", "2026-11-01", "--end",
            "2026-11-04", "--out", str(out), "--no-progress"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_kill_or_a_signal_inside_an_aggregates_job_resumes_exact(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed or stopped while its jobs' pages are read (some buckets written, cursors
    checkpointed), the rerun ends with every group, bucket and metric once."""
    settings = sandbox_settings(latency_ms=20, rate_per_minute=ANNOUNCED_BUDGET)
    with run_sandbox_in_thread(settings) as sb:
        out = tmp_path / "out"
        stop_after(sb, command(tmp_path, out), "aggregates.jobs.results", 8, sig)
        records = Manifest.load(out).records("conversation-aggregates")
        assert any(r.status == "in-progress" and r.cursor for r in records), records
        again = subprocess.run(command(tmp_path, out), env=cli_env(sb), capture_output=True,
                               timeout=90)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        assert_aggregates_exact(sb, out)


@pytest.mark.parametrize(("denied", "verdict", "code"), [
    pytest.param((), "ok", 0, id="granted"),
    pytest.param(("analytics:conversationAggregate:view",), "denied", 3, id="denied"),
])  # fmt: skip
def test_auth_check_probes_the_aggregates_own_permission(
    tmp_path: Path, denied: tuple[str, ...], verdict: str, code: int
) -> None:
    """auth check reads the details' watermark the aggregates borrow, then asks the
    aggregates query itself, so a client without analytics:conversationAggregate:view is
    told so (exit 3) though it may read the watermark."""
    config = tmp_path / "empty.toml"
    config.write_text("")
    with run_sandbox_in_thread(sandbox_settings(denied_permissions=denied)) as sb:
        result = run_cli("auth", "check", "--config", str(config), "--datasets",
                         "conversation-aggregates", env=cli_env(sb))  # fmt: skip
    assert result.returncode == code, result.stderr
    line = next(line for line in result.stdout.splitlines()
                if line.startswith("conversation-aggregates "))  # fmt: skip
    assert line.split()[1:4] == ["windowed", "analytics:conversationAggregate:view", verdict]


def test_a_result_is_split_into_one_compact_line_per_bucket_in_the_window_of_its_start() -> None:
    """A pretty-printed result whose buckets span two days (and one outside the batch):
    one single-line line per bucket, each {"group", "data": [bucket]} in its day, the group's
    dimensions in any order the same key; the same page again is all repeats."""
    result = {"group": {"queueId": "q1", "mediaType": "voice"}, "data": [
        {"interval": "2026-11-01T23:30:00.000Z/2026-11-02T00:00:00.000Z",
         "metrics": [{"metric": "nOffered", "stats": {"count": 2}}]},
        {"interval": "2026-11-02T00:00:00Z/2026-11-02T00:30:00Z",
         "metrics": [{"metric": "tHandle", "stats": {"count": 1, "sum": 5, "min": 5, "max": 5}}]},
        {"interval": "2026-11-03T00:00:00.000Z/2026-11-03T00:30:00.000Z", "metrics": []},
    ]}  # fmt: skip
    raw = msgspec.Raw(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    bounds = WindowBounds([Window(START + days(i), START + days(i + 1)) for i in (0, 1)])
    seen = SeenKeys()
    router = CONVERSATION_AGGREGATES.router
    first = router.route([raw], bounds, seen, single_line=False)
    lines = [[orjson.loads(bytes(line)) for line in window] for window in first.windows]
    assert all(b"\n" not in bytes(line) for window in first.windows for line in window)
    assert [[line["data"][0]["interval"][:16] for line in w] for w in lines] == [
        ["2026-11-01T23:30"], ["2026-11-02T00:00"]]  # fmt: skip
    assert all(line["group"] == result["group"] and len(line["data"]) == 1
               for w in lines for line in w)  # fmt: skip
    swapped = {"group": {"mediaType": "voice", "queueId": "q1"}, "data": result["data"][:2]}
    again = router.route([msgspec.Raw(orjson.dumps(swapped))], bounds, seen, single_line=True)
    assert again.repeats == 2 and again.windows == [[], []]
    assert [key for w in first.windows for line in w for key, _ in router.keys(bytes(line))] == [
        b'{"mediaType":"voice","queueId":"q1"}|2026-11-01T23:30:00.000Z',
        b'{"mediaType":"voice","queueId":"q1"}|2026-11-02T00:00:00.000Z']  # fmt: skip


def test_all_selects_the_aggregates_and_the_other_groups_do_not() -> None:
    """'all' holds conversation-aggregates (right after conversations); 'dimensions' and
    'quality' do not."""
    assert [d.name for d in select("all")][:2] == ["conversations", "conversation-aggregates"]
    assert "conversation-aggregates" not in {d.name for d in select("dimensions,quality")}
