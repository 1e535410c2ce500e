"""The fault suite: every injected failure ends in every record exactly once, or a clear error."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter.client.http import ApiClient
from exporter.config import JobSettings
from exporter.datasets import select
from exporter.datasets.conversations import CONVERSATIONS as CONVERSATION_DETAILS
from exporter.engine import jobs
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.jsonl import JsonlFile
from exporter.store.manifest import Manifest
from exporter.summary import Summary
from exporter.windows import Window
from genesys_sandbox import FaultRule, ManualClock, Sandbox
from tests.support import (
    START,
    assert_exact,
    assert_statuses_exact,
    data_files,
    days,
    exporter_settings,
    on_user_details,
    sandbox_settings,
)
from tests.test_aggregates import assert_aggregates_exact
from tests.test_quality import ROUTES as QUALITY_ROUTES
from tests.test_quality import assert_exact as assert_quality_exact
from tests.test_workforce import (
    UNIT_ROUTES,
    assert_adherence_exact,
    assert_schedules_exact,
    assert_units_exact,
    export_adherence,
    export_schedules,
    take_units,
)

RANGE = ExportRequest(start=START, end=START + days(3))
SMALL_PAGES = {"page_size": 200}  # several cursors per window, so mid-window faults can bite


async def export_with(sb, tmp_path: Path, **sections):
    settings = exporter_settings(sb, tmp_path, **{"jobs": SMALL_PAGES, **sections})
    return await export(settings, RANGE, progress=NoProgress())


def assert_nothing_looks_complete(out: Path) -> None:
    """Whatever failed, every file under its final name is recorded complete in the manifest."""
    manifest = Manifest.load(out) if (out / "manifest.json").exists() else None
    finals = {p.relative_to(out).as_posix() for p in data_files(out)}
    recorded = {r.file for r in manifest.records("conversations")} if manifest else set()
    assert finals <= recorded


RECOVERABLE = [
    pytest.param(
        FaultRule(kind="status", status=429, retry_after="0.1", probability=0.3, count=15),
        id="429-seconds",
    ),
    pytest.param(FaultRule(kind="status", status=429, probability=0.3, count=15), id="429-bare"),
    pytest.param(
        FaultRule(kind="status", status=429, retry_after="http-date:1", count=3), id="429-http-date"
    ),
    pytest.param(FaultRule(kind="status", status=500, probability=0.3, count=10), id="500"),
    pytest.param(FaultRule(kind="status", status=502, probability=0.3, count=10), id="502"),
    pytest.param(
        FaultRule(kind="status", status=503, retry_after="0.1", probability=0.3, count=10),
        id="503-retry-after",
    ),
    pytest.param(FaultRule(kind="status", status=504, probability=0.3, count=10), id="504"),
    pytest.param(FaultRule(kind="drop", probability=0.3, count=8), id="dropped"),
    pytest.param(
        FaultRule(kind="drop-mid-body", routes=("jobs.results",), probability=0.5, count=6),
        id="dropped-mid-body",
    ),
    pytest.param(FaultRule(kind="truncate", routes=("jobs.results",), count=4), id="truncated"),
    pytest.param(FaultRule(kind="invalid-json", probability=0.3, count=6), id="invalid-json"),
    pytest.param(FaultRule(kind="hang", routes=("jobs.results",), count=2, hang_s=30), id="hung"),
    # Bytes keep coming, so no read timeout fires: only the whole response's deadline ends it.
    pytest.param(
        FaultRule(kind="trickle-body", routes=("jobs.results",), count=2, hang_s=30),
        id="trickled-body",
    ),
    pytest.param(
        FaultRule(kind="status", status=503, routes=("oauth.token",), count=3),
        id="token-endpoint-down",
    ),
    pytest.param(FaultRule(kind="job-failed", count=1), id="job-failed"),
    pytest.param(FaultRule(kind="job-expired", skip=2, count=1), id="job-expired-mid-read"),
    pytest.param(FaultRule(kind="cursor-rejected", count=1), id="cursor-rejected"),
]


@pytest.mark.parametrize("fault", RECOVERABLE)
async def test_recoverable_fault_keeps_every_record_once(sandbox, tmp_path, fault) -> None:
    """Under the fault the export still writes exactly the ground truth and says ok."""
    sandbox.add_fault(fault)
    summary = await export_with(sandbox, tmp_path, http={"request_timeout_s": 0.5})
    assert summary.status == "ok", summary.error
    assert_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


@pytest.mark.parametrize("fault", RECOVERABLE)
async def test_recoverable_fault_keeps_every_status_once(sandbox, tmp_path, fault) -> None:
    """The same suite for the second windowed dataset: every status of the ground truth once."""
    sandbox.add_fault(on_user_details(fault))
    settings = exporter_settings(
        sandbox, tmp_path, jobs={"page_size": 100}, http={"request_timeout_s": 0.5}
    )
    request = ExportRequest(start=START, end=START + days(3), datasets=select("user-details"))
    summary = await export(settings, request, progress=NoProgress())
    assert summary.status == "ok", summary.error
    assert_statuses_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


def on_aggregates(rule: FaultRule) -> FaultRule:
    """The same fault on the aggregates family's routes instead of the conversations' (its
    watermark is the details' own route, so a fault there stays there)."""
    routes = tuple(f"aggregates.{r}" if (r.startswith("jobs.") and r != "jobs.availability")
                   or r == "query" else r for r in rule.routes)  # fmt: skip
    return dataclasses.replace(rule, routes=routes)


@pytest.mark.parametrize("fault", RECOVERABLE)
async def test_recoverable_fault_keeps_every_aggregate_once(sandbox, tmp_path, fault) -> None:
    """The same suite for the aggregates: every group, bucket and metric of the truth once,
    through pages of five groups."""
    sandbox.add_fault(on_aggregates(fault))
    settings = exporter_settings(
        sandbox, tmp_path, aggregates={"page_size": 5}, http={"request_timeout_s": 0.5}
    )
    request = ExportRequest(START, START + days(3), datasets=select("conversation-aggregates"))
    summary = await export(settings, request, progress=NoProgress())
    assert summary.status == "ok", summary.error
    assert_aggregates_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


def on_quality_reads(rule: FaultRule) -> FaultRule:
    """The same fault on the evaluation and survey reads (a token fault stays where it is)."""
    if rule.routes == ("oauth.token",):
        return rule
    return dataclasses.replace(rule, routes=QUALITY_ROUTES)


JOB_FAULTS = ("job-failed", "job-expired", "cursor-rejected")  # no job behind a read by id
QUALITY_RECOVERABLE = [p for p in RECOVERABLE if p.values[0].kind not in JOB_FAULTS]


@pytest.mark.parametrize("fault", QUALITY_RECOVERABLE)
async def test_recoverable_fault_keeps_every_evaluation_and_survey_once(
    sandbox, tmp_path, fault
) -> None:
    """The same suite for the datasets read by id: every evaluation and survey the
    conversations name, once, as the API answers it."""
    sandbox.add_fault(on_quality_reads(fault))
    settings = exporter_settings(sandbox, tmp_path, http={"request_timeout_s": 0.5})
    request = ExportRequest(START, START + days(3), datasets=select("conversations,quality"))
    summary = await export(settings, request, progress=NoProgress())
    assert summary.status == "ok", summary.error
    assert_quality_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


@pytest.mark.parametrize("fault", QUALITY_RECOVERABLE)
async def test_recoverable_fault_keeps_every_workforce_unit_once(sandbox, tmp_path, fault) -> None:
    """The same suite on the WFM unit listings and reads: each unit snapshot still equals the
    sandbox's units, each entity once."""
    if fault.routes != ("oauth.token",):
        fault = dataclasses.replace(fault, routes=UNIT_ROUTES)
    sandbox.add_fault(fault)
    summary = await take_units(sandbox, tmp_path, http={"request_timeout_s": 0.5})
    assert summary.status == "ok", summary.error
    assert_units_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


@pytest.mark.parametrize("fault", QUALITY_RECOVERABLE)
async def test_recoverable_fault_keeps_every_schedule_once(sandbox, tmp_path, fault) -> None:
    """The same suite on the schedule searches and their download links (one business unit
    answers inline, the other by a link): every published shift once, in its local day."""
    if fault.routes != ("oauth.token",):
        fault = dataclasses.replace(fault, routes=("schedules.search", "download"))
    sandbox.add_fault(fault)
    summary = await export_schedules(sandbox, tmp_path, http={"request_timeout_s": 0.5})
    assert summary.status == "ok", summary.failed_windows
    assert_schedules_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


@pytest.mark.parametrize("fault", QUALITY_RECOVERABLE)
async def test_recoverable_fault_keeps_every_adherence_day_once(sandbox, tmp_path, fault) -> None:
    """The same suite on the adherence jobs (submit, status) and their download links: every
    agent's unit-day once, with the sandbox's metrics."""
    if fault.routes != ("oauth.token",):
        fault = dataclasses.replace(fault, routes=("adherence.bulk", "adherence.job", "download"))
    sandbox.add_fault(fault)
    summary = await export_adherence(sandbox, tmp_path, http={"request_timeout_s": 0.5})
    assert summary.status == "ok", summary.failed_windows
    assert_adherence_exact(sandbox, tmp_path)
    assert sum(sandbox.stats().faults_injected.values()) > 0


ONE_JOB_A_DAY = {"max_concurrent_jobs": 1, "max_job_span": days(1)}  # in turn: one order


async def test_a_failed_job_is_submitted_again_as_it_was(sandbox, tmp_path) -> None:
    """A three-day job that fails once is submitted again over the same three days: one more
    job, no split (a transient failure does not multiply the jobs)."""
    sandbox.add_fault(FaultRule(kind="job-failed", count=1))
    summary = await export_with(sandbox, tmp_path, jobs={**SMALL_PAGES, "max_concurrent_jobs": 1})
    assert summary.status == "ok", summary.error
    assert sandbox.stats().jobs_created == 2
    records = Manifest.load(tmp_path).records("conversations")
    assert len(records) == 3 and len({r.job_id for r in records}) == 1
    assert_exact(sandbox, tmp_path)


async def test_a_job_failing_twice_is_split_in_half_into_the_same_day_file(
    sandbox, tmp_path
) -> None:
    """A one-day job that fails, and fails again when submitted again, is fetched as two
    half-day jobs that fill that day's one file: no file or manifest entry has a sub-day
    name, and every id is there once."""
    sandbox.add_fault(FaultRule(kind="job-failed", count=2))
    summary = await export_with(sandbox, tmp_path, jobs={**SMALL_PAGES, **ONE_JOB_A_DAY})
    assert summary.status == "ok", summary.error
    names = [r.name for r in Manifest.load(tmp_path).records("conversations")]
    assert names == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [p.name for p in data_files(tmp_path)] == [f"{n}.jsonl" for n in names]
    assert sandbox.stats().jobs_created == 2 + 2 + 1 + 1
    assert_exact(sandbox, tmp_path)


async def test_a_job_over_several_windows_failing_twice_goes_on_one_job_each(
    sandbox, tmp_path
) -> None:
    """A three-day job that fails twice is retried as three one-day jobs, before any window
    is halved."""
    sandbox.add_fault(FaultRule(kind="job-failed", count=2))
    summary = await export_with(sandbox, tmp_path, jobs={**SMALL_PAGES, "max_concurrent_jobs": 1})
    assert summary.status == "ok", summary.error
    assert_exact(sandbox, tmp_path)
    names = [r.name for r in Manifest.load(tmp_path).records("conversations")]
    assert names == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert sandbox.stats().jobs_created == 2 + 3


async def test_a_window_that_keeps_failing_is_reported_at_bounded_cost(sandbox, tmp_path) -> None:
    """Jobs that always fail end in exit 1 naming each window in one line, never a silent
    skip, and cost at most max_jobs_per_window jobs a window, not one per split."""
    sandbox.add_fault(FaultRule(kind="job-failed"))
    summary = await export_with(sandbox, tmp_path)
    assert summary.exit_code == 1 and summary.status == "failed"
    assert [line.split(":")[0] for line in summary.failed_windows] == [
        "conversations 2026-11-01", "conversations 2026-11-02", "conversations 2026-11-03"
    ]  # fmt: skip
    assert all("\n" not in line for line in summary.failed_windows)
    assert sandbox.stats().jobs_created <= 3 * JobSettings().max_jobs_per_window
    records = Manifest.load(tmp_path).records("conversations")
    assert {r.status for r in records} == {"failed"}
    assert_nothing_looks_complete(tmp_path)


async def test_a_failing_job_is_never_split_below_split_min(sandbox, tmp_path) -> None:
    """With split_min 12h a failing day costs its own job twice and its first half's twice:
    halves of that half would be 6 h long, so the window fails there."""
    sandbox.add_fault(FaultRule(kind="job-failed"))
    jobs = {**SMALL_PAGES, "split_min": timedelta(hours=12), "max_concurrent_jobs": 8}
    request = ExportRequest(start=START, end=START + days(1))
    settings = exporter_settings(sandbox, tmp_path, jobs=jobs)
    summary = await export(settings, request, progress=NoProgress())
    assert summary.exit_code == 1 and "split_min" in summary.failed_windows[0]
    assert sandbox.stats().jobs_created == 4


@dataclasses.dataclass(frozen=True)
class Family:
    """A windowed dataset as the job tests drive it: its sandbox route names, a results page
    size giving each day about ten pages, and the check that it was exported exactly."""

    dataset: str
    prefix: str
    page_size: int
    assert_exact: Callable[[Any, Path], None]

    def route(self, name: str) -> str:
        return self.prefix + name

    async def export(self, sb: Any, out: Path, **jobs: Any) -> Summary:
        settings = exporter_settings(sb, out, jobs={"page_size": self.page_size, **jobs})
        request = ExportRequest(START, START + days(3), datasets=select(self.dataset))
        return await export(settings, request, progress=NoProgress())


CONVERSATIONS = Family("conversations", "", 100, assert_exact)
USER_DETAILS = Family("user-details", "user-details.", 25, assert_statuses_exact)
FAMILIES = [
    pytest.param(CONVERSATIONS, id="conversations"),
    pytest.param(USER_DETAILS, id="user-details"),
]


@pytest.mark.parametrize("family", FAMILIES)
async def test_jobs_failing_half_the_time_still_fetch_every_window_once(
    tmp_path, family: Family
) -> None:
    """Half the jobs FAILED (seeded; one job a day, in turn, so the draws fall the same way
    each time): submitting a failed job again before splitting it fetches every window within
    max_jobs_per_window, each record once. (Splitting at the first failure failed all three
    days with this seed.)"""
    rule = FaultRule("job-failed", routes=(family.route("jobs.submit"),), probability=0.5)
    async with Sandbox(sandbox_settings(faults=(rule,), fault_seed=8)) as sb:
        summary = await family.export(sb, tmp_path, **ONE_JOB_A_DAY)
        assert summary.status == "ok", summary.failed_windows
        family.assert_exact(sb, tmp_path)
        assert sb.stats().faults_injected["job-failed"] >= 5


EXPIRING = [
    # A conversation day's job holds 13 pages at most, its halves 11: the two-day job goes on
    # as one job a day, and the full days' as halves (day 1 holds 6 pages).
    pytest.param(CONVERSATIONS, 12, 1 + 1 + 2 * (1 + 2), True, id="conversations"),
    # A user-details job holds 10 pages a day whatever its length (a row is a user's day):
    # the two-day job goes on as one job a day.
    pytest.param(USER_DETAILS, 15, 1 + 1 + 2, False, id="user-details"),
]


@pytest.mark.parametrize(("family", "pages", "jobs", "halved"), EXPIRING)
async def test_results_expiring_mid_read_split_the_job_and_a_rerun_redoes_nothing(
    tmp_path, family: Family, pages: int, jobs: int, halved: bool
) -> None:
    """Results that expire after more pages than a smaller job holds: each job they expire
    under is split, never submitted again as it was; a one-day job's halves go on into the
    day's file, keeping what it holds (the halves' repeats of it are dropped). Exact, every
    day committed: the next run skips each complete one (a provisional one is refreshed as
    always)."""
    async with Sandbox(sandbox_settings(job_expiry_pages=pages)) as sb:
        summary = await family.export(sb, tmp_path)
        assert summary.status == "ok", summary.failed_windows
        assert sb.stats().jobs_created == jobs
        assert (summary.repeats_dropped > 0) == halved
        family.assert_exact(sb, tmp_path)
        statuses = [r.status for r in Manifest.load(tmp_path).records(family.dataset)]
        assert len(statuses) == 3 and set(statuses) <= {"complete", "provisional"}
        again = await family.export(sb, tmp_path)
        assert (again.status, again.skipped) == ("ok", statuses.count("complete"))


@pytest.mark.parametrize("family", FAMILIES)
async def test_a_stuck_jobs_service_costs_one_timeout_and_the_next_run_continues_its_job(
    tmp_path, family: Family
) -> None:
    """Jobs of one dataset that stay QUEUED: its first job waits job_timeout_s and is kept, no
    other job of it is submitted, the other dataset completes; exit 4 in one line. Once the
    queue moves, the next run continues that same job and ends exact."""
    clock = ManualClock()
    stuck = FaultRule("job-stuck", routes=(family.route("jobs.submit"),), hang_s=600)
    async with Sandbox(sandbox_settings(faults=(stuck,)), clock=clock) as sb:
        settings = exporter_settings(
            sb, tmp_path, jobs={"job_timeout_s": 0.3, **ONE_JOB_A_DAY}
        )  # fmt: skip
        both = ExportRequest(START, START + days(3), datasets=select("conversations,user-details"))
        first = await export(settings, both, progress=NoProgress())
        assert (first.status, first.exit_code, first.kept_jobs) == ("stalled", 4, 1)
        assert "no job within 0.3 s; run the same command again later" in (first.error or "")
        assert sb.stats().count(family.route("jobs.submit")) == 1
        manifest = Manifest.load(tmp_path)
        (kept,) = manifest.records(family.dataset)
        assert (kept.name, kept.status) == ("2026-11-01", "in-progress")
        other = next(name for name in manifest.datasets() if name != family.dataset)
        assert {r.status for r in manifest.records(other)} <= {"complete", "provisional"}
        clock.advance(600)
        sb.clear_faults()
        second = await export(settings, both, progress=NoProgress())
        assert second.status == "ok", second.error
        assert sb.stats().count(family.route("jobs.submit")) == 3
        assert Manifest.load(tmp_path).get(family.dataset, kept.name).job_id == kept.job_id
        assert_exact(sb, tmp_path / "conversations")
        assert_statuses_exact(sb, tmp_path)


async def test_a_job_still_waiting_when_its_service_is_found_stuck_gives_up_at_its_next_poll(
    tmp_path,
) -> None:
    """Once another job of the family has timed out, a queued job is kept after one poll, not
    after a timeout of its own; a FULFILLED one is still read."""
    stuck = FaultRule("job-stuck", count=1, hang_s=600)
    async with Sandbox(sandbox_settings(faults=(stuck,)), clock=ManualClock()) as sb:
        settings = exporter_settings(sb, tmp_path)
        async with ApiClient(settings.connection, settings.http) as api:
            day = Window(START, START + days(1))
            family = CONVERSATION_DETAILS.api
            queued, done = [await jobs.submit_job(api, family, day) for _ in "ab"]
            wait = functools.partial(
                jobs.wait_fulfilled, api, family, first_poll_s=0.0, max_poll_s=0.0,
                timeout_s=600, given_up=lambda: True,
            )  # fmt: skip
            with pytest.raises(jobs.JobStalled, match="the job is kept"):
                await wait(queued)
            assert (await wait(done)).state == "FULFILLED"
        assert sb.stats().count("jobs.status") == 2


async def test_a_kept_job_found_expired_is_submitted_again_not_split(tmp_path) -> None:
    """Jobs kept by a run that stopped (a long Retry-After), expired before the next run: each
    is submitted again over its whole span, one job each, and the export ends exact."""
    clock = ManualClock()
    pause = FaultRule("status", status=503, retry_after="7200", routes=("jobs.results",),
                      skip=4, count=1)  # fmt: skip
    async with Sandbox(sandbox_settings(faults=(pause,)), clock=clock) as sb:
        settings = exporter_settings(sb, tmp_path, jobs={"page_size": 100})
        first = await export(settings, RANGE, progress=NoProgress())
        assert first.exit_code == 4 and first.kept_jobs == 2
        created = sb.stats().jobs_created
        clock.advance(sb.settings.job_expiry_s)  # the kept jobs read EXPIRED
        again = await export(settings, RANGE, progress=NoProgress())
        assert again.status == "ok", again.error
        assert sb.stats().jobs_created == created + first.kept_jobs
        assert_exact(sb, tmp_path)


async def test_token_expiring_mid_run_is_refreshed(tmp_path) -> None:
    """Tokens that live 0.3 s are refreshed during a longer run; nothing is lost."""
    async with Sandbox(sandbox_settings(token_ttl_s=0.3, latency_ms=10)) as sb:
        summary = await export_with(sb, tmp_path, jobs={"page_size": 50})
        assert summary.status == "ok"
        assert summary.token_refreshes >= 2
        assert sb.stats().tokens_issued == summary.token_refreshes
        assert_exact(sb, tmp_path)


async def test_403_mid_run_stops_the_dataset_with_exit_3(sandbox, tmp_path) -> None:
    """A permission lost mid-run stops the dataset with exit 3 and one line naming the
    permission, nothing half-done; the next run continues where it stopped."""
    sandbox.add_fault(FaultRule(kind="forbidden", routes=("jobs.results",), skip=3, count=1))
    summary = await export_with(sandbox, tmp_path)
    assert (summary.exit_code, summary.status) == (3, "denied")
    (line,) = summary.denied
    assert line.startswith("conversations: ") and "analytics:conversationDetail:view" in line
    assert_nothing_looks_complete(tmp_path)
    again = await export_with(sandbox, tmp_path)
    assert again.status == "ok", again
    assert_exact(sandbox, tmp_path)


async def test_403_while_pages_wait_for_a_slow_disk_still_stops_with_exit_3(
    sandbox, tmp_path, monkeypatch
) -> None:
    """The fatal error closes the batch's files while pages of it still wait for the writer:
    those pages are dropped (the next run resumes at the checkpoint), not written to a closed
    file, and the run still ends with the 403's exit 3."""
    append = JsonlFile.append

    def slow_append(self, records):  # a disk slower than the API: the writer queue fills
        time.sleep(0.05)
        append(self, records)

    monkeypatch.setattr(JsonlFile, "append", slow_append)
    sandbox.add_fault(FaultRule(kind="forbidden", routes=("jobs.results",), skip=3, count=1))
    summary = await export_with(sandbox, tmp_path, jobs={**SMALL_PAGES, "max_concurrent_jobs": 1})
    assert summary.exit_code == 3, summary
    assert "analytics:conversationDetail:view" in summary.denied[0]
    assert_nothing_looks_complete(tmp_path)


async def test_persistent_5xx_fails_the_window_not_forever(sandbox, tmp_path) -> None:
    """A route that always answers 503 exhausts bounded retries and reports failure."""
    sandbox.add_fault(FaultRule(kind="status", status=503, routes=("jobs.results",)))
    summary = await export_with(sandbox, tmp_path, http={"retry_max_attempts": 3})
    assert summary.exit_code == 1 and len(summary.failed_windows) == 3
    assert_nothing_looks_complete(tmp_path)


async def test_unwritable_output_folder_is_a_clear_error(sandbox, tmp_path) -> None:
    """An output path under a regular file fails with an output error, and no data file."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = exporter_settings(sandbox, blocker / "out")
    summary = await export(settings, RANGE, progress=NoProgress())
    assert summary.exit_code == 1
    assert "out" in summary.error and "Traceback" not in summary.error
    assert sandbox.stats().count("jobs.submit") == 0


@pytest.mark.slow
async def test_soak_mixed_faults_counters_agree(tmp_path) -> None:
    """A longer run with a few percent of mixed faults ends exact; 429 counts agree."""
    faults = (
        FaultRule(kind="status", status=429, retry_after="0.05", probability=0.03),
        FaultRule(kind="status", status=503, probability=0.02),
        FaultRule(kind="status", status=502, probability=0.01),
        FaultRule(kind="drop", probability=0.01),
        FaultRule(kind="truncate", routes=("jobs.results",), probability=0.01),
    )
    from genesys_sandbox import DatasetSpec

    spec = DatasetSpec(conversations=20_000, start=START, days=3, seed=11)
    async with Sandbox(sandbox_settings(dataset=spec, faults=faults, latency_ms=2)) as sb:
        summary = await export_with(
            sb, tmp_path, jobs={"page_size": 100}, http={"retry_max_attempts": 12}
        )
        assert summary.status == "ok", summary.error
        assert_exact(sb, tmp_path)
        stats = sb.stats()
        api_429 = stats.rate_limited - stats.count("oauth.token", 429)
        assert summary.rate_limited == api_429
        # Every fault that comes back as a response costs one retry. (A dropped connection
        # may instead be retried once inside aiohttp, as RFC 9112 allows for idempotent
        # requests, so drops are not counted here.)
        answered = sum(stats.faults_injected.get(kind, 0) for kind in ("status", "truncate"))
        assert summary.retries >= answered > 0
