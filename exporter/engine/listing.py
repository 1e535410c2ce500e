"""One pager for the three paging styles of entity listings.

    pageNumber with pageCount   (users, queues, wrap-up codes, ...)
    nextUri only                (queue members: no pageCount, no total)
    an ``after`` cursor         (teams: carried by nextUri)

The pager follows ``nextUri`` whenever the response has one, else asks the next pageNumber while
it is below the response's ``pageCount``, and stops at an empty page. What the response reports
(its pageCount, its pageSize) is authoritative: a server may use a smaller page than asked.

A page is asked at the listing's ``PageSize``. A 400 that refuses it and names the allowed
range (``refused_page_size``) lowers it, for the rest of the run, and the page is asked again.
Any other 400 on a page asked through a cursor raises ``CursorRejected``: the caller walks
again from the first page. A nextUri naming a request this walk already made is a loop, which
fails at once instead of running to ``MOST_PAGES``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import msgspec

from exporter.client.http import ApiClient, Params
from exporter.errors import ApiError

log = logging.getLogger(__name__)
API_PREFIX = "/api/v2/"
# A walk this long is a server that never ends its pages.
MOST_PAGES = 100_000
CURSOR_PARAMS = ("after", "cursor")
Query = list[tuple[str, str]]

# What a refusal of the page size looks like: it names the parameter, then the range allowed
# ("Allowable values are: 1-100", "must be between 1 and 100", "the maximum is 100").
_NAMES_PAGE_SIZE = re.compile(r"page\s*size", re.IGNORECASE)
_RANGE = re.compile(r"\b\d+\s*(?:-|to|and|\.\.)\s*(\d+)\b", re.IGNORECASE)
_AT_MOST = re.compile(
    r"(?:at most|exceed|less than or equal to|no more than|max(?:imum)?|up to|<=)\D{0,24}?(\d+)",
    re.IGNORECASE,
)


class EntityPage(msgspec.Struct):
    """An ``*EntityListing``: entities plus what is known of the paging."""

    entities: list[msgspec.Raw] = []
    total: int | None = None
    pageCount: int | None = None
    pageNumber: int | None = None
    nextUri: str | None = None


class CursorRejected(ApiError):
    """The service refused a page asked by the cursor it sent: walk the listing again."""


@dataclass(slots=True)
class PageSize:
    """The page size a listing is asked for: its declared largest, lowered for the rest of
    the run when the service refuses it naming a smaller one."""

    value: int


_decode = msgspec.json.Decoder(EntityPage).decode


def _parse(body: bytes) -> tuple[EntityPage, bool]:
    return _decode(body), b"\n" not in body


async def pages(
    api: ApiClient,
    path: str,
    params: Params,
    *,
    size: PageSize,
    numbered: bool,
    priority: float,
) -> AsyncIterator[tuple[EntityPage, bool]]:
    """Yield (page, single_line) of one listing, in order, to its end; ``numbered``: it pages
    by pageNumber (else by a cursor in nextUri, and no pageNumber is sent)."""
    base = _pairs(params)
    number, query = 1, _numbered(base, size, 1) if numbered else [_size(size), *base]
    asked: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for _ in range(MOST_PAGES):
        asked.add(_request_key(path, query))
        page, single_line = await _page(api, path, query, size, priority)
        yield page, single_line
        if not page.entities:
            return
        if page.nextUri:
            next_path, query = _follow(page.nextUri, path)
            if _request_key(next_path, query) in asked:
                raise ApiError(
                    f"The listing {path} sent a nextUri it had sent before ({page.nextUri}): "
                    "its pages go round in a circle, so no snapshot of it can end; the previous "
                    "snapshot is kept. Run again later, and report it to Genesys if it persists."
                )
            path = next_path
        elif page.pageCount is not None and (page.pageNumber or number) < page.pageCount:
            number = (page.pageNumber or number) + 1
            query = _numbered(base, size, number)
        else:
            return
    raise ApiError(f"The listing {path} did not end after {MOST_PAGES} pages.")


async def _page(
    api: ApiClient, path: str, query: Query, size: PageSize, priority: float
) -> tuple[EntityPage, bool]:
    """One page; asked again at the largest size allowed when its size is refused."""
    while True:
        try:
            return await api.request("GET", path, params=query, parse=_parse, priority=priority)
        except ApiError as exc:
            if exc.status != 400:
                raise
            asked = _asked_size(query)
            allowed = refused_page_size(exc.server_message, exc.message_params)
            if allowed is None or asked is None or allowed >= asked:
                if any(name in CURSOR_PARAMS for name, _ in query):
                    raise CursorRejected(str(exc), status=400, url=exc.url) from exc
                raise
            log.info("%s refused pages of %d; asking %d, the most it allows, for the rest of "
                     "the run", path, asked, allowed)  # fmt: skip
            size.value = min(size.value, allowed)
            query = [(k, str(allowed) if k == "pageSize" else v) for k, v in query]


def refused_page_size(message: str, params: Mapping[str, str]) -> int | None:
    """The largest page size a 400's message or messageParams allow, when they are about the
    page size and name a limit; None otherwise."""
    texts = [message, *params.values()]
    if not any(_NAMES_PAGE_SIZE.search(text) for text in texts):
        return None
    limits = [int(m.group(1)) for text in texts for m in _RANGE.finditer(text)]
    limits += [int(m.group(1)) for text in texts for m in _AT_MOST.finditer(text)]
    limits = [limit for limit in limits if limit >= 1]
    return min(limits) if limits else None


async def first_page(api: ApiClient, path: str, params: Params, *, numbered: bool) -> EntityPage:
    """A one-entity first page: its ``total`` is the listing's size (when it reports one)."""
    query = [("pageSize", "1"), *_pairs(params), *([("pageNumber", "1")] if numbered else [])]
    page, _ = await api.request("GET", path, params=query, parse=_parse)
    return page


def _follow(next_uri: str, current: str) -> tuple[str, Query]:
    """The path and query of a ``nextUri`` (relative, as Genesys sends it, or absolute)."""
    parts = urlsplit(next_uri)
    if not parts.path.startswith(API_PREFIX):
        raise ApiError(f"The listing {current} sent a nextUri outside the API: {next_uri!r}.")
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def _request_key(path: str, query: Query) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A request, whatever the order of its parameters."""
    return path, tuple(sorted(query))


def _size(size: PageSize) -> tuple[str, str]:
    return ("pageSize", str(size.value))


def _numbered(base: Query, size: PageSize, number: int) -> Query:
    return [_size(size), *base, ("pageNumber", str(number))]


def _asked_size(query: Query) -> int | None:
    text = dict(query).get("pageSize", "")
    return int(text) if text.isdigit() else None


def _pairs(params: Params) -> Query:
    return list(params.items()) if isinstance(params, Mapping) else list(params)
