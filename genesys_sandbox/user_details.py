"""Analytics user details: agents' status history through jobs and the sync query.

Both read the (user, day) rows of ``statuses.StatusHistory``: a job the rows of the days its
interval touches, cut to the statuses overlapping the interval that started before the family's
own dataAvailabilityDate; the query the same rows without that cut (it reads the live store),
at most 7 days an interval, paged by pageNumber. A page removes repeats only within itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genesys_sandbox.queries import (
    Selection,
    check_interval_length,
    dimension_values,
    parse_paging,
    parse_selection,
)
from genesys_sandbox.state import SandboxState
from genesys_sandbox.statuses import Row
from genesys_sandbox.wire import ApiProblem, to_ms

# AsyncUserDetailsQuery / UserDetailsQuery keys (genesys-datasets.md §B); jobs apply userFilters
# on userId, other filters are accepted and not applied [sandbox], and there is no orderBy or
# startOfDayIntervalMatching.
KNOWN_KEYS = frozenset(("interval", "userFilters", "presenceFilters", "routingStatusFilters",
                        "presenceAggregations", "routingStatusAggregations", "order", "limit",
                        "paging"))  # fmt: skip


class UserDetails:
    """The user details family (``routes.JobRoutes`` serves it)."""

    name = "users"
    path = "/api/v2/analytics/users/details"
    route_prefix = "user-details."
    records_key = "userDetails"

    def rows(self, state: SandboxState, body: dict[str, Any]) -> Sequence[Row]:
        selection = _selection(body)
        available = to_ms(state.user_availability())
        rows = _ordered(state, selection, available)
        users = dimension_values(body.get("userFilters"), "userId")
        if users is None:
            return rows
        ids = state.dataset.statuses.user_ids
        return [row for row in rows if ids[row.user] in users]

    def availability_text(self, state: SandboxState) -> str:
        return state.user_availability_text()

    def records(self, state: SandboxState, rows: list[Row]) -> bytes:
        """A page's entries, repeats within it removed (``StatusHistory.entries``)."""
        return state.dataset.statuses.entries(rows)

    def query(self, state: SandboxState, body: dict[str, Any]) -> bytes:
        """One page by pageNumber, with totalHits (rows); no userDetails past the last."""
        s = state.settings
        selection = _selection(body)
        check_interval_length(selection, s.query_max_interval_days)
        size, number = parse_paging(body, s.query_default_page_size, s.query_max_page_size)
        rows = _ordered(state, selection, None)
        chosen = rows[(number - 1) * size : number * size]
        total = b'"totalHits":%d' % len(rows)
        if not chosen:
            return b"{" + total + b"}"
        return b'{"userDetails":[' + self.records(state, chosen) + b"]," + total + b"}"


def _selection(body: dict[str, Any]) -> Selection:
    unknown = body.keys() - KNOWN_KEYS
    if unknown:
        # The platform rejects unknown query keys of details queries [INF].
        raise ApiProblem(400, "bad.request", f"Unknown query field {sorted(unknown)[0]!r}.")
    return parse_selection(body)


def _ordered(state: SandboxState, selection: Selection, available: int | None) -> list[Row]:
    rows = state.dataset.statuses.select(selection.start_ms, selection.end_ms, available)
    return rows[::-1] if selection.descending else rows
