"""The analytics conversation-details endpoints: async jobs (bulk history) and the sync query.

Each function is one API conversation; windows, files and resume live in the scheduler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from exporter.client.http import ApiClient
from exporter.engine.records import (
    JobResultsPage,
    QueryPage,
    decode_job_page,
    decode_query_page,
    start_ms,
)
from exporter.errors import ApiError
from exporter.windows import Window

JOBS = "/api/v2/analytics/conversations/details/jobs"
QUERY = "/api/v2/analytics/conversations/details/query"
# The documented query limit is 7 days per request (estuary, API doc §5.1).
QUERY_MAX_SPAN_S = 7 * 86400
POLL_GROWTH = 1.5


class JobFailed(ApiError):
    """The job ended FAILED or CANCELLED, or did not finish in time: split the window and retry."""


class JobExpired(ApiError):
    """The job's results are gone (EXPIRED or 404): submit the window again."""


class CursorRejected(ApiError):
    """The server refused a results cursor: read the job again from its first page."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: str
    expiration_date: str | None
    error_message: str | None


def _json(body: bytes) -> Any:
    return orjson.loads(body)


async def data_availability(api: ApiClient) -> datetime:
    """The instant up to which the datalake (and so every job) is complete."""
    data = await api.request("GET", f"{JOBS}/availability", parse=_json)
    return datetime.fromisoformat(str(data["dataAvailabilityDate"]).replace("Z", "+00:00"))


async def submit_job(api: ApiClient, window: Window) -> str:
    """Submit a details job for ``window``, ordered by start.

    A job matches by lifetime overlap, so its first pages also carry every conversation still
    going on at the interval's start, which the exporter then drops (1% of a job's records in
    the sandbox; far more in an org whose messaging conversations stay open for days). For
    whole UTC days ``startOfDayIntervalMatching`` selects by start day instead, which is exactly
    the conversations that started in the window. The API documents no rule for an end on a
    midnight; like every Genesys interval we take it as exclusive. Were it taken as touching
    the next day, that day would come back too and be dropped by each record's start: more to
    read, nothing lost. Not ordering-dependent either: each record is routed by its own start;
    the order only makes a job spanning several windows fill their files one after another.
    """
    body: dict[str, Any] = {
        "interval": window.interval,
        "order": "asc",
        "orderBy": "conversationStart",
    }
    if window.whole_days:
        body["startOfDayIntervalMatching"] = True
    data = await api.request("POST", JOBS, json=body, expect=(202, 200), parse=_json)
    return str(data["jobId"])


async def job_status(api: ApiClient, job_id: str) -> JobStatus:
    try:
        data = await api.request("GET", f"{JOBS}/{job_id}", expect=(200, 202), parse=_json)
    except ApiError as exc:
        raise _job_gone(exc, job_id) from exc
    return JobStatus(
        state=str(data.get("state", "")),
        expiration_date=data.get("expirationDate"),
        error_message=data.get("errorMessage"),
    )


async def wait_fulfilled(
    api: ApiClient, job_id: str, *, first_poll_s: float, max_poll_s: float, timeout_s: float
) -> JobStatus:
    """Poll with a growing interval until FULFILLED; FAILED/CANCELLED/timeout -> JobFailed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = first_poll_s
    while True:
        await asyncio.sleep(delay)
        status = await job_status(api, job_id)
        if status.state == "FULFILLED":
            return status
        if status.state == "EXPIRED":
            raise JobExpired(f"Job {job_id} expired before its results were read.")
        if status.state in ("FAILED", "CANCELLED"):
            reason = (status.error_message or "no reason given").rstrip(".")
            raise JobFailed(f"Job {job_id} ended {status.state}: {reason}.")
        if loop.time() + delay > deadline:
            raise JobFailed(f"Job {job_id} did not finish within {timeout_s:.0f} s.")
        delay = min(delay * POLL_GROWTH, max_poll_s)


