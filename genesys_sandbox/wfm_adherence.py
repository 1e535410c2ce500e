"""Historical adherence, bulk: agents' presence history measured against their published
schedules (genesys-datasets.md §G), as jobs whose results are pre-signed links.

``POST .../adherence/historical/bulk`` ``{timeZone, items: [{managementUnitId, startDate,
endDate, userIds?, includeExceptions?, includeActuals?}]}`` starts a job; ``GET
.../bulk/jobs/{jobId}`` answers Processing until ``job_delay_s`` of sandbox clock has passed,
then Complete with one download link per item, fresh ones at each ask
(WfmHistoricalAdherenceBulkResponse [SRC SDK]). An item spans 31 days at most, 7 with
exceptions [SRC, per-unit routes; the bulk route's codes UNVERIFIED]: a longer one is 400.
The ``job-failed`` fault on ``adherence.bulk`` makes the job end in Error.

A result (WfmHistoricalAdherenceBulkResult) holds, per agent of the unit with scheduled time
in the range: a day's metrics per local day of the request's time zone that holds scheduled
time (scheduled seconds; seconds adherent, in the presence the activity expects: On Queue for
on-queue work, Break for a break, ...; on-queue seconds planned and actual), the exceptions
(each stretch of a scheduled activity spent in another presence: a conversation during a
break, an unplanned spell away) and the actuals (the presence history), offsets in seconds
from the item's startDate, everything cut to the item's range. An exception or actual
belongs to the local day it starts in.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiohttp import web

from genesys_sandbox.call import CALL
from genesys_sandbox.state import SandboxState
from genesys_sandbox.statuses import PRESENCE
from genesys_sandbox.wfm_schedules import planned_spans
from genesys_sandbox.wire import ApiProblem, format_instant, json_response, parse_instant, to_ms
from genesys_sandbox.workforce import WFM, ManagementUnit

BULK = f"{WFM}/adherence/historical/bulk"
MOST_DAYS, MOST_DAYS_WITH_EXCEPTIONS = 31, 7
# The presence each scheduled category expects.
EXPECTED = {"OnQueueWork": "ON_QUEUE", "Break": "BREAK", "Meal": "MEAL", "Meeting": "MEETING",
            "Training": "TRAINING"}  # fmt: skip
CATEGORY_OF = {presence: category for category, presence in EXPECTED.items()}
# WFM names system presences in its own spelling [SRC SDK HistoricalAdherenceExceptionInfo].
WFM_PRESENCE = {"ON_QUEUE": "OnQueue", "AVAILABLE": "Available", "AWAY": "Away", "BUSY": "Busy",
                "OFFLINE": "Offline", "IDLE": "Idle", "MEAL": "Meal", "TRAINING": "Training",
                "MEETING": "Meeting", "BREAK": "Break"}  # fmt: skip
Span = tuple[int, int, str]


class AdherenceJobs:
    """The bulk routes over one ``SandboxState``; jobs live in ``state.adherence_jobs``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def table(self) -> list[tuple[str, str, str, Any]]:
        return [("POST", BULK, "adherence.bulk", self.submit),
                ("GET", f"{BULK}/jobs/{{job_id}}", "adherence.job", self.job)]  # fmt: skip

    async def submit(self, request: web.Request) -> web.Response:
        zone, items = self._query(await request.read())
        job_id = str(uuid.uuid4())
        failed = CALL.get().faulted("job-failed") is not None
        self.state.adherence_jobs[job_id] = (zone, items, self.state.clock.now(), failed)
        return json_response(orjson.dumps({"job": _job(job_id, "Processing")}), status=202)

    async def job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        found = self.state.adherence_jobs.get(job_id)
        if found is None:
            raise ApiProblem.of(404, "not.found")
        zone, items, created, failed = found
        if self.state.clock.now() - created < self.state.settings.job_delay_s:
            return json_response(orjson.dumps({"job": _job(job_id, "Processing")}))
        if failed:
            return json_response(orjson.dumps({"job": _job(job_id, "Error")}))
        links = [self._link(request, adherence_result(self.state, zone, item)) for item in items]
        body = {"job": _job(job_id, "Complete"), "downloadUrls": links}
        return json_response(orjson.dumps(body))

    def _query(self, raw: bytes) -> tuple[str, list[dict[str, Any]]]:
        """The time zone and items; 400 for a query the service would refuse."""
        try:
            body = orjson.loads(raw)
            zone, items = body["timeZone"], list(body["items"])
            ZoneInfo(zone)
            for item in items:
                days = parse_instant(item["endDate"]) - parse_instant(item["startDate"])
                most = MOST_DAYS_WITH_EXCEPTIONS if item.get("includeExceptions") else MOST_DAYS
                if not timedelta(0) < days <= timedelta(days=most):
                    raise ApiProblem(400, "bad.request",
                                     f"An item may span {most} days at most.")  # fmt: skip
                if self.state.listings["management-units"].find(item["managementUnitId"]) is None:
                    raise ApiProblem.of(404, "not.found")
        except (ValueError, KeyError, TypeError, ZoneInfoNotFoundError):
            raise ApiProblem(400, "bad.request", "timeZone and items are required.") from None
        return zone, items

    def _link(self, request: web.Request, body: bytes) -> str:
        token, signature = secrets.token_hex(8), secrets.token_hex(16)
        ttl = self.state.settings.download_ttl_s
        self.state.downloads[token] = (signature, body, self.state.clock.now() + ttl)
        return (f"{request.scheme}://{request.host}/downloads/{token}?X-Amz-Expires={int(ttl)}"
                f"&X-Amz-Signature={signature}")  # fmt: skip


