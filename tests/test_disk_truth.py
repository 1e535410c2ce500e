"""What is on disk is what the manifest says: damaged files come back, one file per window,
repeats written once, day files keep their names, --since-last finds what is missing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from genesys_sandbox import DatasetSpec, FaultRule, Sandbox
from tests.support import (
    START,
    assert_exact,
    data_files,
    days,
    exported_ids,
    exporter_settings,
    ground_truth,
    sandbox_settings,
)

RANGE = ExportRequest(start=START, end=START + days(3))


def manifest_agrees_with_disk(out: Path) -> None:
    """Each recorded file exists with its size and record count, and no other data file."""
    records = [r for r in Manifest.load(out).records("conversations") if r.file]
    for record in records:
        path = out / record.file  # type: ignore[operator]
        assert path.stat().st_size == record.bytes
        assert sum(1 for _ in read_records(path)) == record.records
    assert {p.relative_to(out).as_posix() for p in data_files(out)} == {r.file for r in records}


async def test_deleted_and_truncated_day_files_are_exported_again(sandbox, tmp_path, caplog):
    """A day file deleted by hand and one cut short come back on the next run, each with a
    warning, while the intact day is skipped."""
    settings = exporter_settings(sandbox, tmp_path)
    await export(settings, RANGE, progress=NoProgress())
    (tmp_path / "conversations/2026-11-01.jsonl").unlink()
    cut = tmp_path / "conversations/2026-11-02.jsonl"
    cut.write_bytes(cut.read_bytes()[:-1000])
    with caplog.at_level(logging.WARNING, logger="exporter"):
        again = await export(settings, RANGE, progress=NoProgress())
    assert (again.status, again.windows, again.skipped) == ("ok", 2, 1)
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2026-11-01.jsonl is missing" in w for w in warnings)
    assert any("2026-11-02.jsonl holds" in w for w in warnings)
    assert_exact(sandbox, tmp_path)
    manifest_agrees_with_disk(tmp_path)


async def test_another_compression_replaces_the_file_instead_of_adding_one(
    sandbox, tmp_path, caplog
) -> None:
    """Re-exported with gzip, each window keeps one file, the .gz; a run that skips windows
    stored in another compression says so once."""
    await export(exporter_settings(sandbox, tmp_path), RANGE, progress=NoProgress())
    gzip = exporter_settings(sandbox, tmp_path, output={"compression": "gzip"})
    with caplog.at_level(logging.WARNING, logger="exporter"):
        skipped = await export(gzip, RANGE, progress=NoProgress())
    assert skipped.skipped == 3
    assert sum("compression" in r.message for r in caplog.records) == 1
    forced = ExportRequest(start=START, end=START + days(3), force=True)
    await export(gzip, forced, progress=NoProgress())
    assert sorted(p.name for p in data_files(tmp_path)) == [
        "2026-11-01.jsonl.gz", "2026-11-02.jsonl.gz", "2026-11-03.jsonl.gz"
    ]  # fmt: skip
    assert_exact(sandbox, tmp_path)
    manifest_agrees_with_disk(tmp_path)


async def test_repeated_job_records_are_written_once_and_counted(sandbox, tmp_path) -> None:
    """Results that repeat records within a page and across page seams: every id once, the
    manifest's counts equal the files', and the summary counts the repeats dropped."""
    sandbox.add_fault(FaultRule("repeat-records"))
    settings = exporter_settings(sandbox, tmp_path, jobs={"page_size": 100})
    summary = await export(settings, RANGE, progress=NoProgress())
    assert summary.status == "ok", summary.error
    pages = sandbox.stats().count("jobs.results", 200)
    jobs = sandbox.stats().jobs_created
    assert summary.repeats_dropped == 2 * pages - jobs  # a seam repeat on all but first pages
    assert summary.records == len(ground_truth(sandbox, START, START + days(3)))
    assert_exact(sandbox, tmp_path)
    manifest_agrees_with_disk(tmp_path)


async def test_the_day_holding_now_keeps_its_name_and_is_replaced_by_each_run(tmp_path) -> None:
    """Runs ending now write today's window as YYYY-MM-DD.jsonl, provisional, replaced by the
    next run: one file and one entry, never a fragment named after a run's end instant."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    spec = DatasetSpec(conversations=2000, start=today - days(1), days=2, seed=3)
    async with Sandbox(sandbox_settings(dataset=spec, availability_lag_s=7200)) as sb:
        settings = exporter_settings(sb, tmp_path)
        for _ in range(2):
            request = ExportRequest(start=today - days(1), end=datetime.now(UTC))
            summary = await export(settings, request, progress=NoProgress())
            assert summary.status == "ok", summary.error
        records = Manifest.load(tmp_path).records("conversations")
        name = f"{today:%Y-%m-%d}"
        assert [r.name for r in records] == [f"{today - days(1):%Y-%m-%d}", name]
        assert (
            records[1].status == "provisional"
            and records[1].start_ms == sb.dataset.spec.start_ms + 86_400_000
        )
        assert [p.name for p in data_files(tmp_path)][-1] == f"{name}.jsonl"
        ids = exported_ids(tmp_path)
        end = datetime.fromisoformat(records[1].end.replace("Z", "+00:00"))
        assert set(ids) == ground_truth(sb, today - days(1), end) and max(ids.values()) == 1


async def test_since_last_retries_a_failed_window_before_complete_ones(sandbox, tmp_path) -> None:
    """A day that failed between two complete ones: --since-last starts there, not after the
    last complete day, and the export ends exact."""
    settings = exporter_settings(sandbox, tmp_path, jobs={"max_concurrent_jobs": 8})
    sandbox.add_fault(FaultRule("job-failed", skip=1, count=100))  # the 2nd job onwards fails
    first = await export(settings, ExportRequest(START, START + days(1)), progress=NoProgress())
    assert first.status == "ok"
    await export(settings, ExportRequest(START + days(1), START + days(2)), progress=NoProgress())
    sandbox.clear_faults()
    await export(settings, ExportRequest(START + days(2), START + days(3)), progress=NoProgress())
    statuses = [r.status for r in Manifest.load(tmp_path).records("conversations")]
    assert statuses == ["complete", "failed", "complete"]
    sandbox.reset_stats()
    resumed = await export(
        settings, ExportRequest(None, START + days(3), since_last=True), progress=NoProgress()
    )
    assert (resumed.status, resumed.windows, resumed.skipped) == ("ok", 1, 1)
    assert_exact(sandbox, tmp_path)


@pytest.mark.parametrize(("lookback", "windows"), [(None, 1), (days(1), 2), (days(2), 3)])
async def test_since_last_with_lookback_also_redoes_the_days_before(
    sandbox, tmp_path, lookback: timedelta | None, windows: int
) -> None:
    """--since-last --lookback 2d: the two days before the resume point are exported again
    (today this re-exported nothing)."""
    settings = exporter_settings(sandbox, tmp_path)
    await export(settings, ExportRequest(START, START + days(2)), progress=NoProgress())
    request = ExportRequest(None, START + days(3), lookback=lookback, since_last=True)
    summary = await export(settings, request, progress=NoProgress())
    assert (summary.status, summary.windows) == ("ok", windows)
    assert_exact(sandbox, tmp_path)
