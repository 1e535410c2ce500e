"""Batching windows into jobs (pure; property-tested with Hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from exporter.manifest import WindowRecord
from exporter.plan import Batch, WorkItem, batch_work, jobs_for_budget
from exporter.windows import Window, format_instant, plan_windows
from tests.support import START, days

KINDS = ("fresh", "fresh", "fresh", "skip", "query", "resume-a", "resume-b")


def item(window: Window, kind: str) -> WorkItem:
    if kind == "skip":
        return WorkItem(window, "skip", "jobs", "complete")
    if kind == "query":
        return WorkItem(window, "fetch", "query", "new")
    if kind.startswith("resume"):
        job = kind[-1]
        record = WindowRecord(
            name=window.name,
            start=format_instant(window.start),
            end=format_instant(window.end),
            status="in-progress",
            source="jobs",
            file=None,
            job_id=f"job-{job}",
            cursor=f"cursor-{job}",
        )
        return WorkItem(window, "resume", "jobs", "checkpoint", record)
    return WorkItem(window, "fetch", "jobs", "new")


plans = st.tuples(
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=10),
)


def build(kinds: list[str], jobs: int, span_days: int) -> tuple[list[WorkItem], list[Batch]]:
    windows = plan_windows(START, START + days(len(kinds)), timedelta(days=1))
    items = [item(w, k) for w, k in zip(windows, kinds, strict=True)]
    return items, batch_work(items, jobs=jobs, max_span=days(span_days))


@given(plans)
def test_every_window_to_fetch_is_in_exactly_one_batch_in_order(plan) -> None:
    """Batches hold every non-skipped window once, in window order, and no skipped one."""
    items, batches = build(*plan)
    batched = [i for b in batches for i in b.items]
    assert batched == [i for i in items if i.action != "skip"]


@given(plans)
def test_a_batch_is_consecutive_windows_one_job_can_fetch(plan) -> None:
    """Each batch is contiguous, of one source and action, and shares one checkpoint."""
    _, batches = build(*plan)
    for batch in batches:
        for a, b in zip(batch.items, batch.items[1:], strict=False):
            assert a.window.end == b.window.start
        assert len({(i.source, i.action) for i in batch.items}) == 1
        assert (
            len({(i.resume.job_id, i.resume.cursor) if i.resume else None for i in batch.items})
            == 1
        )
        if batch.source == "query":
            assert len(batch.items) == 1


@given(plans)
def test_new_jobs_never_span_more_than_max_span(plan) -> None:
    """No new job spans more than max_span, whatever else the range holds."""
    kinds, jobs, span_days = plan
    _, batches = build(kinds, jobs, span_days)
    for batch in batches:
        if batch.items[0].action == "fetch" and batch.source == "jobs":
            assert batch.span.end - batch.span.start <= days(span_days)


@given(st.integers(1, 60), st.integers(1, 12), st.integers(1, 10))
def test_a_run_of_new_windows_splits_evenly_over_the_jobs(n: int, jobs: int, span: int) -> None:
    """n new windows: at most `jobs` jobs when the span allows, sizes differing by one at most,
    and no job larger than needed to stay within `jobs`."""
    _, batches = build(["fresh"] * n, jobs, span)
    sizes = [len(b.items) for b in batches]
    assert max(sizes) - min(sizes) <= 1
    assert max(sizes) <= max(1, -(-n // jobs))
    if span >= -(-n // jobs):
        assert len(batches) <= jobs


def test_two_weeks_on_eight_jobs_is_seven_two_day_jobs() -> None:
    """14 new days and 8 concurrent jobs: 7 jobs of 2 days, not 14 of one."""
    _, batches = build(["fresh"] * 14, 8, 7)
    assert [len(b.items) for b in batches] == [2] * 7
    assert batches[0].name == "2026-11-01..2026-11-02"


def test_resumed_windows_rejoin_their_job_and_cursor() -> None:
    """Windows saved at one job's cursor resume together; another job's windows apart."""
    _, batches = build(["resume-a", "resume-a", "resume-b", "fresh"], 8, 7)
    assert [[i.window.name for i in b.items] for b in batches] == [
        ["2026-11-01", "2026-11-02"],
        ["2026-11-03"],
        ["2026-11-04"],
    ]


def test_afresh_forgets_the_checkpoint() -> None:
    """A batch restarted after an expired job fetches every window anew."""
    _, batches = build(["resume-a", "resume-a"], 8, 7)
    again = batches[0].afresh()
    assert all(i.action == "fetch" and i.resume is None for i in again.items)
    assert again.span == batches[0].span


def test_jobs_follow_the_budget_and_the_round_trip() -> None:
    """Enough cursors for the budget at that round trip, never more than allowed; no limit
    means as many as allowed."""
    assert jobs_for_budget(0, 0.2, most=8) == 8
    assert jobs_for_budget(300, 0.2, most=8) == 4  # 5/s x (0.2 + 0.25) s x 1.5
    assert jobs_for_budget(300, 0.01, most=8) == 2
    assert jobs_for_budget(300, 2.0, most=8) == 8
    assert jobs_for_budget(60, 0.01, most=8) == 1
    assert jobs_for_budget(1200, 0.2, most=8) == 8


@given(
    st.integers(min_value=0, max_value=100_000),
    st.floats(min_value=0, max_value=30),
    st.integers(min_value=1, max_value=20),
)
def test_job_count_is_within_bounds_and_grows_with_budget_and_latency(
    per_minute: int, round_trip_s: float, most: int
) -> None:
    count = jobs_for_budget(per_minute, round_trip_s, most=most)
    assert 1 <= count <= most
    assert jobs_for_budget(per_minute * 2, round_trip_s, most=most) >= count
    assert jobs_for_budget(per_minute, round_trip_s * 2, most=most) >= count
