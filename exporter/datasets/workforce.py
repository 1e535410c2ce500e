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

from exporter.datasets.base import Listing

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

UNITS: tuple[Listing, ...] = (
    BUSINESS_UNITS, MANAGEMENT_UNITS, MANAGEMENT_UNIT_USERS, ACTIVITY_CODES,
)  # fmt: skip
