"""Conversation aggregates, computed from the sandbox's own conversation records.

The rule (the README's Sandbox section says the same; the exporter's reconciliation view
computes it from the detail tables):

- An observation is one entry of a session's ``metrics`` in a conversation's record, as the
  details jobs serve it now (an open conversation counts what it has emitted so far).
- It falls in the bucket holding its ``emitDate``: buckets of ``granularity`` (PT<n>M,
  PT<n>H or P1D) counted from the request interval's start, half-open [start, end).
- Its group: ``mediaType`` and ``direction`` are its session's; ``queueId`` is the first
  segment of its session naming a queue (absent when none does); ``userId`` is its
  participant's; ``wrapUpCode`` the last segment of its session naming one. A dimension with
  no value is left out of the group object. The real service's assignment when a session has
  several queues is UNVERIFIED (genesys-datasets.md §H): this is the rule chosen.
- Stats per (group, bucket, metric): ``count``, ``sum``, ``min``, ``max`` of the values for a
  ``t``/``o`` metric; an ``n`` metric (a count) has ``count`` alone, the sum of its values.
  A metric with no observation in a bucket is absent; a bucket with none is absent.
- A job counts the observations emitted before the watermark (``dataAvailabilityDate``) when
  it is submitted; the sync query counts every one. The watermark is the details' (the
  aggregates jobs have no availability route of their own).

Results are groups sorted by their dimension values, each with its buckets in time order,
paged by the jobs machinery of ``jobs.JobBoard`` at the job body's ``pageSize``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from genesys_sandbox.data import Dataset, DatasetSpec
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wire import (
    ApiProblem,
    format_instant,
    from_ms,
    parse_instant,
    parse_interval,
    to_ms,
)

DIMENSIONS = ("queueId", "mediaType", "direction", "userId", "wrapUpCode")
DEFAULT_GROUP_BY = ("queueId", "mediaType", "direction")
DEFAULT_METRICS = ("nOffered", "tAnswered", "tAbandon", "tAcd", "tTalk", "tHandle", "tAcw",
                   "tHeld", "tHeldComplete", "nTransferred", "nOverSla", "tWait",
                   "nConnected")  # fmt: skip
KNOWN_KEYS = frozenset(("interval", "granularity", "timeZone", "groupBy", "metrics", "filter",
                        "pageSize", "flattenMultivaluedDimensions", "views",
                        "alternateTimeDimension"))  # fmt: skip
_PERIOD = re.compile(r"^P(?:1D|T(\d+)([MH]))$")
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    start_ms: int
    end_ms: int
    bucket_ms: int
    group_by: tuple[str, ...]
    metrics: frozenset[str]
    page_size: int | None


@dataclass(frozen=True, slots=True)
class Observation:
    emit_ms: int
    group: tuple[tuple[str, str], ...]
    metric: str
    value: int


def parse_query(body: dict[str, Any], *, default_page_size: int) -> AggregateQuery:
    unknown = body.keys() - KNOWN_KEYS
    if unknown:
        raise ApiProblem(400, "bad.request", f"Unknown query field {sorted(unknown)[0]!r}.")
    if "interval" not in body:
        raise ApiProblem(400, "bad.request", "The interval is required.")
    start_ms, end_ms = parse_interval(body["interval"])
    if body.get("timeZone", "UTC") != "UTC":
        # The sandbox buckets in UTC only; a real org's zone moves day buckets [sandbox].
        raise ApiProblem(400, "bad.request", "The sandbox computes aggregates in UTC only.")
    group_by = tuple(body.get("groupBy", ()))
    if any(d not in DIMENSIONS for d in group_by):
        bad = next(d for d in group_by if d not in DIMENSIONS)
        raise ApiProblem(400, "bad.request", f"The sandbox cannot group by {bad!r}.")
    metrics = body.get("metrics")
    if not metrics or not all(isinstance(m, str) for m in metrics):
        raise ApiProblem(400, "bad.request", "Name at least one metric.")
    page_size = _page_size(body.get("pageSize"), default_page_size)
    bucket_ms = _bucket_ms(body.get("granularity"))
    return AggregateQuery(start_ms, end_ms, bucket_ms, group_by, frozenset(metrics), page_size)


def _bucket_ms(granularity: object) -> int:
    """A granularity's length; none asked: the whole interval is one bucket (0)."""
    if granularity is None:
        return 0
    found = _PERIOD.match(str(granularity))
    if found is None:
        raise ApiProblem(400, "bad.request", f"Unsupported granularity {granularity!r}.")
    if found.group(1) is None:
        return _DAY_MS
    ms = int(found.group(1)) * (60_000 if found.group(2) == "M" else 3_600_000)
    if ms <= 0 or _DAY_MS % ms:
        raise ApiProblem(400, "bad.request", f"Unsupported granularity {granularity!r}.")
    return ms


