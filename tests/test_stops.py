"""Ending early keeps the work: signals, a second Ctrl-C, stops in a pause, long Retry-Afters.

Each test stops a run part-way, checks what it left (exit code, message, manifest, part files,
jobs still running), then runs again and checks that the rerun fetched only what was left and
ended with every id of the sandbox's ground truth exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from exporter.engine.scheduler import QUEUED_PAGES
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import Stopper, export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from exporter.summary import Summary
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from tests.support import (
    ANNOUNCED_BUDGET,
    START,
    assert_exact,
    cli_env,
    days,
    exporter_settings,
    sandbox_settings,
)

RANGE = ExportRequest(start=START, end=START + days(3))
PAGES = {"page_size": 100, "max_concurrent_jobs": 2}
ANNOUNCED = sandbox_settings(latency_ms=20, rate_per_minute=ANNOUNCED_BUDGET)


def assert_kept_for_resume(out: Path) -> list[str]:
    """Every complete record names a whole file; every unfinished one a job, a cursor and a
    part file at least as long as its checkpoint. Returns the unfinished windows' jobs."""
    jobs = []
    for record in Manifest.load(out).records("conversations"):
        if record.status == "complete":
            assert record.file is not None
            assert sum(1 for _ in read_records(out / record.file)) == record.records
            continue
        assert record.status == "in-progress" and record.job_id, record
        part = out / "conversations" / f".{record.name}.jsonl.part"
        assert part.stat().st_size >= record.part_offset
        jobs.append(record.job_id)
    return jobs


def config(tmp_path: Path) -> Path:
    path = tmp_path / "stop-config.toml"
    path.write_text(
        "[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\nmax_concurrent_jobs = 2\n"
        "page_size = 100\n[output]\ncheckpoint_s = 0.0\n[http]\nretry_backoff_base_s = 0.01\n"
    )
    return path


def command(tmp_path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "exporter", "export", "--config", str(config(tmp_path)),
            "--start", "2026-11-01", "--end", "2026-11-04", "--out", str(out),
            "--no-progress"]  # fmt: skip


