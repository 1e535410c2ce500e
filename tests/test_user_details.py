"""Agent status history end to end: every status of the sandbox's ground truth exactly once,
through short pages, the watermark's query tail, kills, signals and a shared budget."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter.datasets import select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import Stopper, export
from exporter.store.manifest import Manifest
from exporter.summary import Summary
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from tests.support import (
    ANNOUNCED_BUDGET,
    START,
    StopAfterPages,
    assert_exact,
    assert_statuses_exact,
    cli_env,
    days,
    exporter_settings,
    instant,
    sandbox_settings,
    stop_after,
)

DAY_MS = 86_400_000
USER_DETAILS = select("user-details")


async def run(sb: Any, out: Path, **sections: dict[str, Any]) -> Summary:
    settings = exporter_settings(sb, out, **sections)
    request = ExportRequest(start=START, end=START + days(3), datasets=USER_DETAILS)
    return await export(settings, request, progress=NoProgress())


def multi_day(sb: Any) -> list[tuple[int, int | None]]:
    """(start, end) of the ground truth's statuses that cross midnight."""
    return [
        (s.start_ms, s.end_ms)
        for s in sb.dataset.statuses.statuses
        if s.start_ms // DAY_MS != ((s.end_ms or sb.dataset.spec.end_ms) - 1) // DAY_MS
    ]


async def test_a_multi_day_export_writes_every_status_once_through_short_pages(
    sandbox, tmp_path
) -> None:
    """Three days, results pages of 97 (odd, so pages split users' rows of consecutive days)
    that the service shortens long before the end: every status once, statuses spanning
    days in the day of their start, one line per user;
    every day is complete (the watermark passed it), and the statuses not ended yet are
    tracked, each in the day of its start."""
    summary = await run(sandbox, tmp_path, jobs={"page_size": 97})
    assert summary.status == "ok", summary.error
    assert_statuses_exact(sandbox, tmp_path)
    assert len(multi_day(sandbox)) > 100 and summary.repeats_dropped > 0
    # The pages really were short before the end (the sandbox's own rows, as it pages them).
    rows = sandbox.dataset.statuses.select(START_MS, START_MS + 3 * DAY_MS, None)
    pages = [rows[i : i + 97] for i in range(0, len(rows), 97)]
    entries = [sandbox.dataset.statuses.entries(page).count(b'"userId"') for page in pages]
    assert any(n < 97 for n in entries[:-1])
    history = sandbox.dataset.statuses
    still_open = {
        (instant(s.start_ms)[:10], f"{history.user_ids[s.user]}|{s.kind}|{instant(s.start_ms)}")
        for s in history.statuses
        if s.end_ms is None and START_MS <= s.start_ms < START_MS + 3 * DAY_MS
    }
    manifest = Manifest.load(tmp_path)
    records = manifest.records("user-details")
    assert [r.name for r in records] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert {r.status for r in records} == {"complete"}
    tracked = {(day, key) for day, keys in manifest.opened("user-details").items() for key in keys}
    assert still_open and tracked == still_open


START_MS = int(START.timestamp() * 1000)


async def test_past_the_watermark_the_query_serves_a_provisional_tail(tmp_path) -> None:
    """Windows past the user-details watermark (its own, not the conversations') come from
    the sync query, provisional; once the watermark passes them a rerun makes them complete,
    still every status once."""
    mark = START + timedelta(days=1, hours=6)
    async with Sandbox(sandbox_settings(user_availability_date=mark)) as sb:
        first = await run(sb, tmp_path, jobs={"query_page_size": 50})
        assert first.status == "ok", first.error
        assert_statuses_exact(sb, tmp_path)
        sources = {r.name: r.source for r in Manifest.load(tmp_path).records("user-details")}
        assert sources == {"2026-11-01": "jobs", "2026-11-02": "query", "2026-11-03": "query"}
        assert sb.stats().count("user-details.query", 200) > 2
        sb.update(user_availability_date=None)
        again = await run(sb, tmp_path)
        assert again.status == "ok", again.error
        assert_statuses_exact(sb, tmp_path)
        sources = {r.name: r.source for r in Manifest.load(tmp_path).records("user-details")}
        assert set(sources.values()) == {"jobs"}


async def test_a_denied_permission_fails_user_details_alone(tmp_path) -> None:
    settings = sandbox_settings(denied_permissions=("analytics:userDetail:view",))
    async with Sandbox(settings) as sb:
        config = exporter_settings(sb, tmp_path)
        request = ExportRequest(
            start=START, end=START + days(1), datasets=select("conversations,user-details")
        )
        summary = await export(config, request, progress=NoProgress())
    assert summary.exit_code == 3 and summary.status == "denied"
    (line,) = summary.denied
    assert line.startswith("user-details:") and "role with analytics:userDetail:view" in line
    assert {r.status for r in Manifest.load(tmp_path).records("conversations")} == {"complete"}


