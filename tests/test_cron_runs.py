"""Cron-grade runs: resume after SIGKILL, provisional tails, lock contention, --plan accuracy."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from exporter.engine.scheduler import QUEUED_PAGES
from exporter.errors import OutputError
from exporter.plan import ExportRequest
from exporter.preview import plan_only
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.lock import RunLock
from exporter.store.manifest import Manifest
from genesys_sandbox import Sandbox, run_sandbox_in_thread
from tests.support import (
    START,
    cli,
    cli_env,
    days,
    exported_ids,
    exporter_settings,
    ground_truth,
    sandbox_settings,
)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_s", [0.4, 0.9, 1.6])
def test_sigkill_then_rerun_yields_the_ground_truth(tmp_path: Path, kill_after_s: float) -> None:
    """A run killed with SIGKILL mid-way and run again ends with every id exactly once."""
    settings = sandbox_settings(latency_ms=15, latency_jitter_ms=5)
    with run_sandbox_in_thread(settings) as sb:
        out = tmp_path / "out"
        proc = subprocess.Popen(
            cli(sb, tmp_path, out),
            env=cli_env(sb),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(kill_after_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        complete_before = (
            {r.name for r in Manifest.load(out).records("conversations") if r.status == "complete"}
            if (out / "manifest.json").exists()
            else set()
        )
        done = subprocess.run(
            cli(sb, tmp_path, out), env=cli_env(sb), capture_output=True, timeout=90
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        ids = exported_ids(out)
        assert set(ids) == ground_truth(sb, START, START + days(3))
        assert max(ids.values()) == 1
        summary = orjson.loads(done.stdout.splitlines()[-1])
        assert summary["skipped"] == len(complete_before)
        assert not list(out.rglob("*.part"))


async def test_provisional_window_becomes_complete_after_the_watermark(tmp_path: Path) -> None:
    """Windows past the watermark are provisional (query); a later run makes them complete."""
    watermark = START + days(2) + timedelta(hours=6)
    async with Sandbox(sandbox_settings(availability_date=watermark)) as sb:
        settings = exporter_settings(sb, tmp_path)
        request = ExportRequest(start=START, end=START + days(3))
        first = await export(settings, request, progress=NoProgress())
        statuses = {
            r.name: (r.status, r.source) for r in Manifest.load(tmp_path).records("conversations")
        }
        assert statuses["2026-11-03"] == ("provisional", "query")
        assert statuses["2026-11-01"] == ("complete", "jobs")
        assert first.provisional == 1
        assert set(exported_ids(tmp_path)) == ground_truth(sb, START, START + days(3))

        sb.update(availability_date=START + days(4))
        sb.reset_stats()
        second = await export(settings, request, progress=NoProgress())
        assert second.windows == 1 and second.skipped == 2
        final = Manifest.load(tmp_path).get("conversations", "2026-11-03")
        assert (final.status, final.source) == ("complete", "jobs")
        ids = exported_ids(tmp_path)
        assert set(ids) == ground_truth(sb, START, START + days(3)) and max(ids.values()) == 1


async def test_a_second_run_on_a_locked_folder_is_refused_with_exit_75(
    sandbox, tmp_path: Path
) -> None:
    """While another live run holds the lock, a run refuses at once with exit 75 (not 1, a
    failed window), naming the holder, and sends no request at all."""
    with RunLock(tmp_path, "other-run"):
        summary = await export(
            exporter_settings(sandbox, tmp_path),
            ExportRequest(start=START, end=START + days(1)),
            progress=NoProgress(),
        )
    assert (summary.status, summary.exit_code) == ("locked", 75)
    assert str(os.getpid()) in (summary.error or "")
    assert sandbox.stats().count() == 0


async def test_plan_lists_windows_in_date_order_and_its_estimate_matches_the_run(
    sandbox, tmp_path: Path
) -> None:
    """--plan lists each window (not each job) in date order, and its request estimate is
    within 10% of what the run then sends."""
    settings = exporter_settings(sandbox, tmp_path, jobs={"page_size": 200})
    request = ExportRequest(start=START, end=START + days(3))
    report = await plan_only(settings, request)
    assert [line.name for line in report.lines] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [line.action for line in report.lines] == ["fetch"] * 3 and report.jobs == 2
    sandbox.reset_stats()
    summary = await export(settings, request, progress=NoProgress())
    sent = sandbox.stats().count() - sandbox.stats().count("oauth.token")
    assert abs(report.requests - sent) <= max(2, 0.1 * sent), (report.requests, sent)
    assert summary.requests == sent


async def test_lookback_reexports_recent_complete_windows(sandbox, tmp_path: Path) -> None:
    """--lookback 1d re-exports only the last day; ids stay exactly once."""
    settings = exporter_settings(sandbox, tmp_path)
    request = ExportRequest(start=START, end=START + days(3))
    await export(settings, request, progress=NoProgress())
    again = await export(
        settings,
        ExportRequest(start=START, end=START + days(3), lookback=days(1)),
        progress=NoProgress(),
    )
    assert again.windows == 1 and again.skipped == 2
    assert max(exported_ids(tmp_path).values()) == 1


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
async def test_compressed_output_holds_the_same_records(
    sandbox, tmp_path: Path, compression
) -> None:
    """gzip and zstd outputs decompress to the ground truth; the manifest names the codec."""
    settings = exporter_settings(sandbox, tmp_path, output={"compression": compression})
    summary = await export(
        settings, ExportRequest(start=START, end=START + days(3)), progress=NoProgress()
    )
    assert summary.status == "ok"
    ids = exported_ids(tmp_path)
    assert set(ids) == ground_truth(sandbox, START, START + days(3))
    assert {r.compression for r in Manifest.load(tmp_path).records("conversations")} == {
        compression
    }


class _FailAfterPages(NoProgress):
    """A disk that fails on the ``n``-th page written: a fatal error, which keeps the part
    files and checkpoints for the next run, as a SIGKILL would."""

    def __init__(self, n: int) -> None:
        self._left = n

    def advance(self, records: int) -> None:
        self._left -= 1
        if self._left == 0:
            raise OutputError("The disk is full (simulated); free space and run again.")


async def test_a_job_over_several_windows_resumes_at_its_cursor(sandbox, tmp_path: Path) -> None:
    """A three-day job cut off mid-read resumes at its saved cursor with every file at its
    checkpoint: no new job, only the pages read ahead of the failure read again (the one
    being written, those queued behind it, the one in hand), every id exactly once."""
    jobs = {"max_concurrent_jobs": 1, "page_size": 100}
    request = ExportRequest(start=START, end=START + days(3))
    clean = exporter_settings(sandbox, tmp_path / "clean", jobs=jobs)
    await export(clean, request, progress=NoProgress())
    pages_needed = sandbox.stats().count("jobs.results")
    sandbox.reset_stats()

    settings = exporter_settings(sandbox, tmp_path / "out", jobs=jobs)
    first = await export(settings, request, progress=_FailAfterPages(15))
    assert first.exit_code == OutputError.exit_code
    saved = Manifest.load(tmp_path / "out").records("conversations")
    assert {r.status for r in saved} == {"in-progress"} and len({r.job_id for r in saved}) == 1
    second = await export(settings, request, progress=NoProgress())
    assert second.status == "ok", second.error
    stats = sandbox.stats()
    assert stats.count("jobs.submit") == stats.jobs_deleted == 1
    assert pages_needed < stats.count("jobs.results") <= pages_needed + QUEUED_PAGES + 2
    ids = exported_ids(tmp_path / "out")
    assert set(ids) == ground_truth(sandbox, START, START + days(3)) and max(ids.values()) == 1