def pages_of_a_clean_run(sb, tmp_path: Path) -> int:
    """Results pages a whole export of the range takes, measured in a separate folder."""
    done = subprocess.run(
        command(tmp_path, tmp_path / "clean"), env=cli_env(sb), capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    pages = sb.stats().count("jobs.results", 200)
    sb.reset_stats()
    return pages


def wait_for(sb, pages: int, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while sb.stats().count("jobs.results", 200) < pages and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_keeps_the_work_and_the_rerun_fetches_only_what_was_left(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGTERM or SIGINT a third of the way: exit 130 saying what was kept, unfinished
    windows checkpointed with their jobs still running; the rerun submits no job, reads
    barely more pages than one clean run in all, and ends exact."""
    with run_sandbox_in_thread(ANNOUNCED) as sb:
        needed = pages_of_a_clean_run(sb, tmp_path)
        out = tmp_path / "out"
        proc = subprocess.Popen(
            command(tmp_path, out), env=cli_env(sb), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_for(sb, needed // 3)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr.decode()[-2000:]
        summary = orjson.loads(stdout.splitlines()[-1])
        assert summary["status"] == "interrupted" and summary["kept_windows"] >= 1
        assert b"kept at their checkpoints" in stderr and b"Traceback" not in stderr
        kept_jobs = assert_kept_for_resume(out)
        first = sb.stats()
        assert first.jobs_created - first.jobs_deleted == len(set(kept_jobs)) >= 1

        again = subprocess.run(command(tmp_path, out), env=cli_env(sb), capture_output=True,
                               timeout=60)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        total = sb.stats()
        assert total.jobs_created == first.jobs_created  # the kept jobs were continued
        assert total.jobs_deleted == total.jobs_created
        slack = QUEUED_PAGES + PAGES["max_concurrent_jobs"] * 2  # queued and in flight
        assert needed <= total.count("jobs.results", 200) <= needed + slack
        assert_exact(sb, out)


@pytest.mark.slow
def test_a_second_signal_stops_at_once_and_the_rerun_still_ends_exact(tmp_path: Path) -> None:
    """A second signal while the first is handled ends the process at once (exit 130); the
    next run
    resumes from the last checkpoints and ends exact."""
    with run_sandbox_in_thread(ANNOUNCED) as sb:
        out = tmp_path / "out"
        proc = subprocess.Popen(
            command(tmp_path, out), env=cli_env(sb), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_for(sb, 5)
        # Two different signals, so the kernel cannot merge them into one pending signal.
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130 and b"stopping at once" in stderr
        again = subprocess.run(command(tmp_path, out), env=cli_env(sb), capture_output=True,
                               timeout=60)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        assert_exact(sb, out)


@pytest.mark.slow
def test_a_stop_during_a_rate_limit_pause_is_prompt_and_claims_nothing(tmp_path: Path) -> None:
    """Submits answered 429 with Retry-After 60: a SIGTERM during that pause ends the run
    promptly, says nothing was left to keep, and claims no deleted job (none exists)."""
    rule = FaultRule("status", status=429, retry_after="60", routes=("jobs.submit",))
    with run_sandbox_in_thread(sandbox_settings(faults=(rule,))) as sb:
        out = tmp_path / "out"
        proc = subprocess.Popen(
            command(tmp_path, out), env=cli_env(sb), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while sb.stats().rate_limited == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)  # well inside the 60 s pause
        assert proc.returncode == 130
        assert b"no unfinished window to keep" in stderr and b"deleted" not in stderr
        assert orjson.loads(stdout.splitlines()[-1])["kept_windows"] == 0
        assert sb.stats().jobs_created == 0 and not list(out.rglob("*.part"))


class _StopAfterCommits(NoProgress):
    """Stops the run from inside the writer, right after its ``n``-th commit, while other
    windows' pages and commits are still queued behind it."""

    def __init__(self, stopper: Stopper, n: int) -> None:
        self._stopper, self._left = stopper, n

    def windows_done(self, count: int) -> None:
        self._left -= count
        if self._left <= 0:
            self._stopper.stop("SIGTERM")


@pytest.mark.parametrize("stop_after", [1, 3, 7, 15])
async def test_a_stop_while_commits_are_queued_keeps_both_kinds_of_work(
    tmp_path: Path, stop_after: int
) -> None:
    """A stop landing while finished windows wait for the writer: those commit, the ones
    being read are kept at their checkpoints; the rerun submits no new job for them and ends
    exact."""
    async with Sandbox(sandbox_settings()) as sb:
        settings = exporter_settings(sb, tmp_path, jobs={"window": days(1) / 12, "page_size": 50})
        stopper = Stopper()
        stopper.attach(asyncio.current_task())  # type: ignore[arg-type]
        summary = await export(
            settings, RANGE, progress=_StopAfterCommits(stopper, stop_after), stopper=stopper
        )
        assert summary.exit_code == 130, summary
        assert summary.windows >= stop_after
        kept = assert_kept_for_resume(tmp_path)
        assert summary.kept_windows == len(kept)
        first = sb.stats()
        again = await export(settings, RANGE, progress=NoProgress())
        assert again.status == "ok", again.error
        total = sb.stats()
        assert total.jobs_created - first.jobs_created <= 36 - summary.windows - len(kept)
        assert_exact(sb, tmp_path)


async def test_a_long_retry_after_on_a_503_stops_with_exit_4_and_resumes(tmp_path: Path) -> None:
    """A maintenance 503 with Retry-After of 2 h mid-read: exit 4, "run again later", work
    kept; the rerun continues the kept jobs and ends exact."""
    rule = FaultRule("status", status=503, retry_after="7200", routes=("jobs.results",),
                     skip=4, count=1)  # fmt: skip
    async with Sandbox(sandbox_settings(faults=(rule,))) as sb:
        settings = exporter_settings(sb, tmp_path, jobs=PAGES)
        first = await export(settings, RANGE, progress=NoProgress())
        assert (first.status, first.exit_code) == ("quota_exhausted", 4)
        assert "2.0 h" in (first.error or "") and "run the same command again later" in (
            first.error or ""
        )
        kept = assert_kept_for_resume(tmp_path)
        assert first.kept_windows == len(kept) >= 1
        assert first.windows == sum(
            r.status == "complete" for r in Manifest.load(tmp_path).records("conversations")
        )
        created = sb.stats().jobs_created
        again = await export(settings, RANGE, progress=NoProgress())
        assert again.status == "ok", again.error
        assert sb.stats().jobs_created == created
        assert_exact(sb, tmp_path)


async def test_a_long_retry_after_from_the_login_service_stops_with_exit_4(tmp_path) -> None:
    """The token endpoint asking for an hour's wait stops the run at once with exit 4,
    instead of the token retry loop sleeping through it."""
    rule = FaultRule("status", status=429, retry_after="3600", routes=("oauth.token",))
    async with Sandbox(sandbox_settings(faults=(rule,))) as sb:
        summary: Summary = await export(
            exporter_settings(sb, tmp_path), RANGE, progress=NoProgress()
        )
        assert (summary.exit_code, summary.status) == (4, "quota_exhausted")
        assert "1.0 h" in (summary.error or "")
        assert sb.stats().token_requests == 1 and sb.stats().count() == 1
