"""Batching windows into jobs (pure; property-tested with Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.datasets.conversations import CONVERSATIONS
from exporter.plan import (
    Batch,
    WorkItem,
    batch_work,
    jobs_for_budget,
    plan_work,
    read_again,
    since_last_start,
)
from exporter.store.manifest import WindowRecord
from exporter.windows import Slot, Window, format_instant, plan_windows
from tests.support import START, days

KINDS = ("fresh", "fresh", "fresh", "skip", "query", "resume-a", "resume-b")


def item(window: Window, kind: str) -> WorkItem:
    slot = Slot(window, window)
    if kind == "skip":
        return WorkItem(slot, "skip", "jobs", "complete")
    if kind == "query":
        return WorkItem(slot, "fetch", "query", "new")
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
        return WorkItem(slot, "resume", "jobs", "checkpoint", record)
    return WorkItem(slot, "fetch", "jobs", "new")


plans = st.tuples(
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=10),
)


def build(kinds: list[str], jobs: int, span_days: int) -> tuple[list[WorkItem], list[Batch]]:
    windows = plan_windows(START, START + days(len(kinds)), timedelta(days=1))
    items = [item(w, k) for w, k in zip(windows, kinds, strict=True)]
    return items, batch_work(CONVERSATIONS, items, jobs=jobs, max_span=days(span_days))


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
    assert [[i.name for i in b.items] for b in batches] == [
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


# -- deciding each window (plan_work), and where --since-last starts ----------------------------

WATERMARK = START + days(10)
DAY1 = Window(START, START + days(1))


def recorded(
    status: str = "complete",
    *,
    file: str | None = "conversations/2026-11-01.jsonl",
    size: int = 100,
    compression: str = "none",
    **fields: object,
) -> WindowRecord:
    return WindowRecord(name="2026-11-01", start=format_instant(START),
                        end=format_instant(START + days(1)), status=status,  # type: ignore[arg-type]
                        source="jobs", file=file, bytes=size, compression=compression,
                        **fields)  # type: ignore[arg-type]  # fmt: skip


def decide(record: WindowRecord | None, on_disk: dict[str, int], **options: object):
    plan = plan_work(
        [Slot(DAY1, DAY1)],
        [record] if record else [],
        watermark=WATERMARK,
        on_disk=on_disk,
        compression="none",
        **options,  # type: ignore[arg-type]
    )
    return plan.items[0], plan.warnings


def test_a_complete_window_whose_file_is_whole_is_skipped() -> None:
    item, warnings = decide(recorded(), {"conversations/2026-11-01.jsonl": 100})
    assert (item.action, warnings) == ("skip", [])


@pytest.mark.parametrize(
    ("on_disk", "said"),
    [({}, "is missing"), ({"conversations/2026-11-01.jsonl": 60}, "holds 60 bytes, not the 100")],
)
def test_a_complete_window_whose_file_is_gone_or_cut_is_fetched_again(on_disk, said) -> None:
    """Deleted or truncated by hand: exported again, with one warning naming the file."""
    item, warnings = decide(recorded(), on_disk)
    assert item.action == "fetch" and said in item.reason
    assert len(warnings) == 1 and "conversations/2026-11-01.jsonl" in warnings[0]


def test_a_skipped_window_in_another_compression_says_so_once() -> None:
    """Kept as it is (no duplicate file), with one note that --force would convert it."""
    item, warnings = decide(
        recorded(compression="gzip", file="conversations/2026-11-01.jsonl.gz"),
        {"conversations/2026-11-01.jsonl.gz": 100},
    )
    assert item.action == "skip" and len(warnings) == 1 and "--force" in warnings[0]


@pytest.mark.parametrize(
    ("status", "fields", "action", "reason"),
    [
        ("provisional", {}, "fetch", "provisional"),
        ("failed", {"file": None}, "fetch", "failed before"),
        ("in-progress", {"file": None, "job_id": "j", "cursor": "c"}, "resume", "checkpoint"),
        ("in-progress", {"file": None}, "fetch", "incomplete"),
    ],
)
def test_windows_not_complete_are_fetched_or_resumed(status, fields, action, reason) -> None:
    item, _ = decide(recorded(status, **fields), {})
    assert item.action == action and reason in item.reason


def test_force_and_lookback_fetch_complete_windows_again() -> None:
    intact = {"conversations/2026-11-01.jsonl": 100}
    assert decide(recorded(), intact, force=True)[0].action == "fetch"
    assert decide(recorded(), intact, redo_after=START)[0].action == "fetch"
    assert decide(recorded(), intact, redo_after=START + days(1))[0].action == "skip"


def span_record(day: int, status: str = "complete") -> WindowRecord:
    start = START + days(day)
    return WindowRecord(name=f"2026-11-{day + 1:02d}", start=format_instant(start),
                        end=format_instant(start + days(1)), status=status,  # type: ignore[arg-type]
                        source="jobs", file=None)  # fmt: skip


@pytest.mark.parametrize(
    ("statuses", "expected_day"),
    [
        ({0: "complete", 1: "complete", 2: "complete"}, 3),
        ({0: "complete", 1: "failed", 2: "complete", 3: "complete"}, 1),
        ({0: "complete", 1: "complete", 2: "provisional"}, 2),
        ({0: "complete", 2: "complete", 3: "complete"}, 1),  # day 1 missing
        ({0: "in-progress", 1: "complete"}, 0),
    ],
)
def test_since_last_starts_at_the_earliest_window_not_complete(statuses, expected_day) -> None:
    """Failed, provisional, unfinished or missing: the earliest such window, not after the
    latest complete one."""
    records = [span_record(day, status) for day, status in sorted(statuses.items())]
    assert since_last_start(records) == START + days(expected_day)
    assert since_last_start([]) is None


def _window(status: str = "complete", sha: str | None = "a", **fields: object) -> WindowRecord:
    values: dict[str, Any] = {
        "name": "2026-11-02", "start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z",
        "status": status, "source": "jobs", "file": "x/2026-11-02.jsonl", "sha256": sha,
        "updated": "2026-11-03T06:00:00+00:00", **fields,
    }  # fmt: skip
    return WindowRecord(**values)


LATER = datetime(2026, 11, 10, tzinfo=UTC)
EDITS = {"edited_within": timedelta(days=30), "every": timedelta(days=1)}


@pytest.mark.parametrize(
    ("own", "now", "expected"),
    [
        (None, LATER, "never read"),
        (_window("failed", None, source=None, file=None), LATER, "failed before"),
        (_window(sha="x", source="ids", derived_from="b"), LATER, "its source window changed"),
        (_window("provisional", "x", source="ids", derived_from="a"), LATER,
         "its source window is complete now"),
        (_window(sha="x", source="ids", derived_from="a", updated="2026-11-09T12:00:00+00:00"),
         LATER, None),  # read 12 hours ago: not yet again
        (_window(sha="x", source="ids", derived_from="a"), LATER, "still edited: read again"),
        (_window(sha="x", source="ids", derived_from="a"), LATER + timedelta(days=40), None),
    ],
)  # fmt: skip
def test_a_window_read_by_ids_is_read_again_when_its_source_changes_or_it_may_be_edited(
    own: WindowRecord | None, now: datetime, expected: str | None
) -> None:
    """A window read by ids follows its source window's file and status, and is read again
    once a day while its records may still be edited, never after."""
    assert read_again(_window(), own, now=now, **EDITS) == expected
