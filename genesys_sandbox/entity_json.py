"""The org's entities as the listing routes send them: the SDK models' JSON names and shapes.

Each function renders one entity type into a listing ``Entity`` (User, Queue, QueueMember,
WrapupCode, AuthzDivision, Group, Team, RoutingSkill, Language, OrganizationPresence, Flow,
FlowOutcome, FlowMilestone, LocationDefinition of PureCloudPlatformClientV2).
``base_listings`` gives every listing its base entities and the factory drift creates new ones
with. Dates are fixed instants before the data range.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from genesys_sandbox.entities import (
    NAMES,
    Division,
    Entities,
    Flow,
    Group,
    Location,
    Named,
    Presence,
    Queue,
    Team,
    User,
    WrapupCode,
)
from genesys_sandbox.listings import Entity, Factory
from genesys_sandbox.wire import format_instant, from_ms

DAY_MS = 86_400_000
SKILLS_PATH = "/api/v2/routing/skills"
LANGUAGES_PATH = "/api/v2/routing/languages"
OUTCOMES_PATH = "/api/v2/flows/outcomes"
MILESTONES_PATH = "/api/v2/flows/milestones"
_WORDS = ("Alder", "Birch", "Cedar", "Dune", "Elm", "Fern", "Grove", "Heath", "Ivy", "Juniper",
          "Kelp", "Linden", "Maple", "Nettle", "Oak", "Pine", "Quartz", "Reed", "Sage", "Thorn",
          "Umber", "Vale", "Willow", "Yarrow", "Zinnia")  # fmt: skip


class Renderer:
    """Renders ``entities`` with dates relative to the data range's first instant."""

    def __init__(self, entities: Entities, range_start_ms: int) -> None:
        self.e = entities
        self._created = format_instant(from_ms(range_start_ms - 400 * DAY_MS))
        self._modified = format_instant(from_ms(range_start_ms - 30 * DAY_MS))
        self._divisions = {d.id: d for d in entities.divisions}
        self._users = {u.id: u for u in entities.users}
        self._skills = {s.id: s for s in entities.skills}
        self._languages = {lang.id: lang for lang in entities.languages}
        self._teams = {t.id: t for t in entities.teams}
        self._admin = next(u.id for u in entities.users if u.title == "Administrator")

    @property
    def modified(self) -> str:
        """When every entity was last modified (a fixed instant before the data range)."""
        return self._modified

    @property
    def admin_ref(self) -> dict[str, str]:
        """The org's first administrator, as a user reference ({id, selfUri}): who created
        what the org set up by hand."""
        return {"id": self._admin, "selfUri": f"/api/v2/users/{self._admin}"}

    def division_ref(self, division_id: str) -> dict[str, Any]:
        return _division_ref(self._divisions[division_id])

    def user(self, u: User) -> Entity:
        body: dict[str, Any] = {
            "id": u.id, "name": u.name, "division": self.division_ref(u.division_id),
            "chat": {"jabberId": f"{u.id[:24]}@sandbox.orgspan.com"}, "department": u.department,
            "email": u.email,
            "primaryContactInfo": [{"address": u.email, "mediaType": "EMAIL", "type": "PRIMARY"}],
            "addresses": [], "state": u.state, "title": u.title, "username": u.email,
        }  # fmt: skip
        if u.manager_id is not None:
            body["manager"] = {"id": u.manager_id, "selfUri": f"/api/v2/users/{u.manager_id}"}
        body.update(version=u.version, acdAutoAnswer=False, selfUri=f"/api/v2/users/{u.id}")
        return Entity(u.id, u.name, body, self._user_expansions(u), u.state)

    def _user_expansions(self, u: User) -> dict[str, Any]:
        skills, languages = self._skills, self._languages
        expansions: dict[str, Any] = {
            "skills": [_proficiency(u, skills[i], p, "skill") for i, p in u.skills],
            "languages": [_proficiency(u, languages[i], p, "language") for i, p in u.languages],
        }
        if u.team_id is not None:
            expansions["team"] = self.team(self._teams[u.team_id]).body
        return expansions

    def team(self, t: Team) -> Entity:
        members = sum(u.team_id == t.id and u.state != "deleted" for u in self.e.users)
        body = {"id": t.id, "name": t.name, "division": self.division_ref(t.division_id),
                "description": f"The {t.name} crew", "dateCreated": self._created,
                "dateModified": self._modified, "memberCount": members,
                "selfUri": f"/api/v2/teams/{t.id}"}  # fmt: skip
        return Entity(t.id, t.name, body)

    def queue(self, q: Queue) -> Entity:
        states = [self._users[m].state for m in q.member_ids]
        members = sum(s != "deleted" for s in states)
        body = {
            "id": q.id, "name": q.name, "division": self.division_ref(q.division_id),
            "description": f"{q.name} interactions", "dateCreated": self._created,
            "dateModified": self._modified, "modifiedBy": self._admin, "createdBy": self._admin,
            "memberCount": members, "userMemberCount": members,
            "joinedMemberCount": states.count("active"), "mediaSettings": _MEDIA_SETTINGS,
            "acwSettings": {"wrapupPrompt": "MANDATORY_TIMEOUT", "timeoutMs": 180_000},
            "skillEvaluationMethod": "BEST", "scoringMethod": "TimestampAndPriority",
            "autoAnswerOnly": False, "enableTranscription": False,
            "enableManualAssignment": False, "selfUri": f"/api/v2/routing/queues/{q.id}",
        }  # fmt: skip
        return Entity(q.id, q.name, body)

    def members(self, q: Queue) -> list[Entity]:
        """The queue's members, deleted users left out; inactive ones stay, not joined."""
        members = [self._users[m] for m in q.member_ids]
        return [self._member(u) for u in members if u.state != "deleted"]

    def _member(self, u: User) -> Entity:
        user = {"id": u.id, "name": u.name, "division": self.division_ref(u.division_id),
                "state": u.state, "selfUri": f"/api/v2/users/{u.id}"}  # fmt: skip
        body = {"id": u.id, "name": u.name, "user": user, "ringNumber": 1,
                "joined": u.state == "active", "memberBy": "user",
                "selfUri": f"/api/v2/users/{u.id}"}  # fmt: skip
        return Entity(u.id, u.name, body)

    def wrapup_code(self, w: WrapupCode) -> Entity:
        body = {"id": w.id, "name": w.name, "division": self.division_ref(w.division_id),
                "dateCreated": self._created, "createdBy": self._admin,
                "selfUri": f"/api/v2/routing/wrapupcodes/{w.id}"}  # fmt: skip
        return Entity(w.id, w.name, body)

    def division(self, d: Division) -> Entity:
        # Not division_ref(d.id): a division drift creates is in no lookup table.
        body = {**_division_ref(d), "description": f"{d.name} division",
                "homeDivision": d.home}  # fmt: skip
        return Entity(d.id, d.name, body)

    def group(self, g: Group) -> Entity:
        body = {"id": g.id, "name": g.name, "description": g.description,
                "dateModified": self._modified, "memberCount": len(g.member_ids),
                "state": "active", "version": 1, "type": "official", "rulesVisible": True,
                "visibility": "public", "selfUri": f"/api/v2/groups/{g.id}"}  # fmt: skip
        return Entity(g.id, g.name, body)

    def named(self, n: Named, path: str) -> Entity:
        """A routing skill or language (``path``: /api/v2/routing/skills or .../languages)."""
        body = {"id": n.id, "name": n.name, "dateModified": self._modified, "state": "active",
                "version": "1", "selfUri": f"{path}/{n.id}"}  # fmt: skip
        return Entity(n.id, n.name, body)

    def presence(self, p: Presence) -> Entity:
        body: dict[str, Any] = {
            "id": p.id, "languageLabels": {"en_US": p.label},
            # [INF] definitions spell the system presence as people read it ("On Queue"),
            # analytics as an enum (ON_QUEUE), as the Terraform provider's examples suggest.
            "systemPresence": p.system_presence.replace("_", " ").title(),
            "deactivated": False, "primary": p.primary, "createdDate": self._created,
        }  # fmt: skip
        if not p.primary:
            body["createdBy"] = self.admin_ref
        body["selfUri"] = f"/api/v2/presencedefinitions/{p.id}"
        return Entity(p.id, p.label, body)

    def flow(self, f: Flow) -> Entity:
        version = {"id": f.version, "name": f.version, "type": "PUBLISH",
                   "datePublished": self._modified}  # fmt: skip
        body = {"id": f.id, "name": f.name, "division": self.division_ref(self.e.divisions[0].id),
                "description": f"{f.name} ({f.type.lower()})", "type": f.type, "active": True,
                "system": False, "deleted": False, "publishedVersion": version,
                "selfUri": f"/api/v2/flows/{f.id}"}  # fmt: skip
        return Entity(f.id, f.name, body)

    def flow_part(self, n: Named, path: str) -> Entity:
        """A flow outcome or milestone (``path``: OUTCOMES_PATH or MILESTONES_PATH)."""
        body = {"id": n.id, "name": n.name, "division": self.division_ref(self.e.divisions[0].id),
                "description": f"Flows report: {n.name.lower()}",
                "selfUri": f"{path}/{n.id}"}  # fmt: skip
        return Entity(n.id, n.name, body)

    def location(self, loc: Location) -> Entity:
        number = {"e164": loc.emergency_number, "number": loc.emergency_number, "type": "default"}
        address = {"city": loc.city, "country": loc.country, "countryName": loc.country_name,
                   "state": loc.region, "street1": loc.street, "zipcode": loc.zipcode}  # fmt: skip
        body = {"id": loc.id, "name": loc.name,
                "contactUser": self.admin_ref,
                "emergencyNumber": number, "address": address, "state": "active", "version": 1,
                "path": [], "addressVerified": True, "addressStored": True,
                "selfUri": f"/api/v2/locations/{loc.id}"}  # fmt: skip
        return Entity(loc.id, loc.name, body)


