"""Workforce management: the units agents are planned in, taken as snapshots.

Facts from genesys-datasets.md §G [SRC]: ``GET /api/v2/workforcemanagement/businessunits``
lists the business units with no paging and no settings; ``GET .../businessunits/{buId}``
with ``expand=settings`` adds the unit's ``timeZone`` and ``startDayOfWeek``. So the business
units are listed, then each is read (``read_each``). A business unit's management units are
listed under it and read likewise (``GET .../managementunits/{muId}?expand=settings``: the time
zone and the adherence settings); a management unit's users and a business unit's activity
codes are listed under them. Schedules and adherence are defined in a unit's local days: the
time zones here are what the tables turn them back into with.

The permissions are not in our notes: the names below follow the pattern of the WFM
permissions the notes do give (``wfm:schedule:view``, ``wfm:historicalAdherence:view``).
UNVERIFIED, each: a 403 names what the service wants, and the denied message repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from exporter.datasets.base import BulkUnitDays, Listing, UnitDay, UnitDays
from exporter.windows import format_instant, parse_api_instant

WFM = "/api/v2/workforcemanagement"
_SETTINGS = ((("expand", "settings"),),)

BUSINESS_UNITS = Listing(
    "business-units",
    "WFM business units, each with its settings: time zone and first day of the week",
    f"{WFM}/businessunits",
    "wfm:businessUnit:view",  # UNVERIFIED
    by_id_params=_SETTINGS,
    read_each=True,
)
MANAGEMENT_UNITS = Listing(
    "management-units",
    "each business unit's management units with their settings: time zone and adherence "
    "(businessUnitId first)",
    f"{WFM}/businessunits/{{id}}/managementunits",
    "wfm:managementUnit:view",  # UNVERIFIED
    parent=BUSINESS_UNITS,
    parent_key="businessUnitId",
    by_id_params=_SETTINGS,
    by_id_path=f"{WFM}/managementunits/{{id}}",
    read_each=True,
)
MANAGEMENT_UNIT_USERS = Listing(
    "management-unit-users",
    "which agent belongs to which management unit (one line per unit and user, "
    "managementUnitId first)",
    f"{WFM}/managementunits/{{id}}/users",
    "wfm:managementUnit:view",  # UNVERIFIED
    parent=MANAGEMENT_UNITS,
    parent_key="managementUnitId",
    by_id_params=(),  # no GET of one unit's user: the unit is read again instead
)
ACTIVITY_CODES = Listing(
    "activity-codes",
    "each business unit's activity codes (what a scheduled activity is: on queue, break, meal, "
    "...; businessUnitId first)",
    f"{WFM}/businessunits/{{id}}/activitycodes",
    "wfm:activityCode:view",  # UNVERIFIED
    parent=BUSINESS_UNITS,
    parent_key="businessUnitId",
    by_id_params=(),
)


def _time_zone(unit: dict[str, Any]) -> str:
    return str(unit["settings"]["timeZone"])


def _search(day: UnitDay) -> dict[str, Any]:
    return {"startDate": format_instant(day.start), "endDate": format_instant(day.end)}


def schedule_lines(result: dict[str, Any], day: UnitDay) -> list[bytes]:
    """One line per agent with a shift starting in the unit-day (or a full-day time off on
    its date): the API's agent schedule with ``businessUnitId`` and ``date`` first, its shifts
    kept to those that start in the day, so a shift crossing midnight is in one day only, the
    one it starts in. Sorted by user id."""
    lines = []
    start, end = _ms(day.start), _ms(day.end)
    for schedule in result.get("agentSchedules") or ():
        shifts = [s for s in schedule.get("shifts") or ()
                  if start <= parse_api_instant(s["startDate"]) < end]  # fmt: skip
        markers = [m for m in schedule.get("fullDayTimeOffMarkers") or ()
                   if m.get("businessUnitDate") == day.date.isoformat()]  # fmt: skip
        if shifts or markers:
            head = {"businessUnitId": day.unit_id, "date": day.date.isoformat()}
            line = {**head, **schedule, "shifts": shifts, "fullDayTimeOffMarkers": markers}
            lines.append((schedule["user"]["id"], orjson.dumps(line)))
    return [line for _, line in sorted(lines)]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


SCHEDULES = UnitDays(
    "schedules",
    "published agent schedules: one line per agent and unit-local day, with the shifts that "
    "start that day and their activities",
    "wfm:publishedSchedule:view",  # [SRC] or wfm:schedule:view: either will do
    BUSINESS_UNITS,
    f"{WFM}/businessunits/{{id}}/agentschedules/search",
    _time_zone,
    _search,
    schedule_lines,
)

# At most 31 days per item, 7 with exceptions [SRC for the per-unit routes; the bulk route's
# limit is UNVERIFIED]: exceptions are asked for, so 7.
ADHERENCE_SPAN_DAYS = 7


def _adherence_job(zone: str, items: Sequence[tuple[str, UnitDay, UnitDay]]) -> dict[str, Any]:
    return {"timeZone": zone, "items": [
        {"managementUnitId": unit, "startDate": format_instant(first.start),
         "endDate": format_instant(last.end), "includeExceptions": True, "includeActuals": True}
        for unit, first, last in items
    ]}  # fmt: skip


def _at(start_ms: int, seconds: int) -> str:
    return format_instant(datetime.fromtimestamp(start_ms / 1000, UTC) + timedelta(seconds=seconds))


def _dated(entry: dict[str, Any], start_ms: int) -> dict[str, Any]:
    """An exception or actual with its offsets (from the job item's start, which depends on
    how days were grouped into jobs) replaced by the instants they mean."""
    rest = {k: v for k, v in entry.items() if k not in ("startOffsetSeconds", "endOffsetSeconds")}
    return {"startDate": _at(start_ms, entry["startOffsetSeconds"]),
            "endDate": _at(start_ms, entry["endOffsetSeconds"]), **rest}  # fmt: skip


def adherence_lines(result: dict[str, Any], day: UnitDay) -> list[bytes]:
    """One line per agent with a day's metrics in the unit-day: ``managementUnitId``, ``date``,
    ``userId``, the day's ``metrics`` (with its ``startDate``), and the ``exceptions`` and
    ``actuals`` that start in the day, each with its instants (``startDate``, ``endDate``)
    instead of offsets, so a line is the same however the days were grouped into jobs."""
    start_ms, lines = parse_api_instant(result["startDate"]), []
    lo, hi = _ms(day.start), _ms(day.end)

    def inside(seconds: int) -> bool:
        return lo <= start_ms + seconds * 1000 < hi

    for user in result.get("userResults") or ():
        metrics = [m for m in user.get("dayMetrics") or () if inside(m["dayStartOffsetSeconds"])]
        if not metrics:
            continue
        (metric,) = metrics
        rest = {k: v for k, v in metric.items() if k != "dayStartOffsetSeconds"}
        day_metrics = {"startDate": _at(start_ms, metric["dayStartOffsetSeconds"]), **rest}
        line = {"managementUnitId": result["managementUnitId"], "date": day.date.isoformat(),
                "userId": user["userId"], "metrics": day_metrics,
                "exceptions": [_dated(e, start_ms) for e in user.get("exceptionInfo") or ()
                               if inside(e["startOffsetSeconds"])],
                "actuals": [_dated(a, start_ms) for a in user.get("actuals") or ()
                            if inside(a["startOffsetSeconds"])]}  # fmt: skip
        lines.append((user["userId"], orjson.dumps(line)))
    return [line for _, line in sorted(lines)]


ADHERENCE = BulkUnitDays(
    "adherence",
    "historical adherence: one line per agent and management-unit-local day, with the day's "
    "metrics, exceptions and actual presence",
    "wfm:historicalAdherence:view",  # [SRC]
    MANAGEMENT_UNITS,
    f"{WFM}/adherence/historical/bulk",
    f"{WFM}/adherence/historical/bulk/jobs/{{id}}",
    ADHERENCE_SPAN_DAYS,
    # A management unit's own time zone is "moving to the business unit" [SRC SDK]: where it
    # names none, its business unit's applies.
    lambda unit: str(unit.get("timeZone") or ""),
    _adherence_job,
    adherence_lines,
    parent_time_zone=_time_zone,
)

UNITS: tuple[Listing, ...] = (
    BUSINESS_UNITS, MANAGEMENT_UNITS, MANAGEMENT_UNIT_USERS, ACTIVITY_CODES,
)  # fmt: skip
