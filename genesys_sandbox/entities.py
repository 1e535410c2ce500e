"""The org's entities: the one model both the conversation generator and the listings use.

Every id a generated conversation carries (userId, teamId, queueId, wrapUpCode, divisionIds,
flow ids, requestedRoutingSkillIds, requestedLanguageId) is an entity here, and the listing
routes serve exactly these entities (plus what drift creates). Built once per dataset, from its
seed: the same spec gives the same org.

Locations, flow outcomes and milestones are drawn after everything else, from a stream of
their own (``with_flow_entities``), so adding them changed no other entity or record.

The agents form 12 teams of 20; within a team, seat ``p`` is a member of queues p, p+5 and p+9
(mod 14), so every team has at least three members of every queue: whichever teams are on
shift (see ``schedule``), every queue has someone to answer it. A few agents leave part-way
through the range (one per team at most, so two members per team and queue always stay).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from genesys_sandbox.ids import IdSource

Take = Callable[[int], list[str]]  # IdSource.take: that many fresh ids

TEAMS = 12
SEATS = 20  # agents per team
QUEUE_NAMES = ("Support", "Billing", "Sales", "Tech Support", "Retention", "Claims", "Orders")
QUEUE_COUNT = 2 * len(QUEUE_NAMES)  # tier 1 and tier 2 of each
_SEAT_QUEUES = (0, 5, 9)  # seat p is a member of queues (p + k) % QUEUE_COUNT
_LEAVERS = 8  # agents who leave part-way through: half inactive, half deleted
_FIRST = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kai",
          "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess")  # fmt: skip
_LAST = ("Silva", "Okafor", "Nguyen", "Smith", "Kowalski", "Haddad", "Tanaka", "Brown", "Rossi",
         "Meyer", "Dubois", "Patel", "Novak", "Garcia", "Larsen", "Kim")  # fmt: skip
NAMES = tuple(f"{first} {last}" for first in _FIRST for last in _LAST)
_TEAM_NAMES = ("Aurora", "Beacon", "Comet", "Delta", "Ember", "Falcon", "Glacier", "Harbor",
               "Iris", "Juniper", "Kestrel", "Lumen")  # fmt: skip
_SKILLS = ("Billing", "Technical", "Sales", "Retention", "Claims", "Orders", "VIP",
           "Escalations", "Hardware", "Accounts")  # fmt: skip
_LANGUAGES = ("English", "Spanish", "French", "Portuguese", "German")
_WRAPUPS = ("Resolved", "Follow-up required", "Escalated", "Billing inquiry", "Order placed",
            "Callback scheduled", "Wrong number", "Complaint", "Technical issue",
            "Account update", "Cancellation", "Information provided", "Transferred",
            "No answer", "Spam")  # fmt: skip
FLOW_NAMES = {
    "INBOUNDCALL": ("Main IVR", "After Hours IVR", "Claims IVR"),
    "INBOUNDSHORTMESSAGE": ("SMS Router", "WhatsApp Router", "Messenger Router"),
    "INBOUNDEMAIL": ("Support Email", "Billing Email", "Sales Email"),
    "INBOUNDCHAT": ("Web Chat", "Portal Chat", "Mobile App Chat"),
    "OUTBOUNDCALL": ("Renewals Campaign", "Collections Campaign", "Survey Campaign"),
}
SYSTEM_PRESENCES = ("AVAILABLE", "AWAY", "BUSY", "OFFLINE", "IDLE", "ON_QUEUE", "MEAL",
                    "TRAINING", "MEETING", "BREAK")  # fmt: skip
# Org-defined secondary presences: (label, system presence they report as).
SECONDARY_PRESENCES = (("Coffee Break", "BREAK"), ("Team Huddle", "MEETING"),
                       ("Coaching", "TRAINING"), ("System Issue", "AWAY"))  # fmt: skip
# What the org's flows report reaching; outcomes are the ids conversations' flows carry.
_OUTCOMES = ("Caller Authenticated", "Payment Taken", "Order Status Given", "Callback Booked",
             "Transferred To Agent", "Self Service Completed")  # fmt: skip
_MILESTONES = ("Menu Entered", "Account Found", "Identity Verified", "Intent Captured",
               "Payment Started", "Payment Confirmed", "Survey Offered",
               "Queue Selected")  # fmt: skip
# Sites: (name, street, city, region, zipcode, country, country name, emergency number).
_SITES = (("Austin Contact Center", "1600 Congress Ave", "Austin", "TX", "78701", "US",
           "United States", "+15125550100"),
          ("Denver Contact Center", "1701 Wynkoop St", "Denver", "CO", "80202", "US",
           "United States", "+13035550100"),
          ("Manila Outsourced Site", "6750 Ayala Ave", "Makati", "Metro Manila", "1226", "PH",
           "Philippines", "+6325550100"),
          ("Dublin Office", "1 Grand Canal Sq", "Dublin", "", "D02 P820", "IE", "Ireland",
           "+35315550100"))  # fmt: skip
# Non-agent staff: (title, department, how many).
_STAFF = (("Contact Center Manager", "Operations", 2), ("Administrator", "IT", 3),
          ("Quality Analyst", "Quality", 4), ("Workforce Planner", "Workforce", 2))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Named:
    """An entity that is just an id and a name (routing skills and languages)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Division:
    id: str
    name: str
    home: bool


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    division_id: str


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    description: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WrapupCode:
    id: str
    name: str
    division_id: str


