"""Workforce management's units, drawn from the org's teams: business units, their management
units, each unit's agents, and each business unit's activity codes, as the WFM routes send them.

Two business units: "Americas" in America/New_York (a DST zone: the data's first day,
1 November 2026, is the 25-hour day its clocks go back) and "Asia Pacific" in Asia/Manila (no
DST). The twelve teams are split among three management units, four teams each; a unit's
users are its teams' agents, but for deleted ones (WFM drops a deleted user [INF]), so every
unit user is a user the users listing serves. A management unit keeps its business unit's time
zone. Ids come from a random stream of their own, so the rest of the data is what the same seed
gave before units existed. Field names are the SDK models' (BusinessUnitResponse,
ManagementUnit, BusinessUnitActivityCode) JSON names.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genesys_sandbox.entities import TEAMS, Entities
from genesys_sandbox.listings import Entity

WFM = "/api/v2/workforcemanagement"
# (name, Olson time zone, first day of the week): one with DST, one without.
_BUSINESS_UNITS = (("Americas", "America/New_York", "Sunday"),
                   ("Asia Pacific", "Asia/Manila", "Monday"))  # fmt: skip
# (name, business unit, teams): four teams each.
_MANAGEMENT_UNITS = (("Americas Voice", 0, range(0, 4)), ("Americas Digital", 0, range(4, 8)),
                     ("Manila", 1, range(8, 12)))  # fmt: skip
# (name, category, paid): the default code of each category [SRC category enum].
ACTIVITY_CODES = (("On Queue Work", "OnQueueWork", True), ("Break", "Break", True),
                  ("Meal", "Meal", False), ("Meeting", "Meeting", True),
                  ("Training", "Training", True), ("Time Off", "TimeOff", True),
                  ("Off Queue Work", "OffQueueWork", True))  # fmt: skip
# The presences a shift's off-queue stretches show, and the category each is scheduled as;
# AWAY and BUSY stretches are not planned (the agent is scheduled on queue): adherence
# exceptions.
SCHEDULED = {"BREAK": "Break", "MEAL": "Meal", "MEETING": "Meeting", "TRAINING": "Training"}


@dataclass(frozen=True, slots=True)
class BusinessUnit:
    id: str
    name: str
    time_zone: str
    start_day: str
    activity_codes: Mapping[str, str]  # category -> the id of its code


@dataclass(frozen=True, slots=True)
class ManagementUnit:
    id: str
    name: str
    business_unit: BusinessUnit
    agents: tuple[int, ...]  # indices into Entities.agents (and the shifts)


@dataclass(frozen=True, slots=True)
class Workforce:
    business_units: tuple[BusinessUnit, ...]
    management_units: tuple[ManagementUnit, ...]

    def units_of(self, business_unit_id: str) -> list[ManagementUnit]:
        return [m for m in self.management_units if m.business_unit.id == business_unit_id]


def build_workforce(entities: Entities, seed: int) -> Workforce:
    """The org's units; the same seed gives the same ids."""
    rng = random.Random(f"wfm-{seed}")
    units = tuple(
        BusinessUnit(_id(rng), name, zone, day,
                     {category: _id(rng) for _, category, _ in ACTIVITY_CODES})
        for name, zone, day in _BUSINESS_UNITS
    )  # fmt: skip
    agents = entities.agents
    management = tuple(
        ManagementUnit(_id(rng), name, units[bu], tuple(
            n for n, agent in enumerate(agents) if n % TEAMS in teams and agent.state != "deleted"
        ))
        for name, bu, teams in _MANAGEMENT_UNITS
    )  # fmt: skip
    return Workforce(units, management)


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class WorkforceJson:
    """The units as the routes send them; ``division`` the org's home division."""

    def __init__(self, workforce: Workforce, entities: Entities, division: Mapping[str, Any],
                 modified: str) -> None:  # fmt: skip
        self.w = workforce
        self._agents = entities.agents
        # WFM models name a division by reference only (DivisionReference: id, selfUri).
        self._division = {"id": division["id"], "selfUri": division["selfUri"]}
        self._modified = modified

    def business_unit(self, bu: BusinessUnit) -> Entity:
        body = {"id": bu.id, "name": bu.name, "division": self._division,
                "selfUri": f"{WFM}/businessunits/{bu.id}"}  # fmt: skip
        settings = {"startDayOfWeek": bu.start_day, "timeZone": bu.time_zone,
                    "shortTermForecasting": {"defaultHistoryWeeks": 8},
                    "metadata": {"version": 1, "dateModified": self._modified}}  # fmt: skip
        return Entity(bu.id, bu.name, body, expansions={"settings": settings})

    def management_unit(self, mu: ManagementUnit, *, own_zone: bool = True) -> Entity:
        """A management unit; ``own_zone``: with its own (its business unit's) time zone and
        week start, fields the platform is moving to the business unit."""
        bu = mu.business_unit
        body: dict[str, Any] = {
            "id": mu.id, "name": mu.name, "division": self._division,
            "businessUnit": {"id": bu.id, "selfUri": f"{WFM}/businessunits/{bu.id}"},
            "version": 1, "dateModified": self._modified,
            "selfUri": f"{WFM}/managementunits/{mu.id}",
        }  # fmt: skip
        if own_zone:
            body.update(startDayOfWeek=bu.start_day, timeZone=bu.time_zone)
        adherence = {"severeAlertThresholdMinutes": 15, "adherenceTargetPercent": 90,
                     "adherenceExceptionThresholdSeconds": 300,
                     "nonOnQueueActivitiesEquivalent": True, "trackOnQueueActivity": True,
                     "ignoredActivityCategories": {"values": ["Unavailable"]}}  # fmt: skip
        settings = {"adherence": adherence, "metadata": {"version": 1}}
        return Entity(mu.id, mu.name, body, expansions={"settings": settings})

    def users(self, mu: ManagementUnit) -> list[Entity]:
        """The unit's users as WfmUserEntityListing lists them: UserReference, id and selfUri."""
        agents = [self._agents[n] for n in mu.agents]
        return [Entity(a.id, a.name, {"id": a.id, "selfUri": f"/api/v2/users/{a.id}"})
                for a in agents]  # fmt: skip

    def activity_codes(self, bu: BusinessUnit) -> list[Entity]:
        codes = []
        for name, category, paid in ACTIVITY_CODES:
            code_id = bu.activity_codes[category]
            on_queue = category == "OnQueueWork"
            body = {"id": code_id, "name": name, "active": True, "defaultCode": True,
                    "category": category, "countsAsPaidTime": paid,
                    "countsAsWorkTime": on_queue or category == "OffQueueWork",
                    "agentTimeOffSelectable": category == "TimeOff",
                    "countsTowardShrinkage": not on_queue, "plannedShrinkage": not on_queue,
                    "interruptible": category in ("Break", "Meeting", "Training"),
                    "secondaryPresences": [], "metadata": {"version": 1},
                    "selfUri": f"{WFM}/businessunits/{bu.id}/activitycodes/{code_id}"}  # fmt: skip
            codes.append(Entity(code_id, name, body))
        return codes


def listing_body(
    entities: Sequence[Entity], self_uri: str | None, expand: frozenset[str]
) -> dict[str, Any]:
    """A WFM listing: every entity on one page, no paging fields [SRC: "no paging"]; a
    ``selfUri`` only where the listing's model has one (ManagementUnitListing)."""
    body: dict[str, Any] = {"entities": [e.json(expand) for e in entities]}
    if self_uri is not None:
        body["selfUri"] = self_uri
    return body
