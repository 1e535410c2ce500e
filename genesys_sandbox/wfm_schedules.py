"""Published agent schedules: the WFM schedule search, its three shapes of answer, and the
pre-signed links it gives (genesys-datasets.md §G).

The schedules are the agents' shifts (``schedule.Shift``): the very shifts their presence
history is built from, so the two agree. A shift's planned stretches (break, meal, meeting,
training) are activities of their own codes and the rest of it is on-queue work; a spell
away or busy is not planned (the agent is scheduled on queue then). ``POST
.../businessunits/{buId}/agentschedules/search`` ``{startDate, endDate, userIds?}`` answers
every shift overlapping the range, per agent of the unit's management units, as
``{status, operationId, result | downloadUrl}`` [SRC]: inline, as a download link, or
asynchronously (``schedule_search_mode``). How an asynchronous search is followed is not
documented (a notification topic): here asking the same search again answers Processing
until ``schedule_async_asks`` asks have been made, then the link [UNVERIFIED].

A download link is ``/downloads/{token}`` on the sandbox's own host with a signature in its
query: it takes no bearer token (one sent is refused, as S3 refuses two authentications),
counts against no rate limit, and answers 403 once ``download_ttl_s`` of sandbox clock has
passed, or under the ``link-expired`` fault.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from genesys_sandbox.call import CALL
from genesys_sandbox.entities import User
from genesys_sandbox.schedule import Shift
from genesys_sandbox.state import SandboxState
from genesys_sandbox.wire import (
    ApiProblem,
    format_instant,
    from_ms,
    json_response,
    parse_instant,
    to_ms,
)
from genesys_sandbox.workforce import ACTIVITY_CODES, SCHEDULED, WFM, BusinessUnit

SEARCH = f"{WFM}/businessunits/{{unit_id}}/agentschedules/search"
DOWNLOADS = "/downloads/{token}"
_SEARCH_MAX_DAYS = 31  # [UNVERIFIED] the longest range a search takes
_PAID = {category: paid for _, category, paid in ACTIVITY_CODES}
_NAMES = {category: name for name, category, _ in ACTIVITY_CODES}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MINUTE_MS = 60_000


class ScheduleSearch:
    """The search and download handlers over one ``SandboxState``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def table(self) -> list[tuple[str, str, str, Any]]:
        return [("POST", SEARCH, "schedules.search", self.search),
                ("GET", DOWNLOADS, "download", self.download)]  # fmt: skip

    async def search(self, request: web.Request) -> web.Response:
        unit = self._unit(request.match_info["unit_id"])
        start_ms, end_ms, users = _search_body(await request.read())
        key = f"{unit.id}/{start_ms}/{end_ms}/{sorted(users or ())}"
        operation = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
        schedules = agent_schedules(self.state, unit, start_ms, end_ms, users)
        mode = self._mode(len(schedules))
        if mode == "async" and self._still_processing(key):
            return _answer({"status": "Processing", "operationId": operation})
        result = {"agentSchedules": schedules,
                  "businessUnitTimeZone": unit.time_zone,
                  "publishedSchedules": _published(unit, start_ms, end_ms)}  # fmt: skip
        answer: dict[str, Any] = {"status": "Complete", "operationId": operation}
        if mode == "inline":
            answer["result"] = result
        else:
            answer["downloadUrl"] = self._link(request, orjson.dumps(result))
        return _answer(answer)

    async def download(self, request: web.Request) -> web.Response:
        """A pre-signed link: refused with a token, 403 once expired, else its bytes."""
        if "Authorization" in request.headers:
            return _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        stored = self.state.downloads.get(request.match_info["token"])
        signed = stored is not None and request.query.get("X-Amz-Signature") == stored[0]
        if not signed or stored is None:
            return _s3_error(403, "AccessDenied", "Access Denied")
        if CALL.get().faulted("link-expired") or self.state.clock.now() > stored[2]:
            return _s3_error(403, "AccessDenied", "Request has expired")
        return web.Response(body=stored[1], content_type="application/json")

    def _unit(self, unit_id: str) -> BusinessUnit:
        unit = next((u for u in self.state.workforce.business_units if u.id == unit_id), None)
        if unit is None or self.state.listings["business-units"].find(unit_id) is None:
            raise ApiProblem.of(404, "not.found")
        return unit

    def _mode(self, schedules: int) -> str:
        s = self.state.settings
        if s.schedule_search_mode != "auto":
            return s.schedule_search_mode
        return "inline" if schedules <= s.schedule_inline_max_agents else "download"

    def _still_processing(self, key: str) -> bool:
        """Whether this ask of an asynchronous search is answered Processing."""
        asks = self.state.search_asks.get(key, 0) + 1
        self.state.search_asks[key] = asks
        return asks <= self.state.settings.schedule_async_asks

    def _link(self, request: web.Request, body: bytes) -> str:
        token, signature = secrets.token_hex(8), secrets.token_hex(16)
        ttl = self.state.settings.download_ttl_s
        self.state.downloads[token] = (signature, body, self.state.clock.now() + ttl)
        origin = f"{request.scheme}://{request.host}"
        return (f"{origin}/downloads/{token}?X-Amz-Expires={int(ttl)}"
                f"&X-Amz-Signature={signature}")  # fmt: skip


