"""The description of a dataset: everything the engine needs to know of one, and nothing else.

Four kinds. A ``Windowed`` dataset is exported window by window (UTC days) from an analytics
details family: async jobs for the history, the sync query for the tail past the watermark.
Its ``router`` sorts a results page into the windows' files, and keeps the records still going
on when their window was written up to date until they close. A ``Listing`` is a configuration
entity list with no modified-since filter, so it is taken whole, as a snapshot, each run. A
``ById`` dataset cannot be listed by date at all: its records are fetched one by one, by the
ids a windowed dataset's records name, into windows of the same names. A ``UnitDays``
dataset (workforce schedules) is searched per unit and per day of the unit's own calendar, in
its time zone, each date one window.

A new dataset is one such description, plus (for a windowed one) a router; the engine, the
HTTP client, the writer and the sinks never name a dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import msgspec

from exporter.datasets.records import Records, Selection, WindowBounds
from exporter.datasets.seen import SeenKeys
from exporter.store.manifest import Opened
from exporter.windows import Window

QUERY_MAX_SPAN = timedelta(days=7)  # the documented sync-query limit (genesys-api.md §5.1)


@dataclass(frozen=True, slots=True)
class Fresh:
    """A refreshed record: its newest bytes (one line), and whether it is still going on."""

    body: bytes
    still_open: bool


class Router(Protocol):
    """How one windowed dataset's records go into window files, and how the records still
    going on when their window was written are refreshed in it until they close."""

    def route(
        self, raws: list[msgspec.Raw], bounds: WindowBounds, seen: SeenKeys, *, single_line: bool
    ) -> Selection:
        """A page's records sorted into the windows' lines, repeats (by ``seen``) dropped, and
        the new records still going on."""
        ...

    def keys(self, line: bytes) -> Iterable[tuple[bytes, bytes]]:
        """The (key, time) pairs of a line already written (to resume a batch's ``seen``)."""
        ...

    def opened(self, line: bytes) -> Iterable[Opened]:
        """The records of a line already written that are still going on (to resume)."""
        ...

    def finish(self, lines: Iterator[bytes]) -> Records | None:
        """A window's final lines from those written, or None when they are final already
        (``lines`` is then never read)."""
        ...

    def time_ms(self, raw: msgspec.Raw) -> int:
        """A record's time, for pacing: how far a job has read through its interval."""
        ...

    def fresh(
        self, raws: list[msgspec.Raw], wanted: Container[str], *, single_line: bool
    ) -> dict[str, Fresh]:
        """The newest versions, by key, of the ``wanted`` records in a refresh's results page
        (the rest of the page is not this refresh's business)."""
        ...

    def merge(self, line: bytes, fresh: Mapping[str, bytes]) -> bytes:
        """``line`` with the records ``fresh`` holds in place of their older versions."""
        ...


class ResultsPage(msgspec.Struct):
    """``GET .../jobs/{id}/results``: the cursor is absent on the last page."""

    records: list[msgspec.Raw] = []
    cursor: str | None = None
    dataAvailabilityDate: str | None = None


class QueryPage(msgspec.Struct):
    """``POST .../query``: no records key past the last page."""

    records: list[msgspec.Raw] = []
    totalHits: int = 0


@dataclass(frozen=True, slots=True)
class JobsApi:
    """One analytics jobs family: ``jobs`` (submit; ``/{id}``, ``/{id}/results``, and
    ``/availability`` unless ``availability`` names another watermark) and ``query``, whose
    pages list records under ``records``.

    ``query_paged``: the sync query pages by number (details); False: one answer per span
    (aggregates, whose query takes no paging). ``page_size_in_body``: a job's page size is
    part of its body (aggregates), not a parameter of its results requests. ``options``: the
    config section whose request options (``Settings.request_options``) complete its job and
    query bodies; "" for none."""

    jobs: str
    query: str
    records: str
    job_body: Callable[[Window], dict[str, Any]]
    query_body: Callable[[Window, int, int], dict[str, Any]]  # interval, page size, number
    # A job over an interval kept to some records' subjects (ids): the refresh of open ones;
    # None for a family whose records never stay open.
    refresh_body: Callable[[Window, Sequence[str]], dict[str, Any]] | None
    query_max_span: timedelta = QUERY_MAX_SPAN
    availability: str = ""
    query_paged: bool = True
    page_size_in_body: bool = False
    options: str = ""
    _results: Any = field(init=False, repr=False, compare=False)
    _query: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rename = {"records": self.records}
        results = msgspec.defstruct("Results", _fields(ResultsPage), rename=rename)
        query = msgspec.defstruct("Query", _fields(QueryPage), rename=rename)
        object.__setattr__(self, "_results", msgspec.json.Decoder(results))
        object.__setattr__(self, "_query", msgspec.json.Decoder(query))

    @property
    def availability_path(self) -> str:
        """Where the family's watermark (``dataAvailabilityDate``) is read."""
        return self.availability or f"{self.jobs}/availability"

    def decode_results(self, body: bytes) -> ResultsPage:
        """A results page; ValueError (msgspec.DecodeError) when the body is not one."""
        page = self._results.decode(body)
        return ResultsPage(page.records, page.cursor, page.dataAvailabilityDate)

    def decode_query(self, body: bytes) -> QueryPage:
        """A sync-query page; ValueError (msgspec.DecodeError) when the body is not one."""
        page = self._query.decode(body)
        return QueryPage(page.records, page.totalHits)


@dataclass(frozen=True, slots=True)
class Windowed:
    """A dataset exported by UTC windows through an analytics details family."""

    name: str
    summary: str
    permission: str  # what a role needs; a 403 names it
    api: JobsApi
    router: Router


@dataclass(frozen=True, slots=True)
class Listing:
    """A configuration entity list, taken whole as a snapshot.

    ``parent``: the listing is per entity of another (queue members per queue); ``path`` then
    holds ``{id}`` and every line gets the parent's id first, as ``parent_key``.
    ``offset_paging``: pages are by number, so entities created or deleted during a walk
    shift them (walks are repeated until one adds nothing); cursor paging does not drift.
    ``page_size``: what pages are asked for, the documented largest where there is one (a
    refusal naming a smaller one lowers it for the run). ``by_id_params``: the queries of
    ``GET <path>/{id}`` (or ``by_id_path``, its ``{id}`` the entity's), tried in turn until one
    answers (an entity of the previous snapshot the walks missed is looked up so); () when the
    API has no such endpoint. ``read_each``: the listing names its entities only, so each one
    listed is read by id (the first of ``by_id_params``) and written as that read answers
    (business units list no settings; ``?expand=settings`` on one unit does).
    """

    name: str
    summary: str
    path: str
    permission: str  # "" when the API declares none
    page_size: int = 500
    params: tuple[tuple[str, str], ...] = ()
    offset_paging: bool = True
    parent: Listing | None = None
    parent_key: str = ""
    by_id_params: tuple[tuple[tuple[str, str], ...], ...] = ((),)
    by_id_path: str = ""  # with {id}; "" for <path>/{id}
    read_each: bool = False

    def __post_init__(self) -> None:
        if self.read_each and not self.by_id_params:
            raise ValueError(f"{self.name}: read_each needs a way to read one entity")

    def entity_path(self, entity_id: str) -> str:
        """``GET`` of one entity (its id already quoted for a path)."""
        if self.by_id_path:
            return self.by_id_path.replace("{id}", entity_id)
        return f"{self.path}/{entity_id}"

    @property
    def endpoint(self) -> str:
        if self.read_each:
            query = "&".join(f"{k}={v}" for k, v in self.by_id_params[0])
            each = self.entity_path("{id}") + (f"?{query}" if query else "")
            return f"GET {self.path}, then GET {each} for each"
        return f"GET {self.path}"


@dataclass(frozen=True, slots=True)
class Ref:
    """A record a source line names: its key (unique in the dataset), and the values that
    fill the placeholders of the dataset's ``path``."""

    key: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ById:
    """Records read one at a time (``GET path``), by the ids the records of ``source`` name.

    Each window of ``source`` gives this dataset's window of the same name, holding every
    record its lines name (``refs``), as the API sends it when read."""

    name: str
    summary: str
    permission: str
    source: Windowed
    path: str  # with {placeholders} a Ref fills
    refs: Callable[[bytes], Iterable[Ref]]

    @property
    def endpoint(self) -> str:
        return f"GET {self.path} (by the ids in {self.source.name})"


@dataclass(frozen=True, slots=True)
class UnitDay:
    """One day of one unit's own calendar: the date, and its bounds in UTC, [start, end)
    (23 or 25 hours long across a DST change of the unit's time zone)."""

    unit_id: str
    time_zone: str
    date: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class UnitDays:
    """Records searched per unit and per day of the unit's own calendar (its time zone), by
    ``POST path`` (``{id}`` the unit) answered inline, by a download link or later. Each date
    is one window and one file holding every unit's records of that local date.

    ``units``: the listing of the units, read each (their time zones come with them).
    ``body``: the search of one unit-day. ``lines``: one unit-day's lines from a search's
    result (decoded), each record once, sorted."""

    name: str
    summary: str
    permission: str
    units: Listing
    path: str
    time_zone: Callable[[dict[str, Any]], str]  # a unit, as read, -> its Olson time zone
    body: Callable[[UnitDay], dict[str, Any]]
    lines: Callable[[dict[str, Any], UnitDay], list[bytes]]
    # The parent's (as read), for a unit listed per parent whose own is "".
    parent_time_zone: Callable[[dict[str, Any]], str] | None = None

    @property
    def endpoint(self) -> str:
        return f"POST {self.path} (each of {self.units.name}, each local day)"


@dataclass(frozen=True, slots=True)
class BulkUnitDays:
    """Records asked for several units and days at once: ``POST path`` starts a job over
    items (one per unit of a time zone, ``span_days`` days at most), ``GET job_path`` (``{id}``
    the job) until it is Complete with one download link per item. Each date is one window
    and one file holding every unit's records of that local date, as with ``UnitDays``.

    ``body``: the job of units sharing a time zone over [first day's start, last day's end).
    ``lines``: one unit-day's lines from its item's result (decoded), each record once,
    sorted, independent of how the days were grouped into jobs."""

    name: str
    summary: str
    permission: str
    units: Listing
    path: str
    job_path: str
    span_days: int
    time_zone: Callable[[dict[str, Any]], str]  # "" when the unit names none of its own
    body: Callable[[str, Sequence[tuple[str, UnitDay, UnitDay]]], dict[str, Any]]
    lines: Callable[[dict[str, Any], UnitDay], list[bytes]]
    parent_time_zone: Callable[[dict[str, Any]], str] | None = None

    @property
    def endpoint(self) -> str:
        return f"POST {self.path}, GET {self.job_path} (each of {self.units.name}, by local day)"


Dataset = Windowed | Listing | ById | UnitDays | BulkUnitDays


def denied_message(dataset: Dataset, reason: object) -> str:
    """One line for a dataset the OAuth client may not read: what it lacks, and the fix."""
    needs = (
        f"a role with {dataset.permission}"
        if dataset.permission
        else "a role that can read it (the API declares no permission: check the role's divisions)"
    )
    return (
        f"{dataset.name}: the OAuth client may not read it ({reason}); give the OAuth client "
        f"{needs} (Admin > Roles), then run again."
    )


def _fields(struct: type[msgspec.Struct]) -> list[tuple[str, Any, Any]]:
    """The fields of ``struct`` in the form ``defstruct`` takes, defaults kept."""
    fields = []
    for info in msgspec.structs.fields(struct):
        default = info.default
        if info.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(default_factory=info.default_factory)
        fields.append((info.name, info.type, default))
    return fields
