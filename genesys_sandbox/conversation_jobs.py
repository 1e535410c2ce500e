"""Conversation details jobs: which conversations a job selects, and how its pages read.

Pages are joined from the dataset's precomputed record bytes, never re-serialised, so the server
is not the bottleneck of a benchmark.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from genesys_sandbox.data import Dataset
from genesys_sandbox.jobs import Job, Window, with_repeats
from genesys_sandbox.queries import JobQuery

FAMILY = "conversations"


def select(data: Dataset, query: JobQuery, availability_ms: int) -> Sequence[int]:
    """The indices a job returns: overlap (or touched-day) matches that are available.

    The datalake only holds what happened before its dataAvailabilityDate when the job ran, so
    conversations starting at or after it are left out (a plausible model of the lag; the live
    rule is not documented).
    """
    sel = query.selection
    if query.start_of_day:
        found: Sequence[int] = data.indices_starting_on_days_touched(sel.start_ms, sel.end_ms)
    else:
        found = data.indices_overlapping(sel.start_ms, sel.end_ms)
    cutoff = bisect_left(data.starts_ms, availability_ms)
    found = found[: bisect_left(found, cutoff)]
    if sel.descending:
        found = found[::-1]
    return found[: query.limit] if query.limit is not None else found


def page(data: Dataset, job: Job, window: Window, availability: str, repeat: bool) -> bytes:
    """One results page; ``repeat`` is the repeat-records fault (``jobs.with_repeats``)."""
    chosen = list(job.rows[window.offset : window.end])
    if repeat:
        chosen = with_repeats(chosen, job.rows[window.offset - 1] if window.offset else None)
    records = b",".join(map(data.job_record, chosen))
    tail = b'"cursor":"' + window.cursor.encode() + b'",' if window.cursor else b""
    return (b'{"conversations":[' + records + b"]," + tail
            + b'"dataAvailabilityDate":"' + availability.encode() + b'"}')  # fmt: skip
