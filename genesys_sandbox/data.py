"""The sandbox's conversations: built once from a seed, held as ready-to-serve JSON bytes.

`Dataset.build(spec)` draws the org's entities and its agents' shifts, then N conversation
start instants over the range (busier in the org's daytime, quieter at weekends), generates one
nested AnalyticsConversation per start (see `recordgen`), adds the evaluations and surveys of
the finished ones (see `quality`), and serialises each once. The entities, the schedule, the
log of who handled what when and the quality data stay with the dataset: the listing routes
serve the entities, the quality routes the evaluations, surveys and forms, and the agents'
status history is derived from the schedule and the log.
The server joins `job_record(i)` bytes into pages, so it never touches a dict; the index
methods implement the two matching rules of genesys-api.md §5.1-5.2.
"""

from __future__ import annotations

import gc
import random
import re
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import orjson

from genesys_sandbox.entities import Entities, build_entities, with_flow_entities
from genesys_sandbox.orgdata import build_org, make_formatter
from genesys_sandbox.quality import Quality, QualityDraw
from genesys_sandbox.recordgen import HandlingLog, RecordGenerator, truncate_ongoing
from genesys_sandbox.schedule import Schedule
from genesys_sandbox.statuses import StatusHistory

DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Relative traffic per UTC hour for an org working US hours, so midnight UTC is still busy.
_HOURLY = (6, 4, 2, 1, 1, 1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 12, 12, 11, 11, 10, 10, 9, 8, 7)
_WEEKEND = 0.45
# Participant attributes are always the participant's last key and their values never contain
# "}" (recordgen guarantees both), and orjson escapes every quote inside strings, so this matches
# exactly the attribute objects and nothing else.
_ATTRIBUTES = re.compile(rb',"attributes":\{[^}]*\}')


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of `moment`; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """What to generate: `conversations` starting in [start, start + days)."""

    conversations: int = 10_000
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)  # first instant of the data range
    days: int = 7  # range = [start, start + days)
    seed: int = 42
    ongoing_tail_minutes: int = 30  # conversations starting in the last N minutes of the range
    # have no conversationEnd (still ongoing)
    leavers_stay_offline: bool = True  # a leaver's last status never ends (statuses.py)
    evaluated_share: float = 0.08  # of the finished conversations an agent handled
    surveyed_share: float = 0.05  # of the finished inbound ones an agent handled

    def __post_init__(self) -> None:
        if self.conversations < 0:
            raise ValueError(
                f"The dataset needs 0 or more conversations, not {self.conversations}."
            )
        if self.days < 1:
            raise ValueError(f"The dataset must span at least 1 day, not {self.days}.")
        if self.start.tzinfo is None:
            raise ValueError(
                f"The dataset start {self.start.isoformat()} has no time zone; give it in UTC."
            )
        if not 0 <= self.ongoing_tail_minutes <= self.days * 1440:
            raise ValueError(
                f"ongoing_tail_minutes must be between 0 and the range ({self.days * 1440} "
                f"minutes), not {self.ongoing_tail_minutes}."
            )
        for name in ("evaluated_share", "surveyed_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"The dataset's {name} must be within [0, 1].")

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        """First instant after the range."""
        return self.start_ms + self.days * DAY_MS


class Dataset:
    """N conversations sorted by conversationStart, with their records precomputed as bytes."""

    __slots__ = ("_index", "_max_duration_ms", "_ongoing", "_records", "_statuses", "ends_ms",
                 "entities", "handling", "ids", "quality", "schedule", "spec",
                 "starts_ms")  # fmt: skip

    def __init__(
        self,
        spec: DatasetSpec,
        ids: list[str],
        starts_ms: list[int],
        ends_ms: list[int | None],
        records: list[bytes],
        org: tuple[Entities, Schedule, HandlingLog, Quality],
    ) -> None:
        self.spec = spec
        self.entities, self.schedule, self.handling, self.quality = org
        self.ids = ids  # conversationId, index-aligned, sorted by conversationStart
        self.starts_ms = starts_ms  # epoch ms UTC, ascending
        self.ends_ms = ends_ms  # None = still ongoing
        self._records = records
        # Overlap lookups only scan back as far as the longest finished conversation; ongoing
        # ones (unbounded lifetime) are kept aside.
        pairs = zip(starts_ms, ends_ms, strict=True)
        self._max_duration_ms = max((end - s for s, end in pairs if end is not None), default=0)
        self._ongoing = [i for i, end in enumerate(ends_ms) if end is None]
        self._statuses: StatusHistory | None = None
        self._index: dict[str, int] | None = None

    @classmethod
    def build(cls, spec: DatasetSpec) -> Dataset:
        """Generate the dataset; the same spec always gives the same bytes."""
        with _gc_paused():
            return cls._build(spec)

    @classmethod
    def _build(cls, spec: DatasetSpec) -> Dataset:
        rng = random.Random(spec.seed)
        entities = build_entities(rng, (spec.start_ms, spec.end_ms))
        schedule = Schedule(entities, (spec.start_ms, spec.end_ms), rng)
        fmt = make_formatter()
        org = build_org(rng, entities)
        generator = RecordGenerator(rng, org, fmt, schedule)
        handling = generator.handling
        # Streams of their own: the records' other fields are drawn as without them.
        entities = with_flow_entities(entities, random.Random(f"org-{spec.seed}"), org.outcomes)
        quality = QualityDraw((spec.evaluated_share, spec.surveyed_share), spec.seed, entities,
                              (spec.start_ms, spec.end_ms), fmt)  # fmt: skip
        starts = _draw_starts(rng, spec)
        tail_from, range_end = spec.end_ms - spec.ongoing_tail_minutes * 60_000, spec.end_ms
        ids: list[str] = []
        records: list[bytes] = []
        ends: list[int | None] = []
        dumps, conversation = orjson.dumps, generator.conversation
        for start in starts:
            logged = len(handling)
            record, end = conversation(start)
            ids.append(record["conversationId"])
            if start >= tail_from:
                # Snapshot the conversation at a random moment before it ends and before the
                # range ends, as the API would show it while it is still going on.
                cut = start + int(rng.random() * (min(end, range_end) - start))
                truncate_ongoing(record, fmt(cut))
                handling.drop_started_after(logged, cut)
                ends.append(None)
            else:
                ends.append(end)
                quality.add(record, len(ids) - 1, (start, end))
            # orjson over-allocates its output and shrinks it in place, leaving a hole next to
            # every kept record (9 KB resident per 5 KB record); an exact-size copy avoids that.
            records.append(bytes(memoryview(dumps(record))))
        return cls(spec, ids, starts, ends, records,
                   (entities, schedule, handling, quality.result()))  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)

    def job_record(self, i: int) -> bytes:
        """Compact JSON of conversation `i` as the jobs API returns it (with attributes)."""
        return self._records[i]

    def query_record(self, i: int) -> bytes:
        """Conversation `i` as the sync query returns it: the same JSON without attributes."""
        return without_attributes(self._records[i])

    def index_of(self, conversation_id: str) -> int | None:
        """The index of a conversation id (built on first use: only id filters need it)."""
        if self._index is None:
            self._index = {cid: i for i, cid in enumerate(self.ids)}
        return self._index.get(conversation_id)

    def index_range_starting_in(self, start_ms: int, end_ms: int) -> range:
        """Indices of conversations whose conversationStart is in [start_ms, end_ms)."""
        lo = bisect_left(self.starts_ms, start_ms)
        hi = bisect_left(self.starts_ms, end_ms, lo) if end_ms > start_ms else lo
        return range(lo, hi)

    def indices_starting_on_days_touched(self, start_ms: int, end_ms: int) -> range:
        """Sync-query rule: conversations that started on any UTC day [start, end) touches."""
        if end_ms <= start_ms:
            return self.index_range_starting_in(start_ms, start_ms)
        first_day = start_ms // DAY_MS * DAY_MS
        after_last_day = -(-end_ms // DAY_MS) * DAY_MS
        return self.index_range_starting_in(first_day, after_last_day)

    def indices_overlapping(self, start_ms: int, end_ms: int) -> list[int]:
        """Job rule: lifetime [start, end or forever) overlaps [start_ms, end_ms); ascending."""
        if end_ms <= start_ms:
            return []
        starts, ends = self.starts_ms, self.ends_ms
        lo = bisect_left(starts, start_ms - self._max_duration_ms)
        inside = bisect_left(starts, start_ms, lo)
        hi = bisect_left(starts, end_ms, inside)
        # Before `lo` only ongoing conversations can still be alive at start_ms.
        alive_long = self._ongoing[: bisect_left(self._ongoing, lo)]
        alive = [i for i in range(lo, inside) if (end := ends[i]) is None or end > start_ms]
        return alive_long + alive + list(range(inside, hi))

    @property
    def statuses(self) -> StatusHistory:
        """The agents' status history, built on first use (conversation-only runs skip it)."""
        if self._statuses is None:
            log = self.handling
            handled: list[list[tuple[int, int]]] = [[] for _ in self.entities.agents]
            for agent, start, end in zip(log.agents, log.starts, log.ends, strict=True):
                handled[agent].append((start, end))
            self._statuses = StatusHistory(
                self.entities, self.schedule, handled, self.spec.end_ms, make_formatter(),
                leavers_stay_offline=self.spec.leavers_stay_offline,
            )  # fmt: skip
        return self._statuses

    def ids_starting_in(self, start: datetime, end: datetime) -> set[str]:
        """Ground truth: ids of conversations starting in [start, end) (naive = UTC)."""
        found = self.index_range_starting_in(to_ms(start), to_ms(end))
        return set(self.ids[found.start : found.stop])

    def evaluation_ids_starting_in(self, start: datetime, end: datetime) -> set[str]:
        """Ground truth: ids of the evaluations of conversations starting in [start, end)."""
        found = self.index_range_starting_in(to_ms(start), to_ms(end))
        return {e.id for e in self.quality.evaluations if e.conversation in found}

    def survey_ids_starting_in(self, start: datetime, end: datetime) -> set[str]:
        """Ground truth: ids of the surveys of conversations starting in [start, end)."""
        found = self.index_range_starting_in(to_ms(start), to_ms(end))
        return {s.id for s in self.quality.surveys if s.conversation in found}


def without_attributes(record: bytes) -> bytes:
    """A job record as the sync query returns it: participant attributes left out."""
    return _ATTRIBUTES.sub(b"", record)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: its full passes re-walk the growing result lists, which made a
    1,000,000-conversation build quadratic. The records are acyclic, so refcounting frees
    every temporary anyway."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _draw_starts(rng: random.Random, spec: DatasetSpec) -> list[int]:
    """Sorted start instants: an hour slot by traffic weight, then uniform within the hour."""
    base = spec.start_ms
    weights = []
    for hour in range(spec.days * 24):
        slot = base + hour * _HOUR_MS
        weekend = datetime.fromtimestamp(slot / 1000, UTC).weekday() >= 5
        weights.append(_HOURLY[slot // _HOUR_MS % 24] * (_WEEKEND if weekend else 1.0))
    slots = rng.choices(range(len(weights)), cum_weights=list(accumulate(weights)),
                        k=spec.conversations)  # fmt: skip
    r = rng.random
    return sorted([base + slot * _HOUR_MS + int(r() * _HOUR_MS) for slot in slots])
