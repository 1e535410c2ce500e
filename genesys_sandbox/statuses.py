"""Agents' presence and routing-status history, from their shifts and the legs they handled.

Presence follows the schedule: OFFLINE between shifts (nights, days off, weekends, so statuses
cross midnight and span days), ON_QUEUE on shift, BREAK, MEAL, TRAINING, ... for the stretches
off queue. An agent handling a conversation is On Queue and Interacting from the alert to the
end of wrap-up, whatever the plan said (a break starts when the wrap-up ends). Routing status
is INTERACTING then, IDLE on queue otherwise, OFF_QUEUE off it. The history ends at the data's
present (the range end): the status each agent is in then has no ``endTime``. A leaver works no
shift after leaving, and their last OFFLINE (and OFF_QUEUE) never ends: the service does not
close a removed user's presence [INF: seen in the round-three study of the real service];
``leavers_stay_offline=False`` ends them when the agent leaves instead.

Storage is modelled on the service (genesys-datasets.md §B): a status is stored once per UTC
day it touches, as rows of (user, day) holding that user's statuses touching that day. A page
lists one ``userDetails`` entry per row and removes a status an earlier row of the same page
already gave, so a user's statuses are spread over entries and pages, and a page can be
shorter than its size long before the end.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import orjson

from genesys_sandbox.entities import Entities
from genesys_sandbox.schedule import DAY_MS, Schedule, Shift

PRESENCE = "primaryPresence"
ROUTING = "routingStatus"
Interval = tuple[int, int]
Span = tuple[int, int, str]  # start, end (epoch ms), value


@dataclass(frozen=True, slots=True)
class Status:
    """One status of one agent; ``end_ms`` None while it goes on."""

    user: int  # index into the agents
    kind: str  # PRESENCE or ROUTING
    start_ms: int
    end_ms: int | None
    value: str  # systemPresence or routingStatus
    json: bytes  # as the API shows it

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        return self.start_ms < end_ms and (self.end_ms is None or self.end_ms > start_ms)


@dataclass(frozen=True, slots=True)
class Row:
    """What the service stores for one user and one UTC day: the statuses touching it."""

    user: int
    day_ms: int
    statuses: tuple[int, ...]  # indices into StatusHistory.statuses, each kind in time order


class StatusHistory:
    """Every agent's statuses, and the (user, day) rows jobs and queries read."""

    def __init__(
        self,
        entities: Entities,
        schedule: Schedule,
        handled: Sequence[Sequence[Interval]],
        present_ms: int,
        fmt: Callable[[int], str],
        leavers_stay_offline: bool = True,
    ) -> None:
        """``handled[agent]``: the agent's (alert, wrap-up end) legs, in any order; the
        history runs from the day before the schedule's first to ``present_ms``."""
        first_ms, self.present_ms = schedule.base_ms - DAY_MS, present_ms
        presence_ids = {p.system_presence: p.id for p in entities.presences if p.primary}
        self.user_ids = [agent.id for agent in entities.agents]
        statuses: list[Status] = []
        for n, agent in enumerate(entities.agents):
            left = None if leavers_stay_offline else agent.leaves_at_ms
            until = self.present_ms if left is None else left
            busy = _union(handled[n])
            plan = _presence_plan(schedule.shifts[n], first_ms, until)
            presence = _merged(_with_busy(plan, busy))
            routing = _merged(_routing(presence, busy))
            for kind, spans in ((PRESENCE, presence), (ROUTING, routing)):
                for i, span in enumerate(spans):
                    still_on = i == len(spans) - 1 and left is None
                    end_ms = None if still_on else span[1]
                    body = _status_json(kind, span, end_ms, presence_ids, fmt)
                    statuses.append(Status(n, kind, span[0], end_ms, span[2], body))
        self.statuses = statuses
        self.rows = self._rows()

    def _rows(self) -> list[Row]:
        """Rows in (user, day) order [INF: the order is not documented; user by user is what
        spreads a user over entries and makes pages short, as observed]."""
        by_key: dict[tuple[int, int], list[int]] = {}
        for i, status in enumerate(self.statuses):
            end = self.present_ms if status.end_ms is None else status.end_ms
            day = status.start_ms // DAY_MS * DAY_MS
            while day < end:
                by_key.setdefault((status.user, day), []).append(i)
                day += DAY_MS
        return [Row(user, day, tuple(found)) for (user, day), found in sorted(by_key.items())]

    def select(self, start_ms: int, end_ms: int, available_ms: int | None) -> list[Row]:
        """The rows of days ``[start_ms, end_ms)`` touches, each cut to the statuses that
        overlap it and (for a job) started before ``available_ms``; empty rows left out."""
        if end_ms <= start_ms:
            return []
        first_day = start_ms // DAY_MS * DAY_MS
        chosen = []
        for row in self.rows:
            if not first_day <= row.day_ms < end_ms:
                continue
            kept = tuple(
                i
                for i in row.statuses
                if self.statuses[i].overlaps(start_ms, end_ms)
                and (available_ms is None or self.statuses[i].start_ms < available_ms)
            )
            if kept:
                chosen.append(Row(row.user, row.day_ms, kept))
        return chosen

    def entries(self, rows: Iterable[Row]) -> bytes:
        """One page's ``userDetails`` entries, joined: a status an earlier row of this page
        already gave is left out, and a row left empty by that is no entry at all."""
        given: set[int] = set()
        entries = []
        for row in rows:
            fresh = [i for i in row.statuses if i not in given]
            given.update(fresh)
            if not fresh:
                continue
            parts = [b'"userId":"' + self.user_ids[row.user].encode() + b'"']
            for kind in (PRESENCE, ROUTING):
                mine = [self.statuses[i].json for i in fresh if self.statuses[i].kind == kind]
                if mine:
                    parts.append(b'"' + kind.encode() + b'":[' + b",".join(mine) + b"]")
            entries.append(b"{" + b",".join(parts) + b"}")
        return b",".join(entries)

    def truth(self, start_ms: int, end_ms: int) -> list[Status]:
        """Ground truth: the statuses starting in ``[start_ms, end_ms)``."""
        return [s for s in self.statuses if start_ms <= s.start_ms < end_ms]


