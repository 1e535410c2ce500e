"""Split API pages into records and keep those that belong to a window, without a model round trip.

Pages are decoded with msgspec into ``Raw`` slices: each record stays the exact bytes the server
sent (so new fields and enum values survive), and only ``conversationId`` and
``conversationStart`` are read from it. This is the hot path: no per-record Python dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import orjson

from exporter.windows import Window, parse_api_instant


class JobResultsPage(msgspec.Struct):
    """``GET .../details/jobs/{id}/results``: the cursor is absent on the last page."""

    conversations: list[msgspec.Raw] = []
    cursor: str | None = None
    dataAvailabilityDate: str | None = None


class QueryPage(msgspec.Struct):
    """``POST .../details/query``: no ``conversations`` key past the last page."""

    conversations: list[msgspec.Raw] = []
    totalHits: int = 0


class _RecordKey(msgspec.Struct):
    conversationId: str
    conversationStart: str


_job_page_decoder = msgspec.json.Decoder(JobResultsPage)
_query_page_decoder = msgspec.json.Decoder(QueryPage)
_key_decoder = msgspec.json.Decoder(_RecordKey)


def decode_job_page(body: bytes) -> JobResultsPage:
    """Decode a results page; raises ValueError (msgspec.DecodeError) when it is not one."""
    return _job_page_decoder.decode(body)


def decode_query_page(body: bytes) -> QueryPage:
    """Decode a sync-query page; raises ValueError (msgspec.DecodeError) when it is not one."""
    return _query_page_decoder.decode(body)


@dataclass(slots=True)
class Selection:
    """The JSONL lines of one page that belong to a window, and how many records they hold."""

    lines: bytes
    records: int
    seen_outside: int


def select_for_window(
    raws: list[msgspec.Raw], window: Window, seen: set[str], *, single_line: bool
) -> Selection:
    """Keep records that start in ``window`` and whose id is not in ``seen`` (updated in place).

    ``single_line`` says the page body held no newline, so no record needs re-serialising
    (checked once per page with one memchr rather than once per record).

    Jobs match by overlap and the query by touched day, so pages carry records that started
    outside the window; keeping only those that start inside writes each conversation once
    across adjacent windows.
    """
    start_ms, end_ms = window.start_ms, window.end_ms
    kept: list[bytes | msgspec.Raw] = []
    outside = 0
    for raw in raws:
        key = _key_decoder.decode(raw)
        if not start_ms <= parse_api_instant(key.conversationStart) < end_ms:
            outside += 1
            continue
        if key.conversationId in seen:
            continue
        seen.add(key.conversationId)
        kept.append(raw if single_line else _compact(raw))
    if not kept:
        return Selection(b"", 0, outside)
    kept.append(b"")  # so the join ends with a newline
    return Selection(b"\n".join(kept), len(kept) - 1, outside)


def _compact(raw: msgspec.Raw) -> bytes:
    """Re-serialise a pretty-printed record onto one line (rare: the API sends compact JSON)."""
    return orjson.dumps(orjson.loads(bytes(raw)))