@dataclass(frozen=True, slots=True)
class Queue:
    id: str
    name: str
    division_id: str
    member_ids: tuple[str, ...]  # agents, ever (leavers included)


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    name: str
    type: str  # flowType, as conversations' flow sessions carry it
    version: str  # the published version conversations report as flowVersion


@dataclass(frozen=True, slots=True)
class Presence:
    """A presence definition; ``system_presence`` is the analytics enum value (ON_QUEUE)."""

    id: str
    label: str
    system_presence: str
    primary: bool  # the system's own definition, not an org-defined secondary one


@dataclass(frozen=True, slots=True)
class Location:
    """A site of the org (LocationDefinition); the emergency number is E.164."""

    id: str
    name: str
    street: str
    city: str
    region: str  # the address's state or province
    zipcode: str
    country: str  # ISO 3166 code
    country_name: str
    emergency_number: str


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    email: str
    title: str
    department: str
    division_id: str
    state: str  # active, inactive or deleted (at the end of the data)
    version: int
    team_id: str | None
    manager_id: str | None
    skills: tuple[tuple[str, float], ...] = ()  # (skill id, proficiency)
    languages: tuple[tuple[str, float], ...] = ()
    agent: bool = False
    leaves_at_ms: int | None = None  # left the org at this instant (inactive or deleted)


@dataclass(frozen=True, slots=True)
class Entities:
    """Every entity of the org; ``users`` lists the agents first, in team-seat order."""

    divisions: tuple[Division, ...]
    teams: tuple[Team, ...]
    skills: tuple[Named, ...]
    languages: tuple[Named, ...]
    wrapup_codes: tuple[WrapupCode, ...]
    queues: tuple[Queue, ...]
    flows: tuple[Flow, ...]
    presences: tuple[Presence, ...]
    users: tuple[User, ...]
    groups: tuple[Group, ...]
    flow_outcomes: tuple[Named, ...] = ()
    flow_milestones: tuple[Named, ...] = ()
    locations: tuple[Location, ...] = ()

    @property
    def agents(self) -> tuple[User, ...]:
        return self.users[: TEAMS * SEATS]


