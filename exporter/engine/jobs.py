"""An analytics details family's endpoints: async jobs (bulk history) and the sync query.

Each function is one API conversation about one family (``JobsApi``: conversation details,
user details, ...); windows, files and resume live in the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import JobsApi, QueryPage, ResultsPage
from exporter.errors import ApiError, PermissionDenied, RunAgainLater
from exporter.windows import Window

POLL_GROWTH = 1.5
DELETE_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)


class JobFailed(ApiError):
    """The job ended FAILED or CANCELLED: submit it again; split it if it fails again."""


class JobExpired(ApiError):
    """The job was found expired (EXPIRED or 404) before its results were read: submit the
    window again."""


class ResultsExpired(ApiError):
    """The job's results expired while they were being read: reading them takes longer than
    they live, so split the job."""


class CursorRejected(ApiError):
    """The server refused a results cursor: read the job again from its first page."""


class JobStalled(RunAgainLater):
    """The family's jobs service finished no job within jobs.job_timeout_s. A smaller job
    would wait in the same queue, so the job is kept for the next run (not an ApiError: its
    batch is kept, as a stop keeps it), not split, and no new job of the family is submitted
    this run. Exit 4: run again later, progress kept."""

    summary_status = "stalled"


def stalled_reason(timeout_s: float) -> str:
    """Why a family's jobs are taken as stuck, in the words of its window's one line."""
    took = f"{timeout_s / 60:.0f} min" if timeout_s >= 60 else f"{timeout_s:g} s"
    return f"The analytics jobs service finished no job within {took}"


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: str
    expiration_date: str | None
    error_message: str | None


def _json(body: bytes) -> Any:
    return orjson.loads(body)


async def data_availability(api: ApiClient, family: JobsApi) -> datetime:
    """The instant up to which the datalake (and so every job of the family) is complete."""
    data = await api.request("GET", family.availability_path, parse=_json)
    return datetime.fromisoformat(str(data["dataAvailabilityDate"]).replace("Z", "+00:00"))


async def submit_job(
    api: ApiClient,
    family: JobsApi,
    window: Window,
    *,
    options: Mapping[str, Any] | None = None,
    page_size: int | None = None,
) -> str:
    """Submit a job over ``window``, its body completed by the family's configured
    ``options``, and by ``page_size`` for a family that takes it there unless the options
    size it (``pageSize``); returns its id."""
    body = {**family.job_body(window), **(options or {})}
    if family.page_size_in_body and page_size is not None:
        body.setdefault("pageSize", page_size)
    else:
        body.pop("pageSize", None)
    return await submit_body(api, family, body)


async def submit_body(api: ApiClient, family: JobsApi, body: dict[str, Any]) -> str:
    """Submit a details job of the family with this body; returns its id."""
    data = await api.request("POST", family.jobs, json=body, expect=(202, 200), parse=_json)
    return str(data["jobId"])


async def job_status(api: ApiClient, family: JobsApi, job_id: str) -> JobStatus:
    try:
        data = await api.request("GET", f"{family.jobs}/{job_id}", expect=(200, 202), parse=_json)
    except ApiError as exc:
        raise _job_gone(exc, job_id, JobExpired) from exc
    return JobStatus(
        state=str(data.get("state", "")),
        expiration_date=data.get("expirationDate"),
        error_message=data.get("errorMessage"),
    )


async def wait_fulfilled(
    api: ApiClient,
    family: JobsApi,
    job_id: str,
    *,
    first_poll_s: float,
    max_poll_s: float,
    timeout_s: float,
    given_up: Callable[[], bool],
) -> JobStatus:
    """Poll with a growing interval until FULFILLED. FAILED/CANCELLED -> JobFailed, EXPIRED
    -> JobExpired; still queued or pending after ``timeout_s``, or once ``given_up()`` (another
    job of the family found the service stuck) -> JobStalled."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + timeout_s
    delay = first_poll_s
    state = ""
    while True:
        await asyncio.sleep(delay)
        status = await job_status(api, family, job_id)
        if status.state != state:  # changes only: a long queue is one line, not one a poll
            state = status.state
            log.debug("job %s: %s after %.1f s", job_id, state, loop.time() - began,
                      extra={"job_id": job_id, "state": state})  # fmt: skip
        if status.state == "FULFILLED":
            return status
        if status.state == "EXPIRED":
            raise JobExpired(f"Job {job_id} expired before its results were read.")
        if status.state in ("FAILED", "CANCELLED"):
            reason = (status.error_message or "no reason given").rstrip(".")
            raise JobFailed(f"Job {job_id} ended {status.state}: {reason}.")
        if loop.time() + delay > deadline or given_up():
            raise JobStalled(
                f"{stalled_reason(timeout_s)}; the job is kept and the next run continues it."
            )
        delay = min(delay * POLL_GROWTH, max_poll_s)