def _division_ref(d: Division) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "selfUri": f"/api/v2/authorization/divisions/{d.id}"}


def _proficiency(u: User, n: Named, proficiency: float, kind: str) -> dict[str, Any]:
    """A UserRoutingSkill or UserRoutingLanguage (``kind``: skill or language)."""
    plural = f"{kind}s"
    return {"id": n.id, "name": n.name, "proficiency": proficiency, "state": "active",
            f"{kind}Uri": f"/api/v2/routing/{plural}/{n.id}",
            "selfUri": f"/api/v2/users/{u.id}/routing{plural}/{n.id}"}  # fmt: skip


_MEDIA = {"alertingTimeoutSeconds": 8, "serviceLevel": {"percentage": 0.8, "durationMs": 20_000}}
_MEDIA_SETTINGS = {"call": _MEDIA, "callback": _MEDIA, "chat": _MEDIA, "email": _MEDIA,
                   "message": _MEDIA}  # fmt: skip


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _word(rng: random.Random) -> str:
    """A random word, so that a drift-created entity lands anywhere in the name order."""
    return f"{_WORDS[int(rng.random() * len(_WORDS))]} {int(rng.random() * 100)}"


def _drift_factories(r: Renderer) -> dict[str, Factory]:
    """What drift creates in each listing: plausible new entities no conversation mentions."""
    home = r.e.divisions[0].id

    def user(rng: random.Random) -> Entity:
        name = NAMES[int(rng.random() * len(NAMES))]
        user_id = _new_id(rng)
        email = f"{name.replace(' ', '.').lower()}.{user_id[:4]}@sandbox.example.com"
        return r.user(User(user_id, name, email, "Contractor", "Contact Center", home,
                           "active", 1, None, None))  # fmt: skip

    def of(make: Callable[[str, str], Entity]) -> Factory:
        return lambda rng: make(_new_id(rng), _word(rng))

    return {
        "users": user,
        "queues": of(lambda i, w: r.queue(Queue(i, f"{w} Overflow", home, ()))),
        "wrapup-codes": of(lambda i, w: r.wrapup_code(WrapupCode(i, f"{w} Follow-up", home))),
        "divisions": of(lambda i, w: r.division(Division(i, f"{w} Region", False))),
        "groups": of(lambda i, w: r.group(Group(i, f"{w} Project", "A working group", ()))),
        "teams": of(lambda i, w: r.team(Team(i, f"{w} Pod", home))),
        "skills": of(lambda i, w: r.named(Named(i, f"{w} Skill"), SKILLS_PATH)),
        "languages": of(lambda i, w: r.named(Named(i, f"{w} Dialect"), LANGUAGES_PATH)),
        "presence-definitions": of(
            lambda i, w: r.presence(Presence(i, f"{w} Time", "BUSY", False))
        ),
        "flows": of(lambda i, w: r.flow(Flow(i, f"{w} Flow", "INBOUNDCALL", "1.0"))),
        "flow-outcomes": of(lambda i, w: r.flow_part(Named(i, f"{w} Reached"), OUTCOMES_PATH)),
        "flow-milestones": of(lambda i, w: r.flow_part(Named(i, f"{w} Passed"), MILESTONES_PATH)),
        "locations": of(lambda i, w: r.location(Location(i, f"{w} Site", "1 Main St", "Springfield",
                                                         "IL", "62701", "US", "United States",
                                                         "+12175550100"))),
    }  # fmt: skip


def base_listings(r: Renderer) -> dict[str, tuple[list[Entity], Factory]]:
    """Every drifting listing's route name -> (its base entities, its drift factory)."""
    e = r.e
    bases = {
        "users": [r.user(u) for u in e.users],
        "queues": [r.queue(q) for q in e.queues],
        "wrapup-codes": [r.wrapup_code(w) for w in e.wrapup_codes],
        "divisions": [r.division(d) for d in e.divisions],
        "groups": [r.group(g) for g in e.groups],
        "teams": [r.team(t) for t in e.teams],
        "skills": [r.named(s, SKILLS_PATH) for s in e.skills],
        "languages": [r.named(lang, LANGUAGES_PATH) for lang in e.languages],
        "presence-definitions": [r.presence(p) for p in e.presences],
        "flows": [r.flow(f) for f in e.flows],
        "flow-outcomes": [r.flow_part(o, OUTCOMES_PATH) for o in e.flow_outcomes],
        "flow-milestones": [r.flow_part(m, MILESTONES_PATH) for m in e.flow_milestones],
        "locations": [r.location(loc) for loc in e.locations],
    }
    factories = _drift_factories(r)
    return {route: (entities, factories[route]) for route, entities in bases.items()}