def build_entities(rng: random.Random, range_ms: tuple[int, int]) -> Entities:
    """Draw the org; leavers leave between 30% and 70% of ``range_ms`` = (start, end)."""
    take = IdSource(rng).take
    divisions = tuple(
        Division(i, n, n == "Home")
        for i, n in zip(take(3), ("Home", "Sales", "Outsourced Support"), strict=True)
    )
    home = divisions[0].id
    teams = tuple(Team(i, n, home) for i, n in zip(take(TEAMS), _TEAM_NAMES, strict=True))
    skills = tuple(Named(i, n) for i, n in zip(take(len(_SKILLS)), _SKILLS, strict=True))
    languages = tuple(Named(i, n) for i, n in zip(take(len(_LANGUAGES)), _LANGUAGES, strict=True))
    wrapups = tuple(WrapupCode(i, n, home) for i, n in zip(take(15), _WRAPUPS, strict=True))
    people = iter(rng.sample(NAMES, len(NAMES)))
    agents = _agents(rng, take, people, (teams, skills, languages), range_ms)
    leads = _team_leads(take, people, teams, home)
    agents = [_managed(agent, leads) for agent in agents]
    users = (*agents, *leads, *_staff(take, people, home))
    queues = _queues(take, divisions, agents)
    return Entities(
        divisions=divisions, teams=teams, skills=skills, languages=languages,
        wrapup_codes=wrapups, queues=queues, flows=_flows(take), presences=_presences(take),
        users=users, groups=_groups(take, users, queues),
    )  # fmt: skip


def with_flow_entities(
    entities: Entities, rng: random.Random, outcome_ids: tuple[str, ...]
) -> Entities:
    """``entities`` with the org's flow outcomes (named ``outcome_ids``: the ids conversations'
    flows report), its flow milestones and its locations, new ids drawn from ``rng``."""
    take = IdSource(rng).take
    outcomes = tuple(Named(i, n) for i, n in zip(outcome_ids, _OUTCOMES, strict=True))
    milestones = tuple(
        Named(i, n) for i, n in zip(take(len(_MILESTONES)), _MILESTONES, strict=True)
    )
    locations = tuple(Location(i, *site) for i, site in zip(take(len(_SITES)), _SITES, strict=True))
    return replace(
        entities, flow_outcomes=outcomes, flow_milestones=milestones, locations=locations
    )


def _agents(
    rng: random.Random,
    take: Take,
    names: Iterator[str],
    pools: tuple[tuple[Team, ...], tuple[Named, ...], tuple[Named, ...]],
    range_ms: tuple[int, int],
) -> list[User]:
    teams, skills, languages = pools
    leavers = _leaver_seats(rng)
    agents = []
    for n, user_id in enumerate(take(TEAMS * SEATS)):
        team, seat = n % TEAMS, n // TEAMS
        name = next(names)
        state, leaves = "active", None
        if (team, seat) in leavers:
            state = "inactive" if leavers[(team, seat)] else "deleted"
            leaves = _leaving_instant(rng, range_ms)
        agents.append(User(
            id=user_id, name=name, email=_email(name, n), title="Agent",
            department="Contact Center", division_id=teams[team].division_id, state=state,
            version=1 + int(rng.random() * 6), team_id=teams[team].id, manager_id=None,
            skills=_proficiencies(rng, skills, 2, 4), languages=_languages(rng, languages),
            agent=True, leaves_at_ms=leaves,
        ))  # fmt: skip
    return agents


def _leaver_seats(rng: random.Random) -> dict[tuple[int, int], bool]:
    """(team, seat) of each leaver -> True when inactive (else deleted); one per team at most."""
    teams = rng.sample(range(TEAMS), _LEAVERS)
    return {(team, int(rng.random() * SEATS)): k % 2 == 0 for k, team in enumerate(teams)}


def _leaving_instant(rng: random.Random, range_ms: tuple[int, int]) -> int:
    start, end = range_ms
    quarter_hour = 900_000  # on the schedule's slot grid, so shifts end cleanly before it
    at = start + int((0.3 + 0.4 * rng.random()) * (end - start))
    return at // quarter_hour * quarter_hour


def _proficiencies(
    rng: random.Random, pool: tuple[Named, ...], low: int, high: int
) -> tuple[tuple[str, float], ...]:
    picked = rng.sample(pool, rng.randint(low, high))
    return tuple((entity.id, float(rng.randint(1, 5))) for entity in picked)


def _languages(rng: random.Random, pool: tuple[Named, ...]) -> tuple[tuple[str, float], ...]:
    """English for everyone; a second language for about a third of the agents."""
    spoken = [(pool[0].id, float(rng.randint(4, 5)))]
    if rng.random() < 0.35:
        spoken.append((rng.choice(pool[1:]).id, float(rng.randint(2, 5))))
    return tuple(spoken)


