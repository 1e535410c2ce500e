"""The workforce management unit routes: business units, management units, their users, and
activity codes (genesys-datasets.md §G [SRC]).

None of the listings pages [SRC: "no paging"]: each answers every entity at once (paging
parameters are ignored). A business unit and a management unit are also read by id, ``expand``
adding ``settings``. The listing faults apply as to the other listings: ``empty-listing``
answers nothing, ``next-uri-loop`` adds a nextUri pointing back at the page, and
``entity-deleted`` deletes the unit a by-id path names just before it is read (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from genesys_sandbox.call import CALL
from genesys_sandbox.listing_routes import expand_values
from genesys_sandbox.listings import Entity
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wire import ApiProblem, json_response
from genesys_sandbox.workforce import WFM, listing_body

Handler = Callable[[web.Request], Awaitable[web.Response]]
BUSINESS_UNITS = f"{WFM}/businessunits"
MANAGEMENT_UNITS = f"{WFM}/managementunits"


class WorkforceRoutes:
    """WFM unit handlers over one ``SandboxState``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def table(self) -> list[tuple[str, str, str, Handler]]:
        return [
            ("GET", BUSINESS_UNITS, "business-units", self.business_units),
            ("GET", f"{BUSINESS_UNITS}/{{entity_id}}", "business-units.by-id",
             self._by_id("business-units")),
            ("GET", f"{BUSINESS_UNITS}/{{unit_id}}/managementunits", "management-units",
             self.management_units),
            ("GET", f"{BUSINESS_UNITS}/{{unit_id}}/activitycodes", "activity-codes",
             self.activity_codes),
            ("GET", f"{MANAGEMENT_UNITS}/{{entity_id}}", "management-units.by-id",
             self._by_id("management-units")),
            ("GET", f"{MANAGEMENT_UNITS}/{{unit_id}}/users", "management-unit-users",
             self.unit_users),
        ]  # fmt: skip

    async def business_units(self, request: web.Request) -> web.Response:
        units = self.state.listings["business-units"].entities
        return _listing(request, units, BUSINESS_UNITS, with_self=False)

    async def management_units(self, request: web.Request) -> web.Response:
        bu = self._unit("business-units", request)
        units = [e for e in self.state.listings["management-units"].entities
                 if e.body["businessUnit"]["id"] == bu.id]  # fmt: skip
        return _listing(request, units, f"{BUSINESS_UNITS}/{bu.id}/managementunits")

    async def activity_codes(self, request: web.Request) -> web.Response:
        bu = self._unit("business-units", request)
        codes = self.state.wfm_codes[bu.id]
        return _listing(request, codes, f"{BUSINESS_UNITS}/{bu.id}/activitycodes", with_self=False)

    async def unit_users(self, request: web.Request) -> web.Response:
        mu = self._unit("management-units", request)
        users = self.state.wfm_users[mu.id]
        return _listing(request, users, f"{MANAGEMENT_UNITS}/{mu.id}/users", with_self=False)

    def _by_id(self, route: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            entity_id = request.match_info["entity_id"]
            if CALL.get().faulted("entity-deleted"):
                self.state.delete(route, entity_id)
            entity = self.state.listings[route].find(entity_id)
            if entity is None:
                raise ApiProblem.of(404, "not.found")
            return json_response(orjson.dumps(entity.json(expand_values(request.query))))

        return handler

    def _unit(self, route: str, request: web.Request) -> Entity:
        """The unit a listing's path names; 404 when there is none (or no longer)."""
        entity = self.state.listings[route].find(request.match_info["unit_id"])
        if entity is None:
            raise ApiProblem.of(404, "not.found")
        return entity


def _listing(
    request: web.Request, entities: Sequence[Entity], path: str, *, with_self: bool = True
) -> web.Response:
    """The listing; ``with_self``: its model has a selfUri (the SDK would drop one it has not)."""
    call = CALL.get()
    body = listing_body([] if call.faulted("empty-listing") else entities,
                        path if with_self else None, expand_values(request.query))  # fmt: skip
    if call.faulted("next-uri-loop"):
        body["nextUri"] = path
    return json_response(orjson.dumps(body))


def units_truth(state: SandboxState) -> dict[str, Any]:
    """What the unit routes serve now: each business unit with its time zone, first day of
    the week, activity code ids and management units (time zone, user ids), ids sorted."""
    units = state.listings["management-units"].entities
    return {
        "businessUnits": [
            {"id": bu.id, "name": bu.name, "timeZone": bu.expansions["settings"]["timeZone"],
             "startDayOfWeek": bu.expansions["settings"]["startDayOfWeek"],
             "activityCodeIds": sorted(e.id for e in state.wfm_codes[bu.id]),
             "managementUnits": [
                 {"id": mu.id, "name": mu.name,
                  "timeZone": mu.body.get("timeZone", bu.expansions["settings"]["timeZone"]),
                  "userIds": sorted(e.id for e in state.wfm_users[mu.id])}
                 for mu in units if mu.body["businessUnit"]["id"] == bu.id
             ]}
            for bu in state.listings["business-units"].entities
        ]
    }  # fmt: skip