async def job_pages(
    api: ApiClient,
    job_id: str,
    *,
    page_size: int,
    cursor: str | None = None,
    span: Window | None = None,
) -> AsyncIterator[tuple[JobResultsPage, bool]]:
    """Yield (page, single_line) from ``cursor`` (None = first page) until the cursor is absent.

    ``single_line``: the body held no newline, so its records can be written as they came.
    Each request's rate-limit priority is how far through ``span`` (the job's interval) the
    last page reached: results come in start order, so jobs behind take turns first. Were the
    order not kept, only the pacing would suffer: every record is still routed by its start.
    """
    progress = 0.0
    while True:
        params = {"pageSize": str(page_size)}
        if cursor:
            params["cursor"] = cursor
        try:
            page, single_line = await api.request(
                "GET",
                f"{JOBS}/{job_id}/results",
                params=params,
                parse=_lines(decode_job_page),
                priority=progress,
            )
        except ApiError as exc:
            if exc.status == 400 and cursor:
                raise CursorRejected(f"Job {job_id} refused its cursor: {exc}") from exc
            raise _job_gone(exc, job_id) from exc
        yield page, single_line
        if not page.cursor:
            return
        cursor = page.cursor
        if span is not None and page.conversations:
            progress = _progress(span, start_ms(page.conversations[-1]))


def _progress(span: Window, ms: int) -> float:
    """The share of ``span`` before instant ``ms``, from 0 to 1."""
    return min(1.0, max(0.0, (ms - span.start_ms) / (span.end_ms - span.start_ms)))


async def delete_job(api: ApiClient, job_id: str) -> None:
    """Delete a job we will not read, so it stops counting against the concurrent-job cap."""
    try:
        await api.request("DELETE", f"{JOBS}/{job_id}", expect=(200, 202, 204), parse=bytes)
    except ApiError as exc:
        if exc.status != 404:
            raise


async def query_pages(
    api: ApiClient, window: Window, *, page_size: int
) -> AsyncIterator[tuple[QueryPage, bool]]:
    """Yield (page, single_line) of the sync query over ``window``, in spans of at most 7 days."""
    for span in _query_spans(window):
        page_number = 1
        while True:
            body = {
                "interval": span.interval,
                "order": "asc",
                "orderBy": "conversationStart",
                "paging": {"pageSize": page_size, "pageNumber": page_number},
            }
            page, single_line = await api.request(
                "POST", QUERY, json=body, parse=_lines(decode_query_page)
            )
            if not page.conversations:
                break
            yield page, single_line
            if len(page.conversations) < page_size:
                break
            page_number += 1


def _query_spans(window: Window) -> list[Window]:
    spans, start = [], window.start
    while start < window.end:
        end = min(
            window.end, datetime.fromtimestamp(start.timestamp() + QUERY_MAX_SPAN_S, start.tzinfo)
        )
        spans.append(Window(start, end))
        start = end
    return spans


def _lines(decode: Any) -> Any:
    """A parser returning (page, whether the body held no newline), so callers need not keep
    the body: the page's records are views of it already."""

    def parse(body: bytes) -> tuple[Any, bool]:
        return decode(body), b"\n" not in body

    return parse


def _job_gone(exc: ApiError, job_id: str) -> ApiError:
    if exc.status == 404:
        return JobExpired(f"Job {job_id} is gone (HTTP 404); its results expired.")
    return exc


__all__ = [
    "CursorRejected",
    "JobExpired",
    "JobFailed",
    "JobStatus",
    "data_availability",
    "delete_job",
    "job_pages",
    "job_status",
    "query_pages",
    "submit_job",
    "wait_fulfilled",
]


async def count_conversations(api: ApiClient, window: Window) -> int:
    """The query's ``totalHits`` over ``window`` with one-record pages: a cheap size estimate
    (it counts whole touched days, so partial-day windows are over-estimated)."""
    total = 0
    for span in _query_spans(window):
        body = {"interval": span.interval, "paging": {"pageSize": 1, "pageNumber": 1}}
        page = await api.request("POST", QUERY, json=body, parse=decode_query_page)
        total += page.totalHits
    return total
