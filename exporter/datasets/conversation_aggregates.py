"""Conversation aggregates: the analytics conversation-aggregates jobs, by UTC day.

A job's results are groups, ``{"group": {dimension: value}, "data": [{"interval":
"start/end", "metrics": [{"metric", "stats": {...}}]}]}``, each with every bucket of the job's
interval that holds something. The request (granularity, time zone, groupBy, metrics) comes
from the config's ``[aggregates]`` section (``JobsApi.options``); its page size goes in the
job's body, as the aggregates results take no ``pageSize`` [INF: the SDK's results call takes
only a cursor].

Lines: one per group and bucket, ``{"group": ..., "data": [one bucket]}``, the API's own
objects otherwise untouched. Not one per group, because a group's buckets of a job over
several days belong to several windows, and the service may send one group's buckets over
several pages (or a group again on a later page): a line per bucket lies in exactly one
window and comes from exactly one page, so a window's file is exactly the pages read up to
its checkpoint, and a resumed job drops what was written by key (group, bucket start) with no
merge at commit. A bucket belongs to the window holding its start; buckets tile a UTC day
(``granularity`` divides one), so across windows each is written once.

Aggregates never stay open: a day past the watermark is final, today's is provisional and
replaced by each run. The jobs have no availability endpoint of their own [SRC: the SDK
lists none]; they are computed from the same analytics data as conversation details, so the
details' ``dataAvailabilityDate`` is taken as theirs [UNVERIFIED], which also needs
``analytics:conversationDetail:view``. The sync aggregates query, for the tail past it, takes
no paging: one answer per span.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from typing import Any

import msgspec
import orjson

from exporter.datasets.base import Fresh, JobsApi, Windowed
from exporter.datasets.records import Records, Selection, WindowBounds, canonical
from exporter.datasets.seen import SeenKeys
from exporter.store.manifest import Opened
from exporter.windows import Window, parse_api_instant

PATH = "/api/v2/analytics/conversations/aggregates"
WATERMARK = "/api/v2/analytics/conversations/details/jobs/availability"


class _Bucket(msgspec.Struct):
    interval: str


_decode_result = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_data = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_bucket = msgspec.json.Decoder(_Bucket).decode


def job_body(window: Window) -> dict[str, Any]:
    """An aggregates job over ``window``; ``[aggregates]`` adds the rest of the request."""
    return {"interval": window.interval}


def query_body(window: Window, page_size: int, page_number: int) -> dict[str, Any]:
    """The sync aggregates query over ``window``: it takes no paging (one answer). The query
    needs a metric; ``[aggregates]`` replaces this one in every query but a permission probe."""
    return {"interval": window.interval, "metrics": ["nOffered"]}


def bucket_start(raw: msgspec.Raw | bytes) -> bytes:
    """A bucket's start (its ``interval`` before the slash) as canonical instant bytes."""
    interval = _decode_bucket(raw).interval
    start, slash, _ = interval.partition("/")
    if not slash:
        raise ValueError(f"the bucket interval {interval!r} is not start/end")
    return canonical(start)


def _group_key(group: msgspec.Raw) -> bytes:
    """A group's identity whatever the order its dimensions were sent in."""
    return orjson.dumps(orjson.loads(bytes(group)), option=orjson.OPT_SORT_KEYS)


def _line(group: msgspec.Raw, others: list[tuple[str, msgspec.Raw]], bucket: msgspec.Raw) -> bytes:
    parts = [b'"group":' + bytes(group)]
    parts += [orjson.dumps(name) + b":" + bytes(raw) for name, raw in others]
    parts.append(b'"data":[' + bytes(bucket) + b"]")
    return b"{" + b",".join(parts) + b"}"


def _split(
    raw: msgspec.Raw | bytes, *, single_line: bool = True
) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(key, bucket start, line) of each bucket of a result (or of a line: one bucket). A
    result from a page that was not on one line is made compact first (rare: the API sends
    compact JSON), so its lines are one line each."""
    if not single_line:
        raw = orjson.dumps(orjson.loads(bytes(raw)))
    result = _decode_result(raw)
    group = result.pop("group", msgspec.Raw(b"{}"))
    data = result.pop("data", msgspec.Raw(b"[]"))
    others = list(result.items())
    key = _group_key(group)
    for bucket in _decode_data(data):
        start = bucket_start(bucket)
        yield key + b"|" + start, start, _line(group, others, bucket)


class AggregateRouter:
    """Each bucket of each group to the window holding its start, once; nothing stays open."""

    def route(
        self, raws: list[msgspec.Raw], bounds: WindowBounds, seen: SeenKeys, *, single_line: bool
    ) -> Selection:
        found = [piece for raw in raws for piece in _split(raw, single_line=single_line)]
        fresh = seen.keep_new([key for key, _, _ in found], [start for _, start, _ in found])
        windows: list[Records] = [[] for _ in range(len(bounds))]
        repeats = 0
        for (_, start, line), new in zip(found, fresh, strict=True):
            if not new:
                repeats += 1
                continue
            i = bounds.index_canonical(start)
            if i >= 0:
                windows[i].append(line)
        return Selection(windows, repeats)

    def keys(self, line: bytes) -> Iterable[tuple[bytes, bytes]]:
        return [(key, start) for key, start, _ in _split(line)]

    def opened(self, line: bytes) -> Iterable[Opened]:
        return ()  # a bucket is final once its day is past the watermark

    def finish(self, lines: Iterator[bytes]) -> Records | None:
        return None

    def time_ms(self, raw: msgspec.Raw) -> int:
        """The latest bucket start of a result (for pacing)."""
        return max((parse_api_instant(start.decode()) for _, start, _ in _split(raw)), default=0)

    def fresh(
        self, raws: list[msgspec.Raw], wanted: Container[str], *, single_line: bool
    ) -> dict[str, Fresh]:
        return {}  # nothing is ever tracked as open, so nothing is ever wanted

    def merge(self, line: bytes, fresh: Mapping[str, bytes]) -> bytes:
        return line


CONVERSATION_AGGREGATES = Windowed(
    name="conversation-aggregates",
    summary="conversation metrics per group and bucket ([aggregates]; by default queue, media "
    "type and direction by half hour), one line each, in the window of the bucket's start",
    permission="analytics:conversationAggregate:view",
    api=JobsApi(
        jobs=f"{PATH}/jobs",
        query=f"{PATH}/query",
        records="results",
        job_body=job_body,
        query_body=query_body,
        refresh_body=None,
        availability=WATERMARK,
        query_paged=False,
        page_size_in_body=True,
        options="aggregates",
    ),
    router=AggregateRouter(),
)
