"""One pager for the three paging styles of entity listings.

    pageNumber with pageCount   (users, queues, wrap-up codes, ...)
    nextUri only                (queue members: no pageCount, no total)
    an ``after`` cursor         (teams: carried by nextUri)

The pager follows ``nextUri`` whenever the response has one, else asks the next pageNumber while
it is below the response's ``pageCount``, and stops at an empty page. What the response reports
(its pageCount, its pageSize) is authoritative: a server may use a smaller page than asked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import parse_qsl, urlsplit

import msgspec

from exporter.client.http import ApiClient, Params
from exporter.errors import ApiError

API_PREFIX = "/api/v2/"
# A walk this long is a server that never ends its pages (a nextUri pointing back, say).
MOST_PAGES = 100_000


class EntityPage(msgspec.Struct):
    """An ``*EntityListing``: entities plus what is known of the paging."""

    entities: list[msgspec.Raw] = []
    total: int | None = None
    pageCount: int | None = None
    pageNumber: int | None = None
    nextUri: str | None = None


_decode = msgspec.json.Decoder(EntityPage).decode


def _parse(body: bytes) -> tuple[EntityPage, bool]:
    return _decode(body), b"\n" not in body


async def pages(
    api: ApiClient,
    path: str,
    params: Params,
    *,
    page_size: int,
    numbered: bool,
    priority: float,
) -> AsyncIterator[tuple[EntityPage, bool]]:
    """Yield (page, single_line) of one listing, in order, to its end; ``numbered``: it pages
    by pageNumber (else by a cursor in nextUri, and no pageNumber is sent)."""
    base = [("pageSize", str(page_size)), *_pairs(params)]
    number, query = 1, [*base, ("pageNumber", "1")] if numbered else base
    for _ in range(MOST_PAGES):
        page, single_line = await api.request(
            "GET", path, params=query, parse=_parse, priority=priority
        )
        yield page, single_line
        if not page.entities:
            return
        if page.nextUri:
            path, query = _follow(page.nextUri, path)
        elif page.pageCount is not None and (page.pageNumber or number) < page.pageCount:
            number = (page.pageNumber or number) + 1
            query = [*base, ("pageNumber", str(number))]
        else:
            return
    raise ApiError(f"The listing {path} did not end after {MOST_PAGES} pages.")


async def first_page(api: ApiClient, path: str, params: Params, *, numbered: bool) -> EntityPage:
    """A one-entity first page: its ``total`` is the listing's size (when it reports one)."""
    query = [("pageSize", "1"), *_pairs(params), *([("pageNumber", "1")] if numbered else [])]
    page, _ = await api.request("GET", path, params=query, parse=_parse)
    return page


def _follow(next_uri: str, current: str) -> tuple[str, list[tuple[str, str]]]:
    """The path and query of a ``nextUri`` (relative, as Genesys sends it, or absolute)."""
    parts = urlsplit(next_uri)
    if not parts.path.startswith(API_PREFIX):
        raise ApiError(f"The listing {current} sent a nextUri outside the API: {next_uri!r}.")
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)
