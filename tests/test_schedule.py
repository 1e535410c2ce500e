"""The scheduled command starts itself and resumes what a stop kept: ``--since-last --start``."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import orjson

from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import Stopper, export
from exporter.store.manifest import Manifest
from genesys_sandbox import FaultRule, run_sandbox_in_thread
from tests.support import (
    START,
    StopAfterPages,
    assert_exact,
    cli,
    cli_env,
    days,
    exported_ids,
    exporter_settings,
    ground_truth,
    sandbox_settings,
)

END = START + days(3)


def scheduled(start_day: int = 0, **changes: object) -> ExportRequest:
    """The schedule's request: --since-last --start <START + start_day days>."""
    return ExportRequest(start=START + days(start_day), end=END, since_last=True, **changes)  # type: ignore[arg-type]


def windows(out: Path) -> dict[str, str]:
    return {r.name: r.status for r in Manifest.load(out).records("conversations")}


async def test_the_first_scheduled_run_starts_at_start_and_the_next_fetches_nothing(
    sandbox, tmp_path: Path
) -> None:
    """On a folder with no window, --since-last --start DAY exports from DAY; the same
    command again finds everything complete and asks for no job."""
    settings = exporter_settings(sandbox, tmp_path)
    first = await export(settings, scheduled(1), progress=NoProgress())
    assert (first.status, first.windows) == ("ok", 2), first.error
    assert windows(tmp_path) == {"2026-11-02": "complete", "2026-11-03": "complete"}
    assert set(exported_ids(tmp_path)) == ground_truth(sandbox, START + days(1), END)
    jobs = sandbox.stats().jobs_created
    again = await export(settings, scheduled(1), progress=NoProgress())
    assert (again.status, again.windows) == ("ok", 0)
    assert sandbox.stats().jobs_created == jobs


async def test_the_schedule_never_goes_before_its_start(sandbox, tmp_path: Path) -> None:
    """A failed day before --start stays as it is: the schedule continues from the earliest
    window not complete, but never before DAY."""
    settings = exporter_settings(sandbox, tmp_path)
    sandbox.add_fault(FaultRule("status", status=400, routes=("jobs.submit",), count=1))
    once = await export(settings, ExportRequest(START, START + days(1)), progress=NoProgress())
    assert once.status == "failed" and windows(tmp_path) == {"2026-11-01": "failed"}
    summary = await export(settings, scheduled(1, lookback=days(5)), progress=NoProgress())
    assert summary.status == "ok", summary.error
    assert windows(tmp_path) == {
        "2026-11-01": "failed", "2026-11-02": "complete", "2026-11-03": "complete"
    }  # fmt: skip


async def test_a_stop_then_the_lookback_command_continues_the_kept_jobs(tmp_path: Path) -> None:
    """After a polite stop, --since-last --lookback 2d resumes every window the stop kept
    from its checkpoint and job (no new job, each window read to its end by the job it was
    kept with) instead of fetching the lookback's windows afresh; the result is exact."""
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        settings = exporter_settings(sb, tmp_path, jobs={"page_size": 50})
        stopper = Stopper()
        stopper.attach(asyncio.current_task())  # type: ignore[arg-type]
        first = await export(settings, ExportRequest(START, END),
                             progress=StopAfterPages(stopper, 4), stopper=stopper)  # fmt: skip
        assert first.exit_code == 130 and first.kept_windows == 3, first
        kept = {r.name: r.job_id for r in Manifest.load(tmp_path).records("conversations")}
        created = sb.stats().jobs_created
        request = ExportRequest(None, END, since_last=True, lookback=days(2))
        again = await export(settings, request, progress=NoProgress())
        assert again.status == "ok", again.error
        assert sb.stats().jobs_created == created
        final = {r.name: r.job_id for r in Manifest.load(tmp_path).records("conversations")}
        assert final == kept
        assert_exact(sb, tmp_path)


def test_the_cli_takes_since_last_with_start_on_a_new_folder(tmp_path: Path) -> None:
    """`export --since-last --start DAY` is what a schedule runs: on a new folder it exits 0
    having exported from DAY (it used to be refused as a contradiction)."""
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        out = tmp_path / "out"
        done = subprocess.run(
            cli(sb, tmp_path, out, "--since-last"), env=cli_env(sb), capture_output=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert orjson.loads(done.stdout.splitlines()[-1])["windows"] == 3
        assert_exact(sb, out)