async def test_conversations_and_user_details_share_one_token_pool_and_limiter(tmp_path) -> None:
    """Both datasets at once, against a server announcing a per-minute budget: one token,
    never more requests in flight than the one pool allows, no 429, both exact. (Whether
    the shared budget is kept full needs a run at the limit longer than a test: the
    user-details scenario in benchmarks/ measures it.)"""
    # A round trip longer than the pace's 50 ms interval keeps two requests in flight.
    async with Sandbox(sandbox_settings(rate_per_minute=1200, latency_ms=80)) as sb:
        config = exporter_settings(
            sb, tmp_path, jobs={"page_size": 200, "max_concurrent_jobs": 4},
            http={"concurrency": 3},
        )  # fmt: skip
        request = ExportRequest(
            start=START, end=START + days(3), datasets=select("conversations,user-details")
        )
        summary = await export(config, request, progress=NoProgress())
        stats = sb.stats()
    assert summary.status == "ok", summary.error
    assert stats.count("user-details.jobs.results", 200) >= 3
    assert stats.count("jobs.results", 200) >= 10
    assert stats.tokens_issued == 1
    assert 2 <= stats.max_in_flight <= 3
    assert stats.rate_limited == 0 and summary.rate_limited == 0
    assert_statuses_exact(sb, tmp_path)
    assert_exact(sb, tmp_path / "conversations")


async def test_a_part_file_left_damaged_at_a_commit_is_fetched_again(tmp_path) -> None:
    """A kill while a day's merged lines were written used to leave its part file rewritten
    past its checkpoint, and every later run then failed (exit 1, nothing committed). Such a
    part file is now fetched again: the rerun is ok and exact."""
    async with Sandbox(sandbox_settings()) as sb:
        settings = exporter_settings(sb, tmp_path, jobs={"page_size": 50})
        request = ExportRequest(start=START, end=START + days(3), datasets=USER_DETAILS)
        stopper = Stopper()
        stopper.attach(asyncio.current_task())  # type: ignore[arg-type]
        first = await export(settings, request, progress=StopAfterPages(stopper, 6),
                             stopper=stopper)  # fmt: skip
        assert first.exit_code == 130 and first.kept_windows >= 1, first
        damaged = [r for r in Manifest.load(tmp_path).records("user-details")
                   if r.status == "in-progress" and r.part_offset]  # fmt: skip
        assert damaged
        for record in damaged:  # what the old commit left: merged lines over the part
            part = tmp_path / "user-details" / f".{record.name}.jsonl.part"
            lines = part.read_bytes().splitlines()
            part.write_bytes(b"\n".join(reversed(lines)) + b'\n{"userId":"half')
        again = await export(settings, request, progress=NoProgress())
        assert again.status == "ok", again.error
        assert_statuses_exact(sb, tmp_path)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(FaultRule(kind="repeat-records", count=3), id="repeat-records"),
        pytest.param(FaultRule(kind="job-failed", count=1), id="job-failed"),
        pytest.param(FaultRule(kind="job-expired", skip=2, count=1), id="job-expired"),
        pytest.param(FaultRule(kind="cursor-rejected", count=1), id="cursor-rejected"),
    ],
)
async def test_job_faults_on_user_details_keep_every_status_once(sandbox, tmp_path, fault) -> None:
    """The job faults, on the user-details routes only (the fault suite runs the rest for
    every windowed dataset)."""
    sandbox.add_fault(dataclasses.replace(fault, routes=()))
    summary = await run(sandbox, tmp_path, jobs={"page_size": 100})
    assert summary.status == "ok", summary.error
    assert_statuses_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


def command(tmp_path: Path, out: Path) -> list[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        "[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\nmax_concurrent_jobs = 2\n"
        "page_size = 25\n[output]\ncheckpoint_s = 0.0\n[http]\nretry_backoff_base_s = 0.01\n"
    )
    return [sys.executable, "-m", "exporter", "export", "--config", str(config),
            "--datasets", "user-details", "--start", "2026-11-01", "--end", "2026-11-04",
            "--out", str(out), "--no-progress"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_kill_or_a_signal_inside_a_user_details_job_resumes_exact(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Stopped while its jobs' pages are being read (some statuses written, cursors
    checkpointed), the rerun ends with every status once and nothing else."""
    settings = sandbox_settings(latency_ms=20, rate_per_minute=ANNOUNCED_BUDGET)
    with run_sandbox_in_thread(settings) as sb:
        out = tmp_path / "out"
        stop_after(sb, command(tmp_path, out), "user-details.jobs.results", 8, sig)
        records = Manifest.load(out).records("user-details")
        assert any(r.status == "in-progress" and r.cursor for r in records), records
        again = subprocess.run(command(tmp_path, out), env=cli_env(sb), capture_output=True,
                               timeout=90)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        assert_statuses_exact(sb, out)