def _email(name: str, n: int) -> str:
    return f"{name.replace(' ', '.').lower()}{n}@sandbox.example.com"


def _team_leads(
    take: Take, names: Iterator[str], teams: tuple[Team, ...], division_id: str
) -> list[User]:
    leads = []
    for n, (user_id, team) in enumerate(zip(take(len(teams)), teams, strict=True)):
        name = next(names)
        leads.append(User(user_id, name, _email(name, 1000 + n), "Team Lead", "Contact Center",
                          division_id, "active", 3, team.id, None))  # fmt: skip
    return leads


def _managed(agent: User, leads: list[User]) -> User:
    """The agent with its team lead as manager."""
    lead = next(lead for lead in leads if lead.team_id == agent.team_id)
    return replace(agent, manager_id=lead.id)


def _staff(take: Take, names: Iterator[str], division_id: str) -> list[User]:
    """Managers, admins, analysts and planners, and one supervisor who left long ago."""
    staff = []
    roles = [(title, dept) for title, dept, count in _STAFF for _ in range(count)]
    roles.append(("Supervisor", "Contact Center"))
    for n, (user_id, (title, dept)) in enumerate(zip(take(len(roles)), roles, strict=True)):
        name = next(names)
        state = "inactive" if title == "Supervisor" else "active"
        staff.append(User(user_id, name, _email(name, 2000 + n), title, dept, division_id,
                          state, 2, None, None))  # fmt: skip
    return staff


def _queues(take: Take, divisions: tuple[Division, ...], agents: list[User]) -> tuple[Queue, ...]:
    names = [f"{name} {tier}" for tier in (1, 2) for name in QUEUE_NAMES]
    members: list[list[str]] = [[] for _ in names]
    for n, agent in enumerate(agents):
        seat = n // TEAMS
        for k in _SEAT_QUEUES:
            members[(seat + k) % QUEUE_COUNT].append(agent.id)
    # Most queues sit in the home division, as in a typical org.
    return tuple(
        Queue(queue_id, name, divisions[0 if i < 10 else i % 3].id, tuple(members[i]))
        for i, (queue_id, name) in enumerate(zip(take(len(names)), names, strict=True))
    )


def _flows(take: Take) -> tuple[Flow, ...]:
    return tuple(
        Flow(flow_id, name, flow_type, f"{3 + n * 5}.0")
        for flow_type, names in FLOW_NAMES.items()
        for n, (flow_id, name) in enumerate(zip(take(len(names)), names, strict=True))
    )


def _presences(take: Take) -> tuple[Presence, ...]:
    system_ids = take(len(SYSTEM_PRESENCES))
    system = [
        Presence(i, p.replace("_", " ").title(), p, True)
        for i, p in zip(system_ids, SYSTEM_PRESENCES, strict=True)
    ]
    secondary_ids = take(len(SECONDARY_PRESENCES))
    secondary = [
        Presence(i, label, p, False)
        for i, (label, p) in zip(secondary_ids, SECONDARY_PRESENCES, strict=True)
    ]
    return (*system, *secondary)


def _groups(take: Take, users: tuple[User, ...], queues: tuple[Queue, ...]) -> tuple[Group, ...]:
    agents = [u.id for u in users if u.agent]
    tier2 = sorted({m for q in queues[len(QUEUE_NAMES) :] for m in q.member_ids})
    spanish = [u.id for u in users if u.agent and len(u.languages) > 1]
    titled = {title: [u.id for u in users if u.title == title]
              for title in ("Team Lead", "Quality Analyst", "Administrator")}  # fmt: skip
    specs = (("All Agents", "Everyone who takes interactions", agents),
             ("Tier 2", "Agents of the tier 2 queues", tier2),
             ("Multilingual Agents", "Agents with a second language", spanish),
             ("Team Leads", "Team leads and supervisors", titled["Team Lead"]),
             ("Quality", "Evaluators", titled["Quality Analyst"]),
             ("Administrators", "Org administrators", titled["Administrator"]))  # fmt: skip
    ids = take(len(specs))
    return tuple(
        Group(group_id, name, about, tuple(members))
        for group_id, (name, about, members) in zip(ids, specs, strict=True)
    )