def agent_schedules(
    state: SandboxState, unit: BusinessUnit, start_ms: int, end_ms: int,
    users: frozenset[str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Each agent of ``unit`` with a shift overlapping [start_ms, end_ms): BuAgentSchedule
    JSON, agents in their management units' order."""
    agents, found = state.dataset.entities.agents, []
    for mu in state.workforce.units_of(unit.id):
        if state.listings["management-units"].find(mu.id) is None:
            continue
        for n in mu.agents:
            agent = agents[n]
            shifts = [s for s in state.dataset.schedule.shifts[n]
                      if s.start_ms < end_ms and s.end_ms > start_ms]  # fmt: skip
            if shifts and (users is None or agent.id in users):
                found.append(_agent_schedule(unit, agent, shifts))
    return found


def shift_id(user_id: str, start_ms: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shift/{user_id}/{start_ms}"))


def _agent_schedule(unit: BusinessUnit, agent: User, shifts: list[Shift]) -> dict[str, Any]:
    return {"user": {"id": agent.id, "selfUri": f"/api/v2/users/{agent.id}"},
            "shifts": [_shift(unit, agent, s) for s in shifts],
            "fullDayTimeOffMarkers": []}  # fmt: skip


def _shift(unit: BusinessUnit, agent: User, shift: Shift) -> dict[str, Any]:
    week = _week_of(unit, shift.start_ms)
    return {
        "id": shift_id(agent.id, shift.start_ms),
        "startDate": format_instant(from_ms(shift.start_ms)),
        "lengthMinutes": (shift.end_ms - shift.start_ms) // _MINUTE_MS,
        "activities": list(_activities(unit, shift)),
        "manuallyEdited": False,
        "schedule": {"id": _schedule_id(unit, week), "weekDate": week.isoformat()},
    }


def _activities(unit: BusinessUnit, shift: Shift) -> Iterator[dict[str, Any]]:
    for start, end, category in planned_spans(shift):
        yield _activity(unit, start, end, category)


def planned_spans(shift: Shift) -> list[tuple[int, int, str]]:
    """The shift as contiguous (start, end, category) activities: its planned stretches,
    on-queue work between."""
    spans, at = [], shift.start_ms
    planned = [(a, b, SCHEDULED[p]) for a, b, p in shift.away if p in SCHEDULED]
    for start, end, category in [*planned, (shift.end_ms, shift.end_ms, "")]:
        if start > at:
            spans.append((at, start, "OnQueueWork"))
        if category:
            spans.append((start, end, category))
        at = max(at, end)
    return spans


def _activity(unit: BusinessUnit, start: int, end: int, category: str) -> dict[str, Any]:
    return {
        "startDate": format_instant(from_ms(start)),
        "lengthMinutes": (end - start) // _MINUTE_MS,
        "description": _NAMES[category],
        "activityCodeId": unit.activity_codes[category],
        "paid": _PAID[category],
    }


def _week_of(unit: BusinessUnit, at_ms: int) -> date:
    """The first day of the unit's week holding the instant, in its time zone."""
    local = from_ms(at_ms).astimezone(ZoneInfo(unit.time_zone)).date()
    back = (local.weekday() - _WEEKDAYS.index(unit.start_day)) % 7
    return local - timedelta(days=back)


def _schedule_id(unit: BusinessUnit, week: date) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"schedule/{unit.id}/{week.isoformat()}"))


def _published(unit: BusinessUnit, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """The weekly schedules the range touches (each published, one week long)."""
    first, last = _week_of(unit, start_ms), _week_of(unit, end_ms - 1)
    weeks = [first + timedelta(weeks=k) for k in range((last - first).days // 7 + 1)]
    return [{"id": _schedule_id(unit, w), "weekDate": w.isoformat(), "weekCount": 1}
            for w in weeks]  # fmt: skip


def _search_body(raw: bytes) -> tuple[int, int, frozenset[str] | None]:
    """startDate and endDate (epoch ms) and userIds; 400 for a body that is not one."""
    try:
        body = orjson.loads(raw)
        start, end = parse_instant(body["startDate"]), parse_instant(body["endDate"])
    except (ValueError, KeyError, TypeError, ApiProblem):
        raise ApiProblem(400, "bad.request", "startDate and endDate are required ISO-8601 "
                         "instants.") from None  # fmt: skip
    if not start < end <= start + timedelta(days=_SEARCH_MAX_DAYS):
        raise ApiProblem(400, "bad.request", f"The range must be 1 ms to {_SEARCH_MAX_DAYS} days.")
    users = body.get("userIds")
    return to_ms(start), to_ms(end), None if users is None else frozenset(users)


def _answer(body: dict[str, Any]) -> web.Response:
    return json_response(orjson.dumps(body))


def _s3_error(status: int, code: str, message: str) -> web.Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


def shift_truth(state: SandboxState, start_ms: int, end_ms: int) -> list[list[str]]:
    """[businessUnitId, userId, shiftId, startDate] of every published shift starting in
    [start_ms, end_ms), per unit in its management units' order."""
    found = []
    for unit in state.workforce.business_units:
        for schedule in agent_schedules(state, unit, start_ms, end_ms):
            for shift in schedule["shifts"]:
                if start_ms <= to_ms(parse_instant(shift["startDate"])) < end_ms:
                    user = schedule["user"]["id"]
                    found.append([unit.id, user, shift["id"], shift["startDate"]])
    return found
