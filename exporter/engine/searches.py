"""A search that answers in one of three shapes: its result inline, a pre-signed download link
to it, or later (genesys-datasets.md §G: ``{status, operationId, result | downloadUrl}``).

Whatever the shape, the caller gets the same decoded result. A link is fetched without the
bearer token and outside the API's rate budget (``ApiClient.download``); one that has expired
(403) is replaced by asking the search again, ``link_refreshes`` times at most. An answer
still Processing is followed by asking the same search again every ``search_poll_s``, for
``search_timeout_s`` at most: the service announces completion on a notification topic and
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
    refreshes = 0
    while True:
        answer = await api.request("POST", path, json=body, parse=_decode, priority=PRIORITY)
        if answer.status == "Processing":
            if clock() + settings.search_poll_s > deadline:
                raise SearchFailed(_late(path, settings, answer.operationId), url=path)
            await sleep(settings.search_poll_s)
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
