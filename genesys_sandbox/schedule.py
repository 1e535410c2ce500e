"""Agents' shifts, and who can answer each queue when: the link between conversations and statuses.

Team k works 8.5-hour shifts starting at 2k:00 UTC, so four or five teams are on shift at any
moment. Even teams take Saturday and Sunday off, odd teams two weekdays, so at least two teams
work whenever conversations arrive, weekends included (traffic runs all day). Inside a shift,
two breaks, a meal and sometimes a meeting, a training or a spell away take whole quarter hours
off queue. A conversation picks its agent among the queue's members who are on shift and on
queue in the quarter hour of its alert (``answerers``); the status history (``statuses``) is
built from the same shifts, so the two always agree. A leaver works no shift that ends after
the instant they leave.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from genesys_sandbox.entities import TEAMS, Entities, User

SLOT_MS = 900_000  # a quarter hour: shifts, breaks and leaving instants sit on this grid
DAY_MS = 86_400_000
_SLOTS_PER_DAY = DAY_MS // SLOT_MS
SHIFT_SLOTS = 34  # 8.5 hours, meal included
_TEAM_SPACING_SLOTS = 8  # team k starts at k * 2 hours UTC
_AFTER_RANGE_DAYS = 2  # alerts can come a day after the range ends (emails wait for hours)
Pools = list[list[tuple[int, ...]]]  # [queue][slot] -> agent indices


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift (epoch ms) and the off-queue stretches inside it."""

    start_ms: int
    end_ms: int
    away: tuple[tuple[int, int, str], ...]  # (start, end, systemPresence), in order

    def covers(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms


class Schedule:
    """Every agent's shifts from the day before the range to the day after it."""

    def __init__(self, entities: Entities, range_ms: tuple[int, int], rng: random.Random) -> None:
        self.base_ms, range_end = range_ms
        days = -(-(range_end - self.base_ms) // DAY_MS)
        agents = entities.agents
        self.shifts = tuple(
            _agent_shifts(rng, n, agent, self.base_ms, days) for n, agent in enumerate(agents)
        )
        self._slots = (days + _AFTER_RANGE_DAYS) * _SLOTS_PER_DAY
        index = {agent.id: n for n, agent in enumerate(agents)}
        memberships: list[list[int]] = [[] for _ in agents]
        for q, queue in enumerate(entities.queues):
            for member in queue.member_ids:
                memberships[index[member]].append(q)
        self._pools = self._build_pools(memberships, len(entities.queues))

    def answerers(self, queue: int, at_ms: int) -> tuple[int, ...]:
        """Agent indices of ``queue``'s members on queue at ``at_ms``; on shift, at worst."""
        slot = (at_ms - self.base_ms) // SLOT_MS
        return self._pools[queue][min(max(slot, 0), self._slots - 1)]

    def _slot(self, at_ms: int) -> int:
        return (at_ms - self.base_ms) // SLOT_MS

    def _build_pools(self, memberships: list[list[int]], queues: int) -> Pools:
        """Who is on queue, and who is on shift, per queue and quarter hour."""
        slots = self._slots
        on_shift: list[list[list[int]]] = [[[] for _ in range(slots)] for _ in range(queues)]
        on_queue: list[list[list[int]]] = [[[] for _ in range(slots)] for _ in range(queues)]
        for agent, shifts in enumerate(self.shifts):
            for shift in shifts:
                away = {s for a, b, _ in shift.away for s in range(self._slot(a), self._slot(b))}
                first, last = self._slot(shift.start_ms), self._slot(shift.end_ms)
                for slot in range(max(first, 0), min(last, slots)):
                    for q in memberships[agent]:
                        on_shift[q][slot].append(agent)
                        if slot not in away:
                            on_queue[q][slot].append(agent)
        return [
            [_pool(on_queue[q][s], on_shift[q][s], q, s) for s in range(slots)]
            for q in range(queues)
        ]


def _pool(on_queue: list[int], on_shift: list[int], queue: int, slot: int) -> tuple[int, ...]:
    # Everyone on a break at once is possible in a quiet hour: someone on shift answers then.
    if not on_shift:
        raise RuntimeError(f"No member of queue {queue} is on shift in slot {slot}: a bug.")
    return tuple(on_queue or on_shift)


def _agent_shifts(
    rng: random.Random, n: int, agent: User, base_ms: int, days: int
) -> tuple[Shift, ...]:
    """Agent ``n``'s shifts starting from the day before the range (team k = n % 12)."""
    team = n % TEAMS
    shifts = []
    for day in range(-1, days + _AFTER_RANGE_DAYS):
        day_ms = base_ms + day * DAY_MS
        if _day_off(team, datetime.fromtimestamp(day_ms / 1000, UTC).weekday()):
            continue
        start = day_ms + team * _TEAM_SPACING_SLOTS * SLOT_MS
        shift = Shift(start, start + SHIFT_SLOTS * SLOT_MS, _away(rng, start))
        if agent.leaves_at_ms is None or shift.end_ms <= agent.leaves_at_ms:
            shifts.append(shift)
    return tuple(shifts)


def _day_off(team: int, weekday: int) -> bool:
    """Even teams rest at weekends; odd team 2j+1 on weekdays j % 4 and j % 4 + 1."""
    if team % 2 == 0:
        return weekday >= 5
    first = team // 2 % 4
    return weekday in (first, first + 1)


def _away(rng: random.Random, start: int) -> tuple[tuple[int, int, str], ...]:
    """Off-queue stretches, as (first slot, slots, presence) offsets into the shift: a break
    about 2 h in, a meal about 4 h in, a break about 6.5 h in; now and then a meeting or a
    training early on and a spell away or busy in the afternoon."""
    r = rng.random
    plan = [(8 + int(r() * 2), 1, "BREAK"), (16 + int(r() * 3), 2, "MEAL"),
            (26 + int(r() * 2), 1, "BREAK")]  # fmt: skip
    if r() < 0.12:
        plan.insert(0, (2 + int(r() * 2), 2 + int(r() * 3), "TRAINING" if r() < 0.4 else "MEETING"))
    if r() < 0.06:
        plan.insert(-1, (21 + int(r() * 3), 1, "AWAY" if r() < 0.5 else "BUSY"))
    return tuple(
        (start + first * SLOT_MS, start + (first + length) * SLOT_MS, presence)
        for first, length, presence in plan
    )