def _job(job_id: str, status: str) -> dict[str, str]:
    return {"id": job_id, "status": status, "selfUri": f"{BULK}/jobs/{job_id}"}


def adherence_result(state: SandboxState, zone: str, item: dict[str, Any]) -> bytes:
    """WfmHistoricalAdherenceBulkResult of one item, as its download holds it."""
    mu = next(m for m in state.workforce.management_units if m.id == item["managementUnitId"])
    start, end = parse_instant(item["startDate"]), parse_instant(item["endDate"])
    users = item.get("userIds")
    results = [_user_result(state, mu, n, zone, start, end, item)
               for n in mu.agents
               if users is None or state.dataset.entities.agents[n].id in users]  # fmt: skip
    found = [r for r in results if r is not None]
    body = {"startDate": format_instant(start), "endDate": format_instant(end),
            "managementUnitId": mu.id, "userResults": found}  # fmt: skip
    return orjson.dumps(body)


def _user_result(
    state: SandboxState, mu: ManagementUnit, n: int, zone: str, start: datetime, end: datetime,
    item: dict[str, Any],
) -> dict[str, Any] | None:  # fmt: skip
    """One agent's result: a day's metrics for each local day holding scheduled time, the
    exceptions and actuals within the range; None when nothing is scheduled in it."""
    s_ms, e_ms = to_ms(start), to_ms(end)
    planned = [(max(a, s_ms), min(b, e_ms), category)
               for shift in state.dataset.schedule.shifts[n]
               for a, b, category in planned_spans(shift) if a < e_ms and b > s_ms]  # fmt: skip
    if not planned:
        return None
    actual = _presence(state, n, s_ms, e_ms)
    misses = list(_exceptions(planned, actual))
    days = [_day(d0, d1, s_ms, planned, actual, misses) for d0, d1 in _days(start, end, zone)]
    days = [d for d in days if d["scheduleLengthSeconds"]]
    adherent = sum(m["adherenceScheduleSeconds"] for m in days)
    scheduled = sum(m["scheduleLengthSeconds"] for m in days)
    result: dict[str, Any] = {
        "userId": state.dataset.entities.agents[n].id,
        "adherencePercentage": _percent(adherent, scheduled),
        "dayMetrics": days,
    }
    if item.get("includeExceptions"):
        result["exceptionInfo"] = [_exception(m, s_ms, mu) for m in misses]
    if item.get("includeActuals"):
        result["actuals"] = [{"actualActivityCategory": CATEGORY_OF.get(v, "Unavailable"),
                              "startOffsetSeconds": (a - s_ms) // 1000,
                              "endOffsetSeconds": (b - s_ms) // 1000}
                             for a, b, v in actual]  # fmt: skip
    return result


def _presence(state: SandboxState, n: int, s_ms: int, e_ms: int) -> list[Span]:
    """The agent's presence in [s_ms, e_ms), clipped."""
    history = state.dataset.statuses
    found = []
    for status in history.statuses:
        if status.user == n and status.kind == PRESENCE and status.overlaps(s_ms, e_ms):
            end = history.present_ms if status.end_ms is None else status.end_ms
            found.append((max(status.start_ms, s_ms), min(end, e_ms), status.value))
    return sorted(found)


def _exceptions(planned: list[Span], actual: list[Span]) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, scheduled category, presence) of each stretch out of adherence."""
    for p0, p1, category in planned:
        for a0, a1, presence in actual:
            lo, hi = max(p0, a0), min(p1, a1)
            if lo < hi and EXPECTED[category] != presence:
                yield lo, hi, category, presence


def _day(
    d0: int, d1: int, s_ms: int, planned: list[Span], actual: list[Span],
    misses: list[tuple[int, int, str, str]],
) -> dict[str, Any]:  # fmt: skip
    scheduled = sum(max(0, min(b, d1) - max(a, d0)) for a, b, _ in planned) // 1000
    missed = sum(max(0, min(b, d1) - max(a, d0)) for a, b, _, _ in misses) // 1000
    on_queue = sum(max(0, min(b, d1) - max(a, d0)) for a, b, v in actual if v == "ON_QUEUE")
    planned_on_queue = sum(max(0, min(b, d1) - max(a, d0))
                           for a, b, c in planned if c == "OnQueueWork") // 1000  # fmt: skip
    starting = [m for m in misses if d0 <= m[0] < d1]
    return {
        "dayStartOffsetSeconds": (d0 - s_ms) // 1000,
        "adherenceScheduleSeconds": scheduled - missed,
        "conformanceScheduleSeconds": planned_on_queue,
        "conformanceActualSeconds": on_queue // 1000,
        "conformancePercentage": _percent(on_queue // 1000, planned_on_queue),
        "exceptionCount": len(starting),
        "exceptionDurationSeconds": sum(b - a for a, b, _, _ in starting) // 1000,
        "scheduleLengthSeconds": scheduled,
        "adherencePercentage": _percent(scheduled - missed, scheduled),
    }


def _exception(miss: tuple[int, int, str, str], s_ms: int, mu: ManagementUnit) -> dict[str, Any]:
    start, end, category, presence = miss
    return {"startOffsetSeconds": (start - s_ms) // 1000, "endOffsetSeconds": (end - s_ms) // 1000,
            "scheduledActivityCodeId": mu.business_unit.activity_codes[category],
            "scheduledActivityCategory": category, "systemPresence": WFM_PRESENCE[presence],
            "actualActivityCategory": CATEGORY_OF.get(presence, "Unavailable"),
            "impact": "Negative"}  # fmt: skip


def _days(start: datetime, end: datetime, zone: str) -> Iterator[tuple[int, int]]:
    """[start, end) of each local day of ``zone`` from ``start`` (a local midnight)."""
    tz = ZoneInfo(zone)
    day = start.astimezone(tz).date()
    while True:
        d0 = datetime.combine(day, datetime.min.time(), tz)
        if d0 >= end:
            return
        day += timedelta(days=1)
        yield to_ms(d0), to_ms(datetime.combine(day, datetime.min.time(), tz))


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0
