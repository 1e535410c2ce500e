"""End-to-end exports against the in-process sandbox over real loopback HTTP."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson

from exporter.client.http import ApiClient
from exporter.client.ratelimit import URGENT, RateLimiter
from exporter.datasets.conversations import CONVERSATIONS
from exporter.engine import jobs
from exporter.errors import QuotaExhausted
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.manifest import Manifest
from exporter.windows import Window
from genesys_sandbox import FaultRule, Sandbox
from tests.support import (
    SMALL,
    START,
    days,
    exported_ids,
    exporter_settings,
    ground_truth,
    sandbox_settings,
)

AVAILABILITY = "/api/v2/analytics/conversations/details/jobs/availability"


async def run(settings, start=START, end=None, **request):
    return await export(
        settings,
        ExportRequest(start=start, end=end or START + days(3), **request),
        progress=NoProgress(),
    )


async def test_multi_day_export_writes_the_ground_truth_once(sandbox, tmp_path) -> None:
    """A 3-day export holds exactly the ids that start in the range, each once."""
    summary = await run(exporter_settings(sandbox, tmp_path))
    ids = exported_ids(tmp_path)
    truth = ground_truth(sandbox, START, START + days(3))
    assert summary.status == "ok", summary
    assert set(ids) == truth and max(ids.values()) == 1
    assert summary.records == len(truth) and summary.windows == 3


async def test_midnight_crossers_land_in_the_window_they_started(sandbox, tmp_path) -> None:
    """Conversations crossing midnight appear once, in the file of the day they started."""
    await run(exporter_settings(sandbox, tmp_path))
    crossers = 0
    for path in (tmp_path / "conversations").glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            record = orjson.loads(line)
            assert record["conversationStart"].startswith(path.name[:10])
            end = record.get("conversationEnd")
            crossers += bool(end) and end[:10] != record["conversationStart"][:10]
    assert crossers > 0


async def test_day_jobs_select_only_what_started_in_them(sandbox, tmp_path) -> None:
    """Whole-day jobs match by start day, so the sandbox selects exactly the ground truth: none
    of the midnight crossers of the day before, which overlap matching would send too."""
    await run(exporter_settings(sandbox, tmp_path))
    truth = ground_truth(sandbox, START, START + days(3))
    assert sandbox.stats().job_records == len(truth)


async def test_part_day_jobs_match_by_overlap_and_keep_what_started_in_them(tmp_path) -> None:
    """Six-hour windows cannot use start-day matching (it would send whole days): the jobs
    select by overlap, more than the truth but far less than a whole day per job, and the
    files still hold each id once."""
    async with Sandbox(sandbox_settings()) as sb:
        settings = exporter_settings(sb, tmp_path, jobs={"window": days(1) / 4})
        summary = await run(settings, end=START + days(1))
        ids = exported_ids(tmp_path)
        truth = ground_truth(sb, START, START + days(1))
        assert summary.status == "ok" and summary.windows == 4
        assert set(ids) == truth and max(ids.values()) == 1
        assert len(truth) < sb.stats().job_records < 2 * len(truth)  # 2 jobs of 12 hours


async def test_one_job_fills_several_day_files(sandbox, tmp_path) -> None:
    """With one job at a time, a single job covers the three days and each day gets its own
    file holding exactly the conversations that started that day."""
    summary = await run(exporter_settings(sandbox, tmp_path, jobs={"max_concurrent_jobs": 1}))
    assert summary.status == "ok" and summary.windows == 3
    stats = sandbox.stats()
    assert stats.jobs_created == stats.jobs_deleted == 1
    for day in range(3):
        start = START + days(day)
        path = tmp_path / "conversations" / f"{start:%Y-%m-%d}.jsonl"
        ids = {orjson.loads(line)["conversationId"] for line in path.read_bytes().splitlines()}
        assert ids == ground_truth(sandbox, start, start + days(1))


async def test_windows_are_complete_files_in_the_manifest(sandbox, tmp_path) -> None:
    """Each window is one file whose count and sha256 the manifest records, status complete."""
    await run(exporter_settings(sandbox, tmp_path))
    records = Manifest.load(tmp_path).records("conversations")
    assert [r.status for r in records] == ["complete"] * 3
    import hashlib

    for record in records:
        data = (tmp_path / record.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record.sha256
        assert data.count(b"\n") == record.records and len(data) == record.bytes
    assert not list(tmp_path.rglob("*.part"))


async def test_64_requests_meeting_a_revoked_token_mint_once(sandbox, tmp_path) -> None:
    """64 concurrent requests that all meet a dead token cause exactly one token request."""
    settings = exporter_settings(sandbox, tmp_path, http={"concurrency": 64})
    async with ApiClient(settings.connection, settings.http) as api:
        await api.request("GET", AVAILABILITY, parse=orjson.loads)
        sandbox.revoke_tokens()
        before = sandbox.stats().token_requests
        results = await asyncio.gather(
            *(api.request("GET", AVAILABILITY, parse=orjson.loads) for _ in range(64))
        )
    assert len(results) == 64
    assert sandbox.stats().token_requests - before == 1
    assert api.statistics().token_refreshes == 2


class NotingLimiter(RateLimiter):
    """The real limiter, noting the priority each request asks its turn at."""

    def __init__(self, per_minute: int) -> None:
        super().__init__(per_minute)
        self.asked: list[float] = []

    async def acquire(self, priority: float = URGENT) -> None:
        self.asked.append(priority)
        await super().acquire(priority)


async def test_job_pages_queue_for_turns_by_how_far_their_job_has_read(tmp_path) -> None:
    """Each results request asks the limiter for a turn at the share of the job's interval the
    pages before it reached: 0 first, rising through the days, never past 1."""
    async with Sandbox(sandbox_settings(rate_per_minute=6000)) as sb:
        settings = exporter_settings(sb, tmp_path, http={"rate_limit_per_minute": 6000})
        limiter = NotingLimiter(settings.http.rate_limit_per_minute)
        async with ApiClient(settings.connection, settings.http, limiter=limiter) as api:
            asked = limiter.asked
            span = Window(START, START + days(3))
            job_id = await jobs.submit_job(api, CONVERSATIONS.api, span)
            await jobs.wait_fulfilled(
                api,
                CONVERSATIONS.api,
                job_id,
                first_poll_s=0.01,
                max_poll_s=0.05,
                timeout_s=10,
                given_up=lambda: False,
            )
            asked.clear()
            pages = jobs.job_pages(
                api, CONVERSATIONS.api, job_id, page_size=250, cursor=None, span=span,
                time_ms=CONVERSATIONS.router.time_ms,
            )  # fmt: skip
            count = sum([len(page.records) async for page, _ in pages])
    assert count == len(ground_truth(sb, START, START + days(3)))
    assert asked[0] == 0.0 and asked == sorted(asked)
    assert 0.5 < asked[-1] <= 1.0 and len(set(asked)) > 5


async def test_a_rate_budget_gets_only_the_jobs_it_can_use(tmp_path) -> None:
    """At 240/min over loopback two cursors keep the budget busy: four days go in two jobs,
    not the eight allowed, and every record still arrives once."""
    spec = dataclasses.replace(SMALL, days=4)
    async with Sandbox(sandbox_settings(dataset=spec, rate_per_minute=240)) as sb:
        settings = exporter_settings(sb, tmp_path, jobs={"max_concurrent_jobs": 8})
        summary = await run(settings, end=START + days(4))
        truth = ground_truth(sb, START, START + days(4))
        assert sb.stats().jobs_created == 2
    ids = exported_ids(tmp_path)
    assert summary.status == "ok", summary
    assert set(ids) == truth and max(ids.values()) == 1


async def test_a_429_burst_is_one_shared_pause(tmp_path) -> None:
    """Eight in-flight requests answered 429 Retry-After: 1 pause everyone once, together."""
    # 50 ms latency: all eight are on the wire before the first answer comes back.
    async with Sandbox(sandbox_settings(latency_ms=50)) as sb:
        settings = exporter_settings(sb, tmp_path, http={"concurrency": 8})
        sb.add_fault(
            FaultRule(
                kind="status", status=429, retry_after="1", routes=("jobs.availability",), count=8
            )
        )
        async with ApiClient(settings.connection, settings.http) as api:
            loop = asyncio.get_running_loop()
            began = loop.time()
            await asyncio.gather(
                *(api.request("GET", AVAILABILITY, parse=orjson.loads) for _ in range(16))
            )
            elapsed = loop.time() - began
            limiter = api.limiter.statistics()
        assert sb.stats().rate_limited == 8
    assert limiter.pauses - limiter.header_pauses == 1
    assert 1.0 <= elapsed < 3.0


async def test_a_429_storm_during_export_loses_nothing(sandbox, tmp_path) -> None:
    """Results pages answered 429 at random still yield every record exactly once."""
    sandbox.add_fault(
        FaultRule(
            kind="status",
            status=429,
            retry_after="0.2",
            routes=("jobs.results",),
            probability=0.5,
            count=12,
        )
    )
    summary = await run(exporter_settings(sandbox, tmp_path))
    ids = exported_ids(tmp_path)
    assert set(ids) == ground_truth(sandbox, START, START + days(3))
    assert max(ids.values()) == 1
    assert summary.rate_limited == sandbox.stats().rate_limited > 0


async def test_pool_never_exceeds_its_concurrency(tmp_path) -> None:
    """With latency and 8 jobs at once, the sandbox never sees more than 3 requests at once."""
    async with Sandbox(sandbox_settings(latency_ms=20)) as sb:
        jobs = {"window": days(1) / 4, "max_concurrent_jobs": 8}
        settings = exporter_settings(sb, tmp_path, http={"concurrency": 3}, jobs=jobs)
        summary = await run(settings)
        assert summary.status == "ok"
        assert sb.stats().max_in_flight == 3


async def test_quota_retry_after_stops_with_exit_4(sandbox, tmp_path) -> None:
    """A Retry-After of hours stops the run with exit code 4 instead of sleeping."""
    sandbox.add_fault(
        FaultRule(kind="status", status=429, retry_after="14400", routes=("jobs.results",), count=1)
    )
    summary = await run(exporter_settings(sandbox, tmp_path))
    assert summary.exit_code == QuotaExhausted.exit_code
    assert "4.0 h" in summary.error


async def test_rerun_of_a_finished_range_fetches_no_data(sandbox, tmp_path) -> None:
    """Running the same range again submits no job and reads no page."""
    settings = exporter_settings(sandbox, tmp_path)
    await run(settings)
    sandbox.reset_stats()
    summary = await run(settings)
    stats = sandbox.stats()
    assert summary.skipped == 3 and summary.records == 0
    assert stats.count("jobs.submit") == 0 and stats.count("jobs.results") == 0
