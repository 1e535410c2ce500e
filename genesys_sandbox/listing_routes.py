"""The entity listing endpoints (quality forms, locations, flow outcomes and milestones, and the
org's GDPR requests included), their GET-by-id routes, the org's analytics limits and its data
retention setting.

Each listing pages the state's collection for its route (``listings``), in the real endpoint's
paging style; a pageSize above the maximum is served at the maximum, and the response says so
([OBS] clients must take the response's pageSize as authoritative), unless the setting
``listing_refuse_oversize`` names the route: then it is 400 invalid.query.param.value naming
the allowed range. Every listing but queue members has a GET-by-id route (``<path>/{id}``, as
the real API [SRC]) answering the entity as the listing does (``expand`` too), 404 not.found
for an id it does not hold; a form's route also finds the form's published versions, and a
published form's route also takes the form's contextId or its draft's id, answering its
newest published version [UNVERIFIED: the SDK says "the most recent published version"]. The
published-form listings take ``onlyLatestPerContext`` (evaluations) and
``onlyLatestEnabledPerContext`` (surveys) [SRC]. Pages and lookups of drifting listings are
preceded by ``SandboxState.drift``.

In-handler faults: ``empty-listing`` answers a page of an empty collection; ``next-uri-loop``
points nextUri back at the page itself; ``entity-deleted`` deletes the entity the path names
(for queue members, the queue) just before the answer, which is then 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from genesys_sandbox.call import CALL
from genesys_sandbox.gdpr import PATH as GDPR_REQUESTS
from genesys_sandbox.listings import Entity, PageRequest, cursor_page, numbered_page
from genesys_sandbox.quality_json import (
    EVALUATION_FORMS,
    PUBLISHED_EVALUATION_FORMS,
    PUBLISHED_SURVEY_FORMS,
    SURVEY_FORMS,
)
from genesys_sandbox.settings import FORM_LISTINGS
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wire import ApiProblem, format_instant, from_ms, json_response

Handler = Callable[[web.Request], Awaitable[web.Response]]
DEFAULT_PAGE_SIZE = 25
PAGING_PARAMS = frozenset({"pageSize", "pageNumber", "after"})
USER_STATES = ("active", "inactive", "deleted", "any")
# (route, path) of the listings paged by pageNumber with total and pageCount.
NUMBERED = (
    ("queues", "/api/v2/routing/queues"),
    ("wrapup-codes", "/api/v2/routing/wrapupcodes"),
    ("divisions", "/api/v2/authorization/divisions"),
    ("groups", "/api/v2/groups"),
    ("skills", "/api/v2/routing/skills"),
    ("languages", "/api/v2/routing/languages"),
    ("presence-definitions", "/api/v2/presencedefinitions"),
    # Before flows' own GET-by-id, which their paths would otherwise match.
    ("flow-outcomes", "/api/v2/flows/outcomes"),
    ("flow-milestones", "/api/v2/flows/milestones"),
    ("flows", "/api/v2/flows"),
    ("locations", "/api/v2/locations"),
    ("evaluation-forms", EVALUATION_FORMS),
    ("survey-forms", SURVEY_FORMS),
    ("gdpr-requests", GDPR_REQUESTS),
)
# (route, path, the parameter asking for the newest version of each form only) [SRC].
PUBLISHED_FORMS = (
    ("published-evaluation-forms", PUBLISHED_EVALUATION_FORMS, "onlyLatestPerContext"),
    ("published-survey-forms", PUBLISHED_SURVEY_FORMS, "onlyLatestEnabledPerContext"),
)
TEAMS = "/api/v2/teams"
USERS = "/api/v2/users"
# (route, path) of the listings with a GET-by-id route at <path>/{id}, users aside.
LOOKUPS = (*NUMBERED, *((route, path) for route, path, _ in PUBLISHED_FORMS), ("teams", TEAMS))
# The listings a GET-by-id route searches, when more than its own: any version of a form.
SEARCHED = {
    "evaluation-forms": ("evaluation-forms", "published-evaluation-forms"),
    "survey-forms": ("survey-forms", "published-survey-forms"),
}
# [SRC] GET /api/v2/users/{id} knows two states; [INF] active (its default) means "not deleted",
# as inactive users are neither.
USER_LOOKUP_STATES = ("active", "deleted")


class ListingRoutes:
    """Listing handlers over one ``SandboxState``; ``table()`` lists them with route names."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def table(self) -> list[tuple[str, str, str, Handler]]:
        rows: list[tuple[str, str, str, Handler]] = [("GET", USERS, "users", self.users)]
        rows += [("GET", path, route, self._numbered(route, path)) for route, path in NUMBERED]
        rows += [("GET", path, route, self._published(route, path, latest))
                 for route, path, latest in PUBLISHED_FORMS]  # fmt: skip
        rows.append(("GET", f"{USERS}/{{entity_id}}", "users.by-id", self.user))
        rows += [("GET", f"{path}/{{entity_id}}", f"{route}.by-id", self._by_id(route))
                 for route, path in LOOKUPS]  # fmt: skip
        return [
            *rows,
            ("GET", "/api/v2/routing/queues/{queue_id}/members", "queue-members", self.members),
            ("GET", TEAMS, "teams", self.teams),
            ("GET", "/api/v2/organizations/limits/namespaces/{namespace}", "org-limits",
             self.org_limits),
            ("GET", "/api/v2/analytics/dataretention/settings", "data-retention",
             self.data_retention),
        ]  # fmt: skip

    async def users(self, request: web.Request) -> web.Response:
        """GET /api/v2/users: ``state`` (default active) filters; ``expand`` adds what it can."""
        state = request.query.get("state", "active")
        if state not in USER_STATES:
            raise ApiProblem.of(
                400, "invalid.query.param.value", state, "state", ", ".join(USER_STATES)
            )
        self.state.drift("users")
        page = self._page_request(request, "users", USERS)
        found = self._entities("users")
        if state != "any":
            found = [e for e in found if e.state == state]
        return _page_response(numbered_page(found, page))

    def _numbered(self, route: str, path: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            self.state.drift(route)
            page = self._page_request(request, route, path)
            return _page_response(numbered_page(self._entities(route), page))

        return handler

    def _published(self, route: str, path: str, latest: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            page = self._page_request(request, route, path)
            found = self._entities(route)
            if request.query.get(latest, "false").lower() == "true":
                found = _newest_per_context(found)
            return _page_response(numbered_page(found, page))

        return handler

    async def user(self, request: web.Request) -> web.Response:
        """GET /api/v2/users/{id}: ``state`` active (the default) or deleted; ``expand``."""
        state = request.query.get("state", "active")
        if state not in USER_LOOKUP_STATES:
            raise ApiProblem.of(
                400, "invalid.query.param.value", state, "state", ", ".join(USER_LOOKUP_STATES)
            )
        user = self._lookup("users", request)
        if (user.state == "deleted") != (state == "deleted"):
            raise ApiProblem.of(404, "not.found")
        return json_response(orjson.dumps(user.json(expand_values(request.query))))

    def _by_id(self, route: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            entity = self._lookup(route, request)
            return json_response(orjson.dumps(entity.detail_json(expand_values(request.query))))

        return handler

    def _lookup(self, route: str, request: web.Request) -> Entity:
        """The entity the path names (after drift, and the entity-deleted fault); else 404."""
        self.state.drift(route)
        entity_id = request.match_info["entity_id"]
        if route.startswith("published-"):
            entity_id = self.state.form_aliases.get(entity_id, entity_id)
        searched = SEARCHED.get(route, (route,))
        if CALL.get().faulted("entity-deleted"):
            for listing in searched:
                self.state.delete(listing, entity_id)
        for listing in searched:
            entity = self.state.listings[listing].find(entity_id)
            if entity is not None:
                return entity
        raise ApiProblem.of(404, "not.found")

    def _entities(self, route: str) -> Sequence[Entity]:
        """The route's collection, or none under the empty-listing fault."""
        return [] if CALL.get().faulted("empty-listing") else self.state.listings[route].entities

    async def members(self, request: web.Request) -> web.Response:
        """GET .../queues/{id}/members: pageNumber and nextUri only; 404 for an unknown queue."""
        queue_id = request.match_info["queue_id"]
        call = CALL.get()
        if call.faulted("entity-deleted"):
            self.state.delete("queues", queue_id)
        members = self.state.members.get(queue_id)
        if members is None:
            if self.state.listings["queues"].find(queue_id) is None:
                raise ApiProblem.of(404, "not.found")
            members = []  # a queue drift created has no members
        path = f"/api/v2/routing/queues/{queue_id}/members"
        page = self._page_request(request, "queue-members", path)
        members = [] if call.faulted("empty-listing") else members
        return _page_response(numbered_page(members, page, totals=False))

    async def teams(self, request: web.Request) -> web.Response:
        """GET /api/v2/teams: cursor paging, ``after`` in and in nextUri; no pageNumber."""
        self.state.drift("teams")
        page = self._page_request(request, "teams", TEAMS)
        return _page_response(cursor_page(self._entities("teams"), page))

    async def org_limits(self, request: web.Request) -> web.Response:
        """The org's effective limits in a namespace the sandbox models; 404 otherwise [INF]."""
        namespace = request.match_info["namespace"]
        limits = _limits(self.state, namespace)
        if limits is None:
            raise ApiProblem.of(404, "not.found")
        entities = [{"key": k, "namespace": namespace, "value": v} for k, v in limits.items()]
        return json_response(orjson.dumps({"entities": entities}))

    async def data_retention(self, request: web.Request) -> web.Response:
        created = format_instant(from_ms(self.state.dataset.spec.start_ms - 400 * 86_400_000))
        body = {"retentionDays": self.state.settings.retention_days, "dateCreated": created,
                "dateModified": created}  # fmt: skip
        return json_response(orjson.dumps(body))

    def _page_request(self, request: web.Request, route: str, path: str) -> PageRequest:
        query, s = request.query, self.state.settings
        maximum = s.listing_max_page_size
        if route == "queue-members":
            maximum = s.queue_members_max_page_size
        elif route in FORM_LISTINGS:
            maximum = s.form_max_page_size
        size = _positive(query, "pageSize", DEFAULT_PAGE_SIZE)
        if size > maximum and s.refuses_oversize(route):
            raise _oversize(query["pageSize"], maximum)
        return PageRequest(
            path=path,
            size=min(size, maximum),
            number=_positive(query, "pageNumber", 1),
            after=query.get("after"),
            expand=expand_values(query),
            # URIs keep the other parameters in one order, whatever order the client used.
            others=tuple(sorted((k, v) for k, v in query.items() if k not in PAGING_PARAMS)),
        )


def expand_values(query: Any) -> frozenset[str]:
    """``expand`` values, comma-separated or repeated."""
    return frozenset(
        part for value in query.getall("expand", []) for part in value.split(",") if part
    )


def _newest_per_context(forms: Sequence[Entity]) -> list[Entity]:
    """Each form's newest published version (the latest modifiedDate of its contextId)."""
    newest: dict[str, Entity] = {}
    for form in forms:
        seen = newest.get(form.body["contextId"])
        if seen is None or form.body["modifiedDate"] > seen.body["modifiedDate"]:
            newest[form.body["contextId"]] = form
    return [form for form in forms if newest[form.body["contextId"]] is form]


def _page_response(body: bytes) -> web.Response:
    """A listing page, its nextUri pointing back at itself under the next-uri-loop fault."""
    if CALL.get().faulted("next-uri-loop"):
        page = orjson.loads(body)
        page["nextUri"] = page["selfUri"]
        body = orjson.dumps(page)
    return json_response(body)


def _oversize(text: str, maximum: int) -> ApiProblem:
    """[UNVERIFIED] the refusal of a pageSize above the maximum: the catalogue's
    invalid.query.param.value, its parameters also given by name (key names composed)."""
    allowed = f"1-{maximum}"
    params = {"value": text, "parameter": "pageSize", "allowed": allowed}
    template = (
        "Value [{value}] is not valid for parameter [{parameter}]. Allowable values are: {allowed}"
    )
    return ApiProblem.of(
        400, "invalid.query.param.value", text, "pageSize", allowed,
        extra={"messageWithParams": template, "messageParams": params},
    )  # fmt: skip


def _positive(query: Any, name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ApiProblem.of(400, "invalid.query.param.value", text, name, "positive integers")
    return value


def _limits(state: SandboxState, namespace: str) -> dict[str, int] | None:
    """The limits the sandbox enforces, under the keys the platform is seen to use [OBS]."""
    s = state.settings
    if namespace == "analytics":
        return {"details.jobs.concurrent.access.max": s.max_concurrent_jobs}
    if namespace == "platform.api":
        budget = s.rate_per_minute
        keys = ("client.credentials.token.rate.per.minute", "token.rate.per.minute")
        rate = {} if budget is None else dict.fromkeys(keys, budget)
        return {**rate, "request.bytes.max": 512_000}
    return None