def _page_size(value: object, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or not 1 <= value <= 1000:
        raise ApiProblem.of(400, "invalid.value", str(value), "pageSize", "1-1000")
    return value


class ConversationAggregates:
    """The conversation aggregates family (``routes.JobRoutes`` serves it)."""

    name = "aggregates"
    path = "/api/v2/analytics/conversations/aggregates"
    route_prefix = "aggregates."
    records_key = "results"
    own_availability = False  # the details' watermark is theirs

    def __init__(self) -> None:
        # the latest emit after a conversation's start, ms, by dataset spec (one spec, one data)
        self._reach: dict[DatasetSpec, int] = {}

    def rows(self, state: SandboxState, body: dict[str, Any]) -> Sequence[bytes]:
        query = parse_query(body, default_page_size=state.settings.job_default_page_size)
        return self.results(state, query, to_ms(state.availability()))

    def page_size(self, state: SandboxState, body: dict[str, Any]) -> int | None:
        """The results page size a job's body sets (its results take no pageSize)."""
        return parse_query(body, default_page_size=state.settings.job_default_page_size).page_size

    def availability_text(self, state: SandboxState) -> str:
        return state.availability_text()

    def records(self, state: SandboxState, rows: list[bytes]) -> bytes:
        return b",".join(rows)

    def query(self, state: SandboxState, body: dict[str, Any]) -> bytes:
        """The sync query: every observation, no paging."""
        query = parse_query(body, default_page_size=state.settings.job_default_page_size)
        if query.end_ms - query.start_ms > state.settings.query_max_interval_days * _DAY_MS:
            raise ApiProblem(400, "bad.request", "The interval is too long for a query.")
        return b'{"results":[' + b",".join(self.results(state, query, None)) + b"]}"

    def results(
        self, state: SandboxState, query: AggregateQuery, cutoff: int | None
    ) -> list[bytes]:
        """The result groups, each as bytes."""
        stats: dict[tuple[tuple[str, str], ...], dict[int, dict[str, list[int]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for o in self.observations(state, query.start_ms, query.end_ms):
            if o.metric not in query.metrics or (cutoff is not None and o.emit_ms >= cutoff):
                continue
            group = tuple((d, v) for d, v in o.group if d in query.group_by)
            bucket = query.start_ms + (
                (o.emit_ms - query.start_ms) // query.bucket_ms * query.bucket_ms
                if query.bucket_ms else 0
            )  # fmt: skip
            values = stats[group][bucket].setdefault(o.metric, [])
            values.append(o.value)
        order = {d: i for i, d in enumerate(query.group_by)}
        return [_result(dict(sorted(group, key=lambda p: order[p[0]])), buckets, query)
                for group, buckets in sorted(stats.items())]  # fmt: skip

    def observations(
        self, state: SandboxState, start_ms: int, end_ms: int
    ) -> Iterator[Observation]:
        """Every metric emitted in [start_ms, end_ms), with its whole group (every dimension)."""
        data = state.dataset
        lo = data.index_range_starting_in(start_ms - self._reach_ms(data), end_ms)
        read = state.job_records()
        for i in lo:
            for o in _observations(orjson.loads(read(i))):
                if start_ms <= o.emit_ms < end_ms:
                    yield o

    def _reach_ms(self, data: Dataset) -> int:
        """How long after its start a conversation emits its last metric, at most."""
        if data.spec not in self._reach:
            latest = 0
            for i, start in enumerate(data.starts_ms):
                emits = [o.emit_ms for o in _observations(orjson.loads(data.job_record(i)))]
                latest = max(latest, max(emits, default=start) - start)
            self._reach[data.spec] = latest
        return self._reach[data.spec]


def _observations(record: dict[str, Any]) -> Iterator[Observation]:
    for participant in record.get("participants", ()):
        user = participant.get("userId")
        for session in participant.get("sessions", ()):
            segments = session.get("segments", ())
            queues = [s["queueId"] for s in segments if s.get("queueId")]
            codes = [s["wrapUpCode"] for s in segments if s.get("wrapUpCode")]
            values = {"queueId": queues[0] if queues else None,
                      "mediaType": session.get("mediaType"), "direction": session.get("direction"),
                      "userId": user, "wrapUpCode": codes[-1] if codes else None}  # fmt: skip
            group = tuple((d, v) for d, v in values.items() if v is not None)
            for metric in session.get("metrics", ()):
                emit = to_ms(parse_instant(metric["emitDate"]))
                yield Observation(emit, group, metric["name"], int(metric["value"]))


def _result(group: dict[str, str], buckets: dict[int, dict[str, list[int]]],
            query: AggregateQuery) -> bytes:  # fmt: skip
    width = query.bucket_ms or (query.end_ms - query.start_ms)
    data = []
    for bucket in sorted(buckets):
        interval = f"{format_instant(from_ms(bucket))}/{format_instant(from_ms(bucket + width))}"
        metrics = [{"metric": name, "stats": _stats(name, values)}
                   for name, values in sorted(buckets[bucket].items())]  # fmt: skip
        data.append({"interval": interval, "metrics": metrics})
    return orjson.dumps({"group": group, "data": data})


def _stats(metric: str, values: list[int]) -> dict[str, int]:
    if metric.startswith("n"):
        return {"count": sum(values)}
    return {"max": max(values), "min": min(values), "count": len(values), "sum": sum(values)}


def truth(state: SandboxState, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Ground truth of the default request (half hours, queue, media type, direction, the
    default metrics) over [start, end): one entry per group, bucket and metric, every
    observation counted (no watermark)."""
    query = AggregateQuery(start_ms, end_ms, 1_800_000, DEFAULT_GROUP_BY,
                           frozenset(DEFAULT_METRICS), None)  # fmt: skip
    found = []
    for raw in ConversationAggregates().results(state, query, None):
        result = orjson.loads(raw)
        for bucket in result["data"]:
            for metric in bucket["metrics"]:
                found.append({"group": result["group"], "interval": bucket["interval"],
                              "metric": metric["metric"], "stats": metric["stats"]})  # fmt: skip
    return found
