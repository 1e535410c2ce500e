"""Entity listings: one collection per listing route, drift, its history, and the page envelopes.

A collection holds its entities in the listing's sort order (name, then id), and finds one by
id (the GET-by-id routes). Drift (genesys-datasets.md A): before a page is served, with
probability ``listing_drift``, one entity drift created earlier is deleted and one new entity
is created, each at a random position of the order, so a client paging by pageNumber sees
pages shift both ways (repeats and misses). Drift never deletes a base entity (one that
conversations refer to); only the ``entity-deleted`` fault does. Every creation and deletion
is kept on the sandbox clock, for ground truth.

Three paging styles, as the real endpoints page [SRC]:
- ``numbered``: pageSize/pageNumber with total, pageCount and first/self/next/previous/lastUri;
- ``next-only`` (queue members): pageSize/pageNumber with first/self/next/previousUri only;
- ``cursor`` (teams): an ``after`` cursor that nextUri carries; keyset, so drift never shifts it.
Past the last page ``entities`` is empty and there is no nextUri.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from genesys_sandbox.wire import ApiProblem


@dataclass(frozen=True, slots=True)
class Entity:
    """One listed entity: its JSON object, what ``expand=`` may add to it, and what its GET-by-id
    route answers when that is more than the listing shows (``detail``)."""

    id: str
    name: str
    body: Mapping[str, Any]
    expansions: Mapping[str, Any] = field(default_factory=dict)
    state: str = "active"  # users' state filter; other listings hold active entities only
    detail: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The listing's sort order: name (case-insensitive), then id."""
        return (self.name.casefold(), self.id)

    def json(self, expand: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        """The body, with the requested expansions it has ("best effort": others ignored)."""
        extra = {name: value for name, value in self.expansions.items() if name in expand}
        return {**self.body, **extra} if extra else self.body

    def detail_json(self, expand: frozenset[str] = frozenset()) -> Mapping[str, Any]:
        """What its GET-by-id route answers."""
        return self.json(expand) if self.detail is None else self.detail


Factory = Callable[[random.Random], Entity]  # a new entity for drift to create


class Collection:
    """One listing's entities in sort order, with drift and its history (sandbox clock)."""

    def __init__(self, base: Sequence[Entity], factory: Factory | None) -> None:
        self._entities = sorted(base, key=lambda e: e.key)
        self._keys = [e.key for e in self._entities]
        self._by_id = {e.id: e for e in self._entities}
        self._factory = factory
        self._born: dict[str, float] = {}  # drift-created id -> when
        self._died: dict[str, float] = {}  # deleted id (by drift or the fault) -> when
        self._base = frozenset(e.id for e in base)

    @property
    def entities(self) -> Sequence[Entity]:
        return self._entities

    def find(self, entity_id: str) -> Entity | None:
        return self._by_id.get(entity_id)

    @property
    def drifts(self) -> bool:
        """Whether drift creates entities here (it has a factory to make them with)."""
        return self._factory is not None

    def drift(self, rng: random.Random, now: float) -> None:
        """Delete one entity drift created earlier (if any), then create one."""
        if self._factory is None:
            return
        alive = [e for e in self._entities if e.id in self._born]
        if alive:
            self.delete(alive[int(rng.random() * len(alive))].id, now)
        self.put(self._factory(rng), now)

    def put(self, entity: Entity, now: float) -> None:
        """Add ``entity``, created at ``now``, or replace the one with its id (which keeps its
        creation instant), in the listing's order."""
        old = self._by_id.get(entity.id)
        if old is None:
            self._born[entity.id] = now
        else:
            at = self._keys.index(old.key)
            del self._entities[at], self._keys[at]
        at = bisect_right(self._keys, entity.key)
        self._entities.insert(at, entity)
        self._keys.insert(at, entity.key)
        self._by_id[entity.id] = entity

    def delete(self, entity_id: str, now: float) -> bool:
        """Delete the entity (base ones too); False when there is none by that id."""
        gone = self._by_id.pop(entity_id, None)
        if gone is None:
            return False
        at = self._keys.index(gone.key)
        del self._entities[at], self._keys[at]
        self._died[entity_id] = now
        return True

    def present_throughout(self, t0: float, t1: float) -> set[str]:
        """Ids present during all of [t0, t1]: anything created or deleted at or between the
        two instants does not count (with a clock that stands still, t0 == t1 == the walk)."""
        return {i for i in self._ever() if self._born.get(i, -math.inf) < t0
                and self._died.get(i, math.inf) > t1}  # fmt: skip

    def ever_present(self, t0: float, t1: float) -> set[str]:
        """Ids present at some instant of [t0, t1]."""
        return {i for i in self._ever() if self._born.get(i, -math.inf) <= t1
                and self._died.get(i, math.inf) >= t0}  # fmt: skip

    def _ever(self) -> set[str]:
        return set(self._base) | self._born.keys()

    def history(self) -> list[tuple[float, str, str]]:
        """(instant, "created" | "deleted", id) of every drift event and deletion, in order."""
        events = [(t, "created", i) for i, t in self._born.items()]
        events += [(t, "deleted", i) for i, t in self._died.items()]
        return sorted(events)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a listing request asks for; ``others`` are the query parameters URIs keep."""

    path: str
    size: int
    number: int = 1
    after: str | None = None
    expand: frozenset[str] = frozenset()
    others: tuple[tuple[str, str], ...] = ()

    def uri(self, **paging: Any) -> str:
        return f"{self.path}?{urlencode([*paging.items(), *self.others])}"


def numbered_page(items: Sequence[Entity], page: PageRequest, totals: bool = True) -> bytes:
    """A pageNumber page; ``totals=False`` (queue members) leaves out total, pageCount, lastUri."""
    size, number = page.size, page.number
    offset = (number - 1) * size
    chosen = items[offset : offset + size]
    body: dict[str, Any] = {
        "entities": [e.json(page.expand) for e in chosen],
        "pageSize": size,
        "pageNumber": number,
    }
    page_count = -(-len(items) // size)  # [INF] 0 for an empty listing
    if totals:
        body.update(total=len(items), pageCount=page_count)
    body["firstUri"] = page.uri(pageSize=size, pageNumber=1)
    body["selfUri"] = page.uri(pageSize=size, pageNumber=number)
    if offset + size < len(items):
        body["nextUri"] = page.uri(pageSize=size, pageNumber=number + 1)
    if number > 1:
        body["previousUri"] = page.uri(pageSize=size, pageNumber=number - 1)
    if totals:
        body["lastUri"] = page.uri(pageSize=size, pageNumber=max(1, page_count))
    return orjson.dumps(body)


def cursor_page(items: Sequence[Entity], page: PageRequest) -> bytes:
    """A keyset page after ``page.after``; nextUri carries the cursor of its last entity."""
    keys = [e.key for e in items]
    start = 0 if page.after is None else bisect_right(keys, decode_after(page.after))
    chosen = items[start : start + page.size]
    body: dict[str, Any] = {"entities": [e.json(page.expand) for e in chosen]}
    if start + page.size < len(items):
        body["nextUri"] = page.uri(pageSize=page.size, after=encode_after(chosen[-1].key))
    self_paging: dict[str, Any] = {"pageSize": page.size}
    if page.after is not None:
        self_paging["after"] = page.after
    body["selfUri"] = page.uri(**self_paging)
    return orjson.dumps(body)


def encode_after(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_after(cursor: str) -> tuple[str, str]:
    """The sort key an ``after`` cursor points past; 400 bad.request when it is not one."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise ApiProblem(400, "bad.request", "The after cursor is not valid.")
    return (key[0], key[1])
