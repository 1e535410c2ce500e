"""A search that answers in one of three shapes: its result inline, a pre-signed download link
to it, or later (genesys-datasets.md §G: ``{status, operationId, result | downloadUrl}``); and
a bulk job, followed until it is Complete with one download link per item (``bulk_job``).

Whatever the shape, the caller gets the same decoded result. A link is fetched without the
bearer token and outside the API's rate budget (``ApiClient.download``); one that has expired
(403) is replaced by asking the search again, ``link_refreshes`` times at most. An answer
still Processing is followed by asking the same search again, after ``FIRST_WAIT_S`` and then
twice as long each time up to ``search_poll_s``, for ``search_timeout_s`` at most (a bulk job
is followed the same way; most finish in seconds, and a fixed 5 s wait cost an hourly
adherence run most of its time): the service announces completion on a notification topic and
documents no polling, so asking again is our choice [UNVERIFIED]. The waits read the clock
handed in, and sleep through ``sleep`` (tests hand in ones that do not wait).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import orjson

from exporter.client.http import ApiClient
from exporter.config import WorkforceSettings
from exporter.errors import ApiError, LinkExpired

log = logging.getLogger(__name__)
FIRST_WAIT_S = 1.0  # the first wait for an answer still Processing; then doubled
PRIORITY = 1.5  # after job pages (0 to 1), before snapshot pages (2)


_NONE = msgspec.Raw(b"null")


class SearchAnswer(msgspec.Struct):
    """``BuAsyncAgentSchedulesSearchResponse``: the result inline, or a link, or neither yet."""

    status: str = ""
    operationId: str | None = None
    result: msgspec.Raw = msgspec.field(default_factory=lambda: _NONE)  # Raw cannot be Optional
    downloadUrl: str | None = None


_decode = msgspec.json.Decoder(SearchAnswer).decode


class SearchFailed(ApiError):
    """The search ended in Error or Canceled, or never answered within its timeout."""


async def search(
    api: ApiClient,
    path: str,
    body: dict[str, Any],
    settings: WorkforceSettings,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, Any]:
    """The search's result, decoded, whatever shape its answer took."""
    deadline = clock() + settings.search_timeout_s
    refreshes, wait = 0, _first_wait(settings)
    while True:
        answer = await api.request("POST", path, json=body, parse=_decode, priority=PRIORITY)
        if answer.status == "Processing":
            if clock() + wait > deadline:
                raise SearchFailed(_late(path, settings, answer.operationId), url=path)
            await sleep(wait)
            wait = min(wait * 2, settings.search_poll_s)
            continue
        if answer.status != "Complete":
            ended = answer.status or "with no status"
            raise SearchFailed(f"The search {path} ended {ended} (operation "
                               f"{answer.operationId}); run again later.", url=path)  # fmt: skip
        if bytes(answer.result) != b"null":
            return _object(bytes(answer.result))
        if not answer.downloadUrl:
            raise SearchFailed(f"The search {path} completed with neither a result nor a "
                               "download link; run again later.", url=path)  # fmt: skip
        try:
            return await api.download(answer.downloadUrl, parse=_object)
        except LinkExpired:
            refreshes += 1
            if refreshes > settings.link_refreshes:
                raise
            log.info("%s: its download link had expired; asking again for a fresh one", path)


def _object(body: bytes) -> dict[str, Any]:
    """A JSON object (ValueError otherwise: retried as a cut-short body)."""
    value = orjson.loads(body)
    if not isinstance(value, dict):
        raise ValueError(f"a {type(value).__name__}, not a JSON object")
    return value


def _late(path: str, settings: WorkforceSettings, operation: str | None) -> str:
    return (
        f"The search {path} was still Processing after {settings.search_timeout_s:g} s "
        f"(operation {operation}); run again later, or raise [workforce] search_timeout_s."
    )


class JobReference(msgspec.Struct):
    id: str = ""
    status: str = ""


class JobAnswer(msgspec.Struct):
    """``WfmHistoricalAdherenceBulkResponse``: the job, and its links once it is Complete."""

    job: JobReference = msgspec.field(default_factory=JobReference)
    downloadUrls: list[str] = msgspec.field(default_factory=list)


_decode_job = msgspec.json.Decoder(JobAnswer).decode


async def bulk_job(
    api: ApiClient,
    paths: tuple[str, str],
    body: dict[str, Any],
    settings: WorkforceSettings,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[dict[str, Any]]:
    """Start a bulk job (``paths``: its POST, and its GET with ``{id}``), follow it (waits
    growing to ``search_poll_s``) until it is Complete (``search_timeout_s`` at most), fetch its
    results, one per item, in order. A link that has expired (403) is replaced by asking the
    job again for fresh links, ``link_refreshes`` times at most; results already fetched are
    kept. A job that ends in Error fails (the caller's next run asks again)."""
    submit, follow = paths
    started = await api.request("POST", submit, json=body, expect=(200, 202), parse=_decode_job,
                                priority=PRIORITY)  # fmt: skip
    job_path = follow.replace("{id}", started.job.id)
    deadline, refreshes = clock() + settings.search_timeout_s, 0
    wait = _first_wait(settings)
    results: dict[int, dict[str, Any]] = {}
    while True:
        answer = await api.request("GET", job_path, parse=_decode_job, priority=PRIORITY)
        status = answer.job.status
        if status == "Processing":
            if clock() + wait > deadline:
                raise SearchFailed(_late(job_path, settings, started.job.id), url=job_path)
            await sleep(wait)
            wait = min(wait * 2, settings.search_poll_s)
            continue
        if status != "Complete":
            raise SearchFailed(f"The job {job_path} ended {status or 'with no status'}; run "
                               "again later.", url=job_path)  # fmt: skip
        try:
            for index, url in enumerate(answer.downloadUrls):
                if index not in results:
                    results[index] = await api.download(url, parse=_object)
            return [results[i] for i in range(len(answer.downloadUrls))]
        except LinkExpired:
            refreshes += 1
            if refreshes > settings.link_refreshes:
                raise
            log.info("%s: a download link had expired; asking the job for fresh ones", job_path)


def _first_wait(settings: WorkforceSettings) -> float:
    return min(FIRST_WAIT_S, settings.search_poll_s)