def _presence_plan(shifts: Iterable[Shift], first_ms: int, until_ms: int) -> list[Span]:
    """The planned presence from ``first_ms`` to ``until_ms``: OFFLINE between shifts."""
    spans: list[Span] = []
    at = first_ms
    for shift in shifts:
        spans.append((at, shift.start_ms, "OFFLINE"))
        at = shift.start_ms
        for away_start, away_end, presence in shift.away:
            spans += [(at, away_start, "ON_QUEUE"), (away_start, away_end, presence)]
            at = away_end
        spans.append((at, shift.end_ms, "ON_QUEUE"))
        at = shift.end_ms
    spans.append((at, until_ms, "OFFLINE"))
    clipped = ((max(s, first_ms), min(e, until_ms), v) for s, e, v in spans)
    return [(s, e, v) for s, e, v in clipped if e > s]


def _union(legs: Iterable[Interval]) -> list[Interval]:
    """Overlapping intervals merged, in order."""
    merged: list[Interval] = []
    for start, end in sorted(legs):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _split(span: Span, busy: list[Interval], inside: str, outside: str) -> Iterator[Span]:
    """``span`` cut into pieces: ``inside`` where ``busy`` covers it, ``outside`` elsewhere."""
    start, end, _ = span
    at = start
    for i in range(max(bisect_left(busy, (start, start)) - 1, 0), len(busy)):
        busy_start, busy_end = busy[i]
        if busy_start >= end:
            break
        if busy_end <= at:
            continue
        if busy_start > at:
            yield at, busy_start, outside
        at = min(busy_end, end)
        yield max(busy_start, start), at, inside
    if at < end:
        yield at, end, outside


def _with_busy(plan: list[Span], busy: list[Interval]) -> Iterator[Span]:
    """An agent handling a conversation is On Queue, whatever the plan said."""
    for span in plan:
        if span[2] == "ON_QUEUE":
            yield span
        else:
            yield from _split(span, busy, "ON_QUEUE", span[2])


def _routing(presence: list[Span], busy: list[Interval]) -> Iterator[Span]:
    for span in presence:
        if span[2] == "ON_QUEUE":
            yield from _split(span, busy, "INTERACTING", "IDLE")
        else:
            yield span[0], span[1], "OFF_QUEUE"


def _merged(spans: Iterable[Span]) -> list[Span]:
    """Adjacent spans of one value as one."""
    merged: list[Span] = []
    for start, end, value in spans:
        if merged and merged[-1][2] == value and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end, value)
        else:
            merged.append((start, end, value))
    return merged


def _status_json(
    kind: str, span: Span, end_ms: int | None, presence_ids: dict[str, str],
    fmt: Callable[[int], str],
) -> bytes:  # fmt: skip
    """A status as the API writes it (SDK AnalyticsUserPresenceRecord, ...RoutingStatusRecord)."""
    body: dict[str, str] = {"startTime": fmt(span[0])}
    if end_ms is not None:
        body["endTime"] = fmt(end_ms)
    if kind == PRESENCE:
        body["systemPresence"] = span[2]
        body["organizationPresenceId"] = presence_ids[span[2]]
    else:
        body["routingStatus"] = span[2]
    return orjson.dumps(body)