async def job_pages(
    api: ApiClient,
    family: JobsApi,
    job_id: str,
    *,
    page_size: int,
    cursor: str | None,
    span: Window,
    time_ms: Callable[[msgspec.Raw], int],
) -> AsyncIterator[tuple[ResultsPage, bool]]:
    """Yield (page, single_line) from ``cursor`` (None = first page) until the cursor is absent.

    A page shorter than ``page_size`` is not the last (user details de-duplicate within a
    page only); only a missing cursor ends the job. ``single_line``: the body held no
    newline, so its records can be written as they came. Each request's rate-limit priority
    is how far through ``span`` the last page reached (``time_ms`` of its last record):
    results come in time order, so jobs behind take turns first. Were the order not kept,
    only the pacing would suffer: every record is still routed by its own time.
    """
    progress = 0.0
    parse = _lines(family.decode_results)
    while True:
        params = {} if family.page_size_in_body else {"pageSize": str(page_size)}
        if cursor:
            params["cursor"] = cursor
        try:
            page, single_line = await api.request(
                "GET", f"{family.jobs}/{job_id}/results", params=params, parse=parse,
                priority=progress,
            )  # fmt: skip
        except ApiError as exc:
            if exc.status == 400 and cursor:
                raise CursorRejected(f"Job {job_id} refused its cursor: {exc}") from exc
            raise _job_gone(exc, job_id, ResultsExpired) from exc
        yield page, single_line
        if not page.cursor:
            return
        cursor = page.cursor
        if page.records:
            progress = _progress(span, time_ms(page.records[-1]))


def _progress(span: Window, ms: int) -> float:
    """The share of ``span`` before instant ``ms``, from 0 to 1."""
    return min(1.0, max(0.0, (ms - span.start_ms) / (span.end_ms - span.start_ms)))


async def delete_job(api: ApiClient, family: JobsApi, job_id: str) -> None:
    """Delete a job we will not read, so it stops counting against the concurrent-job cap."""
    try:
        await api.request("DELETE", f"{family.jobs}/{job_id}", expect=(200, 202, 204), parse=bytes)
    except ApiError as exc:
        if exc.status != 404:
            raise


async def delete_quietly(api: ApiClient, family: JobsApi, job_id: str) -> None:
    """Delete a job we are done with, within ``DELETE_TIMEOUT_S``; a failure is only logged:
    an unread job expires on its own."""
    try:
        async with asyncio.timeout(DELETE_TIMEOUT_S):
            await delete_job(api, family, job_id)
        log.debug("job %s: deleted", job_id, extra={"job_id": job_id})
    except (ApiError, PermissionDenied, TimeoutError) as exc:
        log.info("could not delete job %s (%s); it expires on its own", job_id, exc)


async def query_pages(
    api: ApiClient,
    family: JobsApi,
    window: Window,
    *,
    page_size: int,
    options: Mapping[str, Any] | None = None,
) -> AsyncIterator[tuple[QueryPage, bool]]:
    """Yield (page, single_line) of the sync query over ``window``, in spans the query
    allows, each paged by number until a page comes back empty (a short page is not the end:
    a family may de-duplicate within pages); a family whose query takes no paging answers
    each span at once."""
    parse = _lines(family.decode_query)
    for span in query_spans(window, family.query_max_span):
        number = 1
        while True:
            body = {**family.query_body(span, page_size, number), **_query_options(options)}
            page, single_line = await api.request("POST", family.query, json=body, parse=parse)
            if page.records:
                yield page, single_line
            if not page.records or not family.query_paged:
                break
            number += 1


async def query_once(api: ApiClient, family: JobsApi, window: Window) -> None:
    """One sync query over ``window`` with the family's plainest body, its answer unread:
    whether the OAuth client may query the family at all (PermissionDenied when not)."""
    await api.request("POST", family.query, json=family.query_body(window, 1, 1), parse=bytes)


def _query_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A family's options as a query takes them: ``pageSize`` sizes job pages only."""
    return {key: value for key, value in (options or {}).items() if key != "pageSize"}


def query_spans(window: Window, longest: timedelta) -> list[Window]:
    spans, start = [], window.start
    while start < window.end:
        end = min(window.end, start + longest)
        spans.append(Window(start, end))
        start = end
    return spans


async def count_records(api: ApiClient, family: JobsApi, window: Window) -> int | None:
    """The query's ``totalHits`` over ``window`` with one-record pages: a cheap size estimate
    (it counts whole touched days, so partial-day windows are over-estimated); None for a
    family whose query takes no paging (it has no count short of the whole answer)."""
    if not family.query_paged:
        return None
    total = 0
    for span in query_spans(window, family.query_max_span):
        body = family.query_body(span, 1, 1)
        page = await api.request("POST", family.query, json=body, parse=family.decode_query)
        total += page.totalHits
    return total


def _lines(decode: Callable[[bytes], Any]) -> Callable[[bytes], tuple[Any, bool]]:
    """A parser returning (page, whether the body held no newline), so callers need not keep
    the body: the page's records are views of it already."""

    def parse(body: bytes) -> tuple[Any, bool]:
        return decode(body), b"\n" not in body

    return parse


def _job_gone(exc: ApiError, job_id: str, gone: type[ApiError]) -> ApiError:
    if exc.status == 404:
        return gone(f"Job {job_id} is gone (HTTP 404); its results expired.")
    return exc
