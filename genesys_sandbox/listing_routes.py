"""The entity listing endpoints, the org's analytics limits and its data retention setting.

Each listing pages the state's collection for its route (``listings``), in the real endpoint's
paging style; a pageSize above the maximum is served at the maximum, and the response says so
([OBS] clients must take the response's pageSize as authoritative). Pages of drifting listings
are preceded by ``SandboxState.drift``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from genesys_sandbox.listings import PageRequest, cursor_page, numbered_page
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
    ("flows", "/api/v2/flows"),
)
TEAMS = "/api/v2/teams"
USERS = "/api/v2/users"


class ListingRoutes:
    """Listing handlers over one ``SandboxState``; ``table()`` lists them with route names."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def table(self) -> list[tuple[str, str, str, Handler]]:
        rows: list[tuple[str, str, str, Handler]] = [("GET", USERS, "users", self.users)]
        rows += [("GET", path, route, self._numbered(route, path)) for route, path in NUMBERED]
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
        page = self._page_request(request, USERS, self.state.settings.listing_max_page_size)
        found = self.state.listings["users"].entities
        if state != "any":
            found = [e for e in found if e.state == state]
        return json_response(numbered_page(found, page))

    def _numbered(self, route: str, path: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            self.state.drift(route)
            page = self._page_request(request, path, self.state.settings.listing_max_page_size)
            return json_response(numbered_page(self.state.listings[route].entities, page))

        return handler

    async def members(self, request: web.Request) -> web.Response:
        """GET .../queues/{id}/members: pageNumber and nextUri only; 404 for an unknown queue."""
        queue_id = request.match_info["queue_id"]
        members = self.state.members.get(queue_id)
        if members is None:
            if all(e.id != queue_id for e in self.state.listings["queues"].entities):
                raise ApiProblem.of(404, "not.found")
            members = []  # a queue drift created has no members
        path = f"/api/v2/routing/queues/{queue_id}/members"
        page = self._page_request(request, path, self.state.settings.queue_members_max_page_size)
        return json_response(numbered_page(members, page, totals=False))

    async def teams(self, request: web.Request) -> web.Response:
        """GET /api/v2/teams: cursor paging, ``after`` in and in nextUri; no pageNumber."""
        self.state.drift("teams")
        page = self._page_request(request, TEAMS, self.state.settings.listing_max_page_size)
        return json_response(cursor_page(self.state.listings["teams"].entities, page))

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

    def _page_request(self, request: web.Request, path: str, maximum: int) -> PageRequest:
        query = request.query
        expand = frozenset(
            part for value in query.getall("expand", []) for part in value.split(",") if part
        )
        return PageRequest(
            path=path,
            size=min(_positive(query, "pageSize", DEFAULT_PAGE_SIZE), maximum),
            number=_positive(query, "pageNumber", 1),
            after=query.get("after"),
            expand=expand,
            # URIs keep the other parameters in one order, whatever order the client used.
            others=tuple(sorted((k, v) for k, v in query.items() if k not in PAGING_PARAMS)),
        )


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
