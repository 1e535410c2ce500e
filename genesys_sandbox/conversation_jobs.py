"""Conversation details: which conversations a job or query selects, and how its pages read.

Pages are joined from the dataset's precomputed record bytes, never re-serialised, so the server
is not the bottleneck of a benchmark.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from genesys_sandbox.data import Dataset
from genesys_sandbox.queries import (
    JobQuery,
    check_interval_length,
    parse_job_query,
    parse_paging,
    parse_selection,
)
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wire import to_ms


class ConversationDetails:
    """The conversation details family (``routes.JobRoutes`` serves it)."""

    name = "conversations"
    path = "/api/v2/analytics/conversations/details"
    route_prefix = ""  # its routes are jobs.submit, ..., query
    records_key = "conversations"

    def rows(self, state: SandboxState, body: dict[str, Any]) -> Sequence[int]:
        query = parse_job_query(body)
        return select(state.dataset, query, to_ms(state.availability()))

    def availability_text(self, state: SandboxState) -> str:
        return state.availability_text()

    def records(self, state: SandboxState, rows: list[int]) -> bytes:
        """A results page's records: the precomputed bytes (as they read now, see
        ``SandboxState.job_records``)."""
        return b",".join(map(state.job_records(), rows))

    def query(self, state: SandboxState, body: dict[str, Any]) -> bytes:
        """Touched-day matching, paged by pageNumber, with totalHits."""
        s = state.settings
        selection = parse_selection(body)
        check_interval_length(selection, s.query_max_interval_days)
        size, number = parse_paging(body, s.query_default_page_size, s.query_max_page_size)
        return state.pager.page(selection, size, number, s.query_drift, state.job_records())


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
    if query.conversation_ids is not None:
        wanted = {data.index_of(i) for i in query.conversation_ids} - {None}
        found = [i for i in found if i in wanted]
    if sel.descending:
        found = found[::-1]
    return found[: query.limit] if query.limit is not None else found
