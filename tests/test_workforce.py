"""Workforce management: the unit snapshots equal the sandbox's units, every id in them
resolves, their time zones are real, and a denied permission fails only its datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from exporter.datasets import DATASETS, select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.manifest import Manifest
from genesys_sandbox import FaultRule, Sandbox
from genesys_sandbox.workforce_routes import units_truth
from tests.support import START, days, exporter_settings, sandbox_settings
from tests.test_snapshots import snapshot_lines

UNITS = ("business-units", "management-units", "management-unit-users", "activity-codes")
# Every sandbox route the unit snapshots read (the fault suite injects on these).
UNIT_ROUTES = (*UNITS, "business-units.by-id", "management-units.by-id")


async def take_units(sb: Any, out: Path, datasets: str = "workforce", **sections: Any) -> Any:
    settings = exporter_settings(sb, out, **sections)
    request = ExportRequest(start=None, end=START + days(3), datasets=select(datasets))
    return await export(settings, request, progress=NoProgress())


def exported_units(out: Path) -> dict[str, Any]:
    """The unit snapshots in the shape of the sandbox's ``units_truth``."""
    codes = Counter((c["businessUnitId"], c["id"]) for c in snapshot_lines(out, "activity-codes"))
    users = Counter((u["managementUnitId"], u["id"])
                    for u in snapshot_lines(out, "management-unit-users"))  # fmt: skip
    assert max(codes.values()) == 1 and max(users.values()) == 1
    units = snapshot_lines(out, "management-units")
    return {
        "businessUnits": [
            {"id": bu["id"], "name": bu["name"], "timeZone": bu["settings"]["timeZone"],
             "startDayOfWeek": bu["settings"]["startDayOfWeek"],
             "activityCodeIds": sorted(c for b, c in codes if b == bu["id"]),
             "managementUnits": [
                 {"id": mu["id"], "name": mu["name"], "timeZone": mu["timeZone"],
                  "userIds": sorted(u for m, u in users if m == mu["id"])}
                 for mu in sorted(units, key=lambda m: (m["name"].casefold(), m["id"]))
                 if mu["businessUnitId"] == bu["id"]
             ]}
            for bu in sorted(snapshot_lines(out, "business-units"),
                             key=lambda b: (b["name"].casefold(), b["id"]))
        ]
    }  # fmt: skip


def assert_units_exact(sb: Any, out: Path) -> None:
    """Each unit snapshot holds what the sandbox serves, each entity once."""
    assert exported_units(out) == units_truth(sb.state)


async def test_unit_snapshots_equal_the_sandboxs_units(sandbox, tmp_path) -> None:
    """Business units with their settings, management units with theirs (time zone and
    adherence), each unit's users and activity codes: exactly the sandbox's, each once."""
    summary = await take_units(sandbox, tmp_path)
    assert summary.status == "ok", summary
    assert summary.snapshots == len(UNITS)
    assert_units_exact(sandbox, tmp_path)
    for unit in snapshot_lines(tmp_path, "management-units"):
        assert {"adherenceTargetPercent", "adherenceExceptionThresholdSeconds"} <= set(
            unit["settings"]["adherence"]
        )
    # Listed once, then read each with expand=settings.
    stats = sandbox.stats()
    assert stats.count("business-units.by-id") == 2
    assert stats.count("management-units.by-id") == 3


async def test_every_unit_id_resolves_and_every_time_zone_is_real(sandbox, tmp_path) -> None:
    """Every unit user is a user of the users snapshot (an agent), every management unit
    and activity code names a business unit; every time zone is an Olson zone, one with DST
    and one without."""
    summary = await take_units(sandbox, tmp_path, "workforce,users")
    assert summary.status == "ok", summary
    users = {u["id"]: u for u in snapshot_lines(tmp_path, "users")}
    members = snapshot_lines(tmp_path, "management-unit-users")
    assert members and all(users[m["id"]]["title"] == "Agent" for m in members)
    business = {bu["id"]: bu for bu in snapshot_lines(tmp_path, "business-units")}
    units = snapshot_lines(tmp_path, "management-units")
    assert {m["managementUnitId"] for m in members} == {u["id"] for u in units}
    assert all(u["businessUnitId"] in business for u in units)
    codes = snapshot_lines(tmp_path, "activity-codes")
    assert {c["businessUnitId"] for c in codes} == set(business)
    zones = {ZoneInfo(bu["settings"]["timeZone"]) for bu in business.values()}
    summer, winter = START.replace(month=7), START.replace(month=1)
    assert {z.utcoffset(summer) != z.utcoffset(winter) for z in zones} == {True, False}


async def test_a_denied_wfm_permission_fails_only_its_datasets(tmp_path) -> None:
    """Without wfm:managementUnit:view, management units and their users fail with one line
    each naming the permission; the business units and activity codes complete; exit 3."""
    async with Sandbox(sandbox_settings(denied_permissions=("wfm:managementUnit:view",))) as sb:
        summary = await take_units(sb, tmp_path)
    assert (summary.status, summary.exit_code) == ("denied", 3)
    assert [line.split(":")[0] for line in summary.denied] == [
        "management-unit-users", "management-units"
    ]  # fmt: skip
    assert all("wfm:managementUnit:view" in line for line in summary.denied)
    assert set(Manifest.load(tmp_path).datasets()) == {"business-units", "activity-codes"}


async def test_a_unit_deleted_between_its_listing_and_its_read_is_left_out(
    sandbox, tmp_path
) -> None:
    """A management unit gone (404) when it is read after being listed is not in the
    snapshot, nor are its users (its users' listing is 404 too); the rest is exact."""
    sandbox.add_fault(FaultRule(kind="entity-deleted", routes=("management-units.by-id",),
                                count=1))  # fmt: skip
    summary = await take_units(sandbox, tmp_path)
    assert summary.status == "ok", summary
    assert len(sandbox.state.listings["management-units"].entities) == 2
    assert_units_exact(sandbox, tmp_path)


def test_the_workforce_group_is_in_all_and_not_in_dimensions() -> None:
    """WFM is a product of its own: its datasets are ``workforce`` and ``all``, not
    ``dimensions`` (which an org without WFM would then fail with exit 3)."""
    names = {d.name for d in select("workforce")}
    assert names == set(UNITS)
    assert names <= {d.name for d in select("all")} and set(DATASETS) == {
        d.name for d in select("all")
    }
    assert not names & {d.name for d in select("dimensions")}
