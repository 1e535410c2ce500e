"""Request bodies of the details query and job submission, and the sync query's result pages."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from genesys_sandbox.data import Dataset, without_attributes
from genesys_sandbox.wire import ApiProblem, parse_interval

ORDERS = ("asc", "desc", "unordered")
ORDER_BYS = ("conversationStart", "conversationEnd", "segmentStart", "segmentEnd")
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Selection:
    """What a query or job asks for: an interval in epoch ms and a direction."""

    start_ms: int
    end_ms: int
    descending: bool = False


@dataclass(frozen=True, slots=True)
class JobQuery:
    selection: Selection
    start_of_day: bool = False  # startOfDayIntervalMatching: the query's touched-day rule
    limit: int | None = None
    conversation_ids: frozenset[str] | None = None  # conversationFilters on conversationId


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body; 400 bad.request for anything else."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiProblem.of(400, "bad.request") from None
    if not isinstance(body, dict):
        raise ApiProblem.of(400, "bad.request")
    return body


def parse_selection(body: dict[str, Any]) -> Selection:
    """Interval, ``order`` and ``orderBy``. Filters are accepted but not applied [sandbox]."""
    if "interval" not in body:
        raise ApiProblem(400, "bad.request", "The interval is required.")
    start_ms, end_ms = parse_interval(body["interval"])
    order = _enum(body, "order", ORDERS, "asc")
    _enum(body, "orderBy", ORDER_BYS, "conversationStart")
    # Every orderBy sorts by conversationStart here: close enough for paging, and the records'
    # own order is all an exporter can observe.
    return Selection(start_ms, end_ms, descending=order == "desc")


def _enum(body: dict[str, Any], name: str, allowed: Sequence[str], default: str) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise ApiProblem.of(400, "invalid.value", str(value), name, ", ".join(allowed))
    return str(value)


def parse_job_query(body: dict[str, Any]) -> JobQuery:
    """An AsyncConversationQuery: the selection plus startOfDayIntervalMatching and limit."""
    selection = parse_selection(body)
    start_of_day = body.get("startOfDayIntervalMatching", False)
    if not isinstance(start_of_day, bool):
        raise ApiProblem.of(
            400, "invalid.value", str(start_of_day), "startOfDayIntervalMatching", "true, false"
        )
    limit = body.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ApiProblem(400, "bad.request", "The limit must be a positive integer.")
    ids = dimension_values(body.get("conversationFilters"), "conversationId")
    return JobQuery(selection, start_of_day, limit, ids)


def dimension_values(filters: Any, dimension: str) -> frozenset[str] | None:
    """The values a filter list allows for ``dimension``, or None when it does not restrict it.

    Applied: filters whose predicates all match ``dimension`` (``or`` of values, or one
    ``and`` predicate); several such filters intersect, as the list is combined with AND.
    Filters on other dimensions are accepted and not applied [sandbox]. A list that is not a
    list of {type, predicates} objects is a 400, as the platform validates bodies [INF]."""
    if filters is None:
        return None
    if not isinstance(filters, list) or not all(_is_filter(f) for f in filters):
        raise ApiProblem(400, "bad.request", "A filter needs a type (and, or) and predicates.")
    allowed: frozenset[str] | None = None
    for item in filters:
        predicates = item.get("predicates") or []
        if not predicates or any(p.get("dimension") != dimension for p in predicates):
            continue
        if item["type"] == "and" and len(predicates) > 1:
            continue  # one record cannot match two values of one dimension: not modelled
        values = frozenset(str(p.get("value")) for p in predicates)
        allowed = values if allowed is None else allowed & values
    return allowed


def _is_filter(item: Any) -> bool:
    if not isinstance(item, dict) or item.get("type") not in ("and", "or"):
        return False
    predicates = item.get("predicates") or []
    return isinstance(predicates, list) and all(isinstance(p, dict) for p in predicates)


def parse_paging(body: dict[str, Any], default_size: int, max_size: int) -> tuple[int, int]:
    """``paging {pageSize, pageNumber}``: both or neither, pageNumber 1-based."""
    paging = body.get("paging")
    if paging is None:
        return default_size, 1
    if not isinstance(paging, dict) or not {"pageSize", "pageNumber"} <= paging.keys():
        raise ApiProblem(400, "bad.request", "Paging needs both pageSize and pageNumber.")
    size, number = paging["pageSize"], paging["pageNumber"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, number)):
        raise ApiProblem(400, "bad.request", "Paging pageSize and pageNumber must be integers.")
    if number < 1 or size < 1:
        raise ApiProblem(400, "bad.request", "Paging pageSize and pageNumber start at 1.")
    if size > max_size:
        # The spec lists constraint.validation ("%s") for oversize values; wording is ours.
        raise ApiProblem(
            400,
            "constraint.validation",
            f"paging.pageSize must be less than or equal to {max_size}",
        )
    return size, number


def check_interval_length(selection: Selection, max_days: float) -> None:
    if selection.end_ms - selection.start_ms > max_days * DAY_MS:
        raise ApiProblem(
            400, "bad.request", f"The interval must not be longer than {max_days:g} days."
        )


class QueryPager:
    """Pages of the synchronous details query, optionally drifting like the live service."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self._dataset = dataset
        self._rng = random.Random(seed)

    def page(
        self,
        selection: Selection,
        size: int,
        number: int,
        drift: float,
        record: Callable[[int], bytes],
    ) -> bytes:
        """One page: conversations that started on a UTC day the interval touches, and totalHits.

        Past the last page the answer has no ``conversations`` key. A drifting page also repeats
        the previous page's last record first (the live service's pages shift as data arrives;
        the sandbox only duplicates, so an exporter that de-duplicates can still be exact).
        """
        found: Sequence[int] = self._dataset.indices_starting_on_days_touched(
            selection.start_ms, selection.end_ms
        )
        if selection.descending:
            found = found[::-1]
        offset = (number - 1) * size
        chosen = list(found[offset : offset + size])
        total = b'"totalHits":%d' % len(found)
        if not chosen:
            return b"{" + total + b"}"
        if offset > 0 and drift > 0 and self._rng.random() < drift:
            chosen.insert(0, found[offset - 1])
        records = b",".join(without_attributes(record(i)) for i in chosen)
        return b'{"conversations":[' + records + b"]," + total + b"}"
