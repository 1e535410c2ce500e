"""Conversation details: the analytics conversation-details jobs and sync query.

A conversation belongs to the window holding its ``conversationStart`` (UTC, half-open), so
across windows each is written once; each line is the record as the API sent it. One with no
``conversationEnd`` yet (messaging and e-mail can stay open for days) is still going on: the
engine refreshes it in its window's file, by id, until it closes.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import orjson

from exporter.datasets.base import Fresh, JobsApi, Windowed
from exporter.datasets.records import (
    RecordHead,
    Records,
    Selection,
    WindowBounds,
    select_for_windows,
)
from exporter.datasets.seen import SeenKeys
from exporter.store.manifest import Opened
from exporter.windows import Window

PATH = "/api/v2/analytics/conversations/details"
HEAD = RecordHead("conversationId", "conversationStart", "conversationEnd")


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


def refresh_body(window: Window, conversation_ids: Sequence[str]) -> dict[str, Any]:
    """A job for these conversations only, over ``window`` (by lifetime overlap: a
    conversation still going on overlaps every interval after its start)."""
    predicates = [{"dimension": "conversationId", "value": c} for c in conversation_ids]
    return {"interval": window.interval, "order": "asc", "orderBy": "conversationStart",
            "conversationFilters": [{"type": "or", "predicates": predicates}]}  # fmt: skip


class ConversationRouter:
    """Each record to the window of its start, once; one without ``conversationEnd`` is
    still going on."""

    def route(
        self, raws: list[msgspec.Raw], bounds: WindowBounds, seen: SeenKeys, *, single_line: bool
    ) -> Selection:
        return select_for_windows(raws, bounds, seen, single_line=single_line, head=HEAD)

    def keys(self, line: bytes) -> Iterable[tuple[bytes, bytes]]:
        return (HEAD.read(line),)

    def opened(self, line: bytes) -> Iterable[Opened]:
        if not HEAD.still_open(line):
            return ()
        key, time = HEAD.read(line)
        return (Opened(key.decode(), key.decode(), time.decode()),)

    def finish(self, lines: Iterator[bytes]) -> Records | None:
        return None

    def time_ms(self, raw: msgspec.Raw) -> int:
        return HEAD.time_ms(raw)

    def fresh(
        self, raws: list[msgspec.Raw], wanted: Container[str], *, single_line: bool
    ) -> dict[str, Fresh]:
        found = {}
        for raw in raws:
            key = HEAD.read(raw)[0].decode()
            if key in wanted:
                body = bytes(raw) if single_line else orjson.dumps(orjson.loads(bytes(raw)))
                found[key] = Fresh(body, HEAD.still_open(raw))
        return found

    def merge(self, line: bytes, fresh: Mapping[str, bytes]) -> bytes:
        return fresh.get(HEAD.read(line)[0].decode(), line)


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
        refresh_body=refresh_body,
    ),
    router=ConversationRouter(),
)
