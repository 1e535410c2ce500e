"""The entities conversations point at: configuration listings, each taken whole as a snapshot.

None of these endpoints can filter by modification time, so each is a full snapshot. Facts
from genesys-datasets.md §A: paths, paging styles, page sizes (500 is what production code
pages users and queues by; the response's pageSize is authoritative, so a server that uses a
smaller one is followed, and one that refuses 500 naming its largest is asked that), the
permissions the API declares, and a GET-by-id for every listing but queue members.
"""

from __future__ import annotations

from exporter.datasets.base import Listing

_USER_EXPAND = (("expand", "team"), ("expand", "skills"), ("expand", "languages"))
USERS = Listing(
    "users",
    "every user, active, inactive and deleted (old conversations name them), with team, "
    "skills and languages",
    "/api/v2/users",
    permission="",  # none declared (OAuth scopes users, users:readonly)
    params=(("state", "any"), *_USER_EXPAND),
    # GET /api/v2/users/{id} knows two states, active (its default) and deleted [SRC].
    by_id_params=(_USER_EXPAND, (("state", "deleted"), *_USER_EXPAND)),
)
QUEUES = Listing("queues", "routing queues", "/api/v2/routing/queues", "routing:queue:view")
QUEUE_MEMBERS = Listing(
    "queue-members",
    "each queue's members (one line per queue and user, queueId first)",
    "/api/v2/routing/queues/{id}/members",
    "routing:queue:view",
    page_size=100,  # the endpoint's documented maximum [SRC]
    parent=QUEUES,
    parent_key="queueId",
    by_id_params=(),  # no GET for one member: its queue is read again instead
)
WRAPUP_CODES = Listing(
    "wrapup-codes", "wrap-up codes", "/api/v2/routing/wrapupcodes", "routing:wrapupCode:view"
)
DIVISIONS = Listing("divisions", "authorization divisions", "/api/v2/authorization/divisions", "")
GROUPS = Listing("groups", "groups", "/api/v2/groups", "")
TEAMS = Listing(
    "teams", "work teams", "/api/v2/teams", "groups:team:view", offset_paging=False
)  # cursor paging: an `after` cursor carried by nextUri
SKILLS = Listing("skills", "routing skills", "/api/v2/routing/skills", "")
LANGUAGES = Listing("languages", "routing languages", "/api/v2/routing/languages", "")
PRESENCE_DEFINITIONS = Listing(
    "presence-definitions",
    "system and org-defined presences (user details' organizationPresenceId)",
    "/api/v2/presencedefinitions",
    "",
)
FLOWS = Listing("flows", "Architect flows", "/api/v2/flows", "architect:flow:view")
FLOW_OUTCOMES = Listing(
    "flow-outcomes",
    "Architect flow outcomes (what a flow reports it achieved)",
    "/api/v2/flows/outcomes",
    "architect:flowOutcome:view",
)
FLOW_MILESTONES = Listing(
    "flow-milestones",
    "Architect flow milestones (the points a flow reports it passed)",
    "/api/v2/flows/milestones",
    "architect:flowMilestone:view",
)
LOCATIONS = Listing("locations", "the org's locations and their addresses", "/api/v2/locations", "")

LISTINGS: tuple[Listing, ...] = (
    USERS, QUEUES, QUEUE_MEMBERS, WRAPUP_CODES, DIVISIONS, GROUPS, TEAMS, SKILLS, LANGUAGES,
    PRESENCE_DEFINITIONS, FLOWS, FLOW_OUTCOMES, FLOW_MILESTONES, LOCATIONS,
)  # fmt: skip
