"""What a snapshot checks against the previous one: the entities it had that the walks missed.

Paging by number can miss an entity that existed the whole time (drift shifts the pages under
a walk), and a service can answer a page with nothing at all. The previous snapshot of the
dataset (its newest complete or provisional one) says what existed then, so each entity it
had that the walks did not see is looked up by id (``GET <path>/{id}``): 200 adds it, as the
API sent it; 404 means it is gone.

The cost is bounded. When a walk lost more than ``LOOKUPS_MOST`` entities, or a tenth of the
previous snapshot, a random sample (``SAMPLE`` ids) is looked up first. When it says the walk
lost more entities that still exist than lookups should fetch (``LOOKUPS_MOST``, or half the
previous snapshot), the walk is broken, not drifting (an empty answer, say): the caller walks
again. A lost set the sample finds gone but too large to look up whole stays unchecked: the
snapshot cannot promise it holds every entity, so it is provisional. An entity seen by another
walk, or found by an earlier lookup, exists without being asked again.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Set
from dataclasses import dataclass
from urllib.parse import quote

import msgspec
import orjson

from exporter.client.http import ApiClient
from exporter.datasets.base import Listing
from exporter.engine.ledger import Ledger
from exporter.errors import ApiError, OutputError
from exporter.store.jsonl import read_records

log = logging.getLogger(__name__)
LOOKUPS_MOST = 200  # lookups a snapshot makes without sampling first
SAMPLE = 20
_BUILDABLE = ("complete", "provisional")


class Check(enum.Enum):
    """How the entities the walks missed were accounted for."""

    CHECKED = "checked"  # each one looked up: added, or found gone
    UNCHECKED = "unchecked"  # a sample found them gone; too many to look up every one
    BROKEN = "broken"  # the walks lost entities that still exist: walk again


@dataclass(frozen=True, slots=True)
class LookupPlan:
    """Which missing ids to look up first, and which once those say the walks are sound."""

    first: list[bytes]
    rest: list[bytes]
    sampled: bool  # ``first`` is a sample: judge the walks by it before looking up ``rest``


def plan(lost: Set[bytes], previous: int, rng: random.Random) -> LookupPlan:
    """Look up every id a walk lost, or a random sample first when they are many."""
    ordered = sorted(lost)
    if len(ordered) <= LOOKUPS_MOST and len(ordered) * 10 <= previous:
        return LookupPlan(ordered, [], sampled=False)
    first = rng.sample(ordered, min(SAMPLE, len(ordered)))
    chosen = set(first)
    return LookupPlan(first, [key for key in ordered if key not in chosen], sampled=True)


def judge(plan: LookupPlan, found: int, lost: int, previous: int, rest: int) -> Check:
    """What the first lookups say (``found`` of ``plan.first`` exist, of ``lost`` entities
    the walk did not see): the walk lost too many that still exist (BROKEN); or the ``rest``
    to look up are too many (UNCHECKED); or CHECKED, once they are looked up."""
    existing = found * lost / len(plan.first) if plan.first else 0
    if plan.sampled and existing > min(LOOKUPS_MOST, previous / 2):
        return Check.BROKEN
    return Check.UNCHECKED if rest > LOOKUPS_MOST else Check.CHECKED


async def look_up(api: ApiClient, dataset: Listing, key: bytes, priority: float) -> bytes | None:
    """The entity as ``GET <path>/{id}`` sends it (on one line), or None when it is gone
    (404 for each of the listing's ways of asking)."""
    return await read_one(api, dataset, key.decode(), dataset.by_id_params, priority)


async def read_one(
    api: ApiClient,
    dataset: Listing,
    entity_id: str,
    queries: tuple[tuple[tuple[str, str], ...], ...],
    priority: float,
) -> bytes | None:
    """The entity as its GET-by-id sends it (on one line), asked with each of ``queries`` in
    turn until one answers; None when each is 404 (it is gone)."""
    path = dataset.entity_path(quote(entity_id, safe=""))
    for params in queries:
        try:
            return await api.request("GET", path, params=params, parse=_one_line,
                                     priority=priority)  # fmt: skip
        except ApiError as exc:
            if exc.status != 404:
                raise
    return None


class _Entity(msgspec.Struct):
    id: str


def _one_line(body: bytes) -> bytes:
    """The body, checked to be one entity (else ValueError: retried as a cut-short body)."""
    msgspec.json.decode(body, type=_Entity)
    return body if b"\n" not in body else orjson.dumps(orjson.loads(body))


def previous_keys(ledger: Ledger, dataset: Listing) -> frozenset[bytes] | None:
    """The keys (ids; ``parent/id`` for a per-parent listing) of the dataset's newest complete
    or provisional snapshot; None when there is none, or it cannot be read (then said)."""
    records = [r for r in ledger.manifest.records(dataset.name)
               if r.status in _BUILDABLE and r.file]  # fmt: skip
    if not records or records[-1].file is None:
        return None
    path = ledger.manifest.out_dir / records[-1].file
    try:
        return frozenset(_key(orjson.loads(line), dataset.parent_key)
                         for line in read_records(path))  # fmt: skip
    except (OSError, OutputError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        log.warning("%s: the previous snapshot %s cannot be read (%s); this one is not checked "
                    "against it", dataset.name, path, exc)  # fmt: skip
        return None


def _key(line: dict[str, object], parent_key: str) -> bytes:
    entity = str(line["id"])
    return (f"{line[parent_key]}/{entity}" if parent_key else entity).encode()
