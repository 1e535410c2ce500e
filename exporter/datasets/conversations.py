"""Conversation details: the analytics conversation-details jobs and sync query.

A conversation belongs to the window holding its ``conversationStart`` (UTC, half-open), so
across windows each is written once; each line is the record as the API sent it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from exporter.datasets.base import Finished, JobsApi, Windowed
from exporter.engine.records import RecordHead, Selection, WindowBounds, select_for_windows
from exporter.engine.seen import SeenKeys
from exporter.windows import Window

PATH = "/api/v2/analytics/conversations/details"
HEAD = RecordHead("conversationId", "conversationStart")


def job_body(window: Window) -> dict[str, Any]:
    """A details job over ``window``, ordered by start.

    A job matches by lifetime overlap, so its first pages also carry every conversation still
    going on at the interval's start, which the router then drops (1% of a job's records in
    the sandbox; far more in an org whose messaging conversations stay open for days). For
    whole UTC days ``startOfDayIntervalMatching`` selects by start day instead, which is exactly
    the conversations that started in the window. The API documents no rule for an end on a
    midnight; like every Genesys interval we take it as exclusive. Were it taken as touching
    the next day, that day would come back too and be dropped by each record's start: more to
    read, nothing lost. The order only makes a job over several windows fill their files one
    after another (and lets the limiter pace jobs by how far they have read).
    """
    body: dict[str, Any] = {"interval": window.interval, "order": "asc",
                            "orderBy": "conversationStart"}  # fmt: skip
    if window.whole_days:
        body["startOfDayIntervalMatching"] = True
    return body


def query_body(window: Window, page_size: int, page_number: int) -> dict[str, Any]:
    return {
        "interval": window.interval,
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": page_size, "pageNumber": page_number},
    }


class ConversationRouter:
    """Each record to the window of its start, once."""

    def route(
        self, raws: list[msgspec.Raw], bounds: WindowBounds, seen: SeenKeys, *, single_line: bool
    ) -> Selection:
        return select_for_windows(raws, bounds, seen, single_line=single_line, head=HEAD)

    def keys(self, line: bytes) -> Iterable[tuple[bytes, bytes]]:
        return (HEAD.read(line),)

    def finish(self, lines: Iterator[bytes]) -> Finished | None:
        return None

    def time_ms(self, raw: msgspec.Raw) -> int:
        return HEAD.time_ms(raw)


CONVERSATIONS = Windowed(
    name="conversations",
    summary="conversation detail records, one per conversation, in the window it started",
    permission="analytics:conversationDetail:view",
    api=JobsApi(
        jobs=f"{PATH}/jobs",
        query=f"{PATH}/query",
        records="conversations",
        job_body=job_body,
        query_body=query_body,
    ),
    router=ConversationRouter(),
)
