"""Workforce management: the unit snapshots equal the sandbox's units, every id in them
resolves, their time zones are real, and a denied permission fails only its datasets."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import orjson
import pytest

from exporter.datasets import DATASETS, UnitDays, select
from exporter.engine.kinds.unit_days import due_dates, spans, unit_day
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest, WindowRecord
from exporter.windows import format_instant
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from genesys_sandbox.wfm_adherence import adherence_result
from genesys_sandbox.wfm_schedules import shift_truth
from genesys_sandbox.wire import to_ms
from genesys_sandbox.workforce_routes import units_truth
from tests.support import (
    START,
    cli,
    cli_env,
    data_files,
    days,
    exporter_settings,
    sandbox_settings,
    stop_after,
)
from tests.test_snapshots import snapshot_lines

UNITS = ("business-units", "management-units", "management-unit-users", "activity-codes")
# Every sandbox route the unit snapshots read (the fault suite injects on these).
UNIT_ROUTES = (*UNITS, "business-units.by-id", "management-units.by-id")


async def take_units(sb: Any, out: Path, datasets: str = ",".join(UNITS), **sections: Any) -> Any:
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
    summary = await take_units(sandbox, tmp_path, ",".join((*UNITS, "users")))
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
    assert names == {*UNITS, "schedules", "adherence"}
    assert names <= {d.name for d in select("all")} and set(DATASETS) == {
        d.name for d in select("all")
    }
    assert not names & {d.name for d in select("dimensions")}


# ---- schedules -------------------------------------------------------------------------------

# 31 October to 2 November: America/New_York's clocks go back on 1 November 2026, a 25-hour day.
SCHEDULE_DAYS = (date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2))
FAST_SEARCHES = {"search_poll_s": 0.0}


async def export_schedules(sb: Any, out: Path, *, force: bool = False, **sections: Any) -> Any:
    settings = exporter_settings(sb, out, **{"workforce": FAST_SEARCHES, **sections})
    start = datetime.combine(SCHEDULE_DAYS[0], time(), UTC)
    request = ExportRequest(start, start + days(3), force, datasets=select("schedules"))
    return await export(settings, request, progress=NoProgress())


def schedule_truth(
    sb: Any, dates: tuple[date, ...] = SCHEDULE_DAYS
) -> Counter[tuple[str, str, str, str]]:
    """(unit, local date, user, shift) of every published shift starting in the days, each
    dated by its start in its business unit's time zone."""
    units, shifts = _ground_truth(sb, datetime.combine(dates[0], time(), UTC) - days(1),
                                  datetime.combine(dates[-1], time(), UTC) + days(2))  # fmt: skip
    zones = {bu["id"]: ZoneInfo(bu["timeZone"]) for bu in units["businessUnits"]}
    found: Counter[tuple[str, str, str, str]] = Counter()
    for unit, user, shift, start in shifts:
        local = datetime.fromisoformat(start).astimezone(zones[unit]).date()
        if local in dates:
            found[(unit, local.isoformat(), user, shift)] += 1
    return found


def _ground_truth(sb: Any, start: datetime, end: datetime) -> tuple[dict[str, Any], list[Any]]:
    """The sandbox's units and its shifts starting in [start, end): read in process, or from
    its ground-truth routes when it runs in a thread of its own."""
    if isinstance(sb, Sandbox):
        return units_truth(sb.state), shift_truth(sb.state, to_ms(start), to_ms(end))
    query = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    with (
        urlopen(f"{sb.url}/sandbox/workforce/units") as units,
        urlopen(f"{sb.url}/sandbox/workforce/shifts?{query}") as shifts,
    ):
        return orjson.loads(units.read()), orjson.loads(shifts.read())["shifts"]


def exported_schedules(
    out: Path, dates: tuple[date, ...] = SCHEDULE_DAYS
) -> Counter[tuple[str, str, str, str]]:
    """The same of the exported files, checking each agent-day is one line, in its date's
    file, and each date complete."""
    found: Counter[tuple[str, str, str, str]] = Counter()
    agent_days: Counter[tuple[str, str, str]] = Counter()
    records = Manifest.load(out).records("schedules")
    assert [(r.name, r.status, r.source) for r in records] == [
        (d.isoformat(), "complete", "search") for d in dates
    ]
    for record in records:
        assert record.file is not None
        for raw in read_records(out / record.file):
            line = orjson.loads(raw)
            assert line["date"] == record.name
            agent_days[(line["businessUnitId"], line["date"], line["user"]["id"])] += 1
            for shift in line["shifts"]:
                key = (line["businessUnitId"], line["date"], line["user"]["id"], shift["id"])
                found[key] += 1
    assert agent_days and max(agent_days.values()) == 1
    return found


def assert_schedules_exact(sb: Any, out: Path, dates: tuple[date, ...] = SCHEDULE_DAYS) -> None:
    """Every published shift of ``dates`` once, in its unit-local date's file; nothing else."""
    exported = exported_schedules(out, dates)
    assert exported == schedule_truth(sb, dates) and max(exported.values()) == 1


def schedule_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "schedules").glob("*.jsonl"))}


async def test_schedules_equal_the_truth_across_a_dst_change_each_agent_day_once(
    sandbox, tmp_path
) -> None:
    """Three dates across America/New_York's change to standard time: every published shift
    is in the file of the local date it starts on, in its unit's time zone, once; each agent
    has one line per unit-day; the New York day of the change is 25 hours long."""
    summary = await export_schedules(sandbox, tmp_path)
    assert summary.status == "ok", summary.failed_windows
    assert_schedules_exact(sandbox, tmp_path)
    york = next(bu for bu in sandbox.state.workforce.business_units if "New_York" in bu.time_zone)
    day = unit_day(york.id, york.time_zone, date(2026, 11, 1))
    assert day.end - day.start == timedelta(hours=25)
    # A shift from the hour that happens twice is there once, in that day.
    truth = schedule_truth(sandbox)
    assert any(k[0] == york.id and k[1] == "2026-11-01" for k in truth)


@pytest.mark.parametrize("mode", ["inline", "download", "async"])
async def test_every_shape_of_answer_gives_the_same_files(tmp_path, mode: str) -> None:
    """Results inline, behind a download link (fetched without the token) or answered later
    (asked again until they are): the same bytes in every file."""
    async with Sandbox(sandbox_settings()) as sb:
        await export_schedules(sb, tmp_path / "auto")
        expected = schedule_files(tmp_path / "auto")
    async with Sandbox(sandbox_settings(schedule_search_mode=mode, schedule_async_asks=2)) as sb:
        summary = await export_schedules(sb, tmp_path / mode)
        assert summary.status == "ok", summary.failed_windows
        assert schedule_files(tmp_path / mode) == expected
        stats = sb.stats()
        searches = len(SCHEDULE_DAYS) * 2  # two business units
        assert stats.count("schedules.search", 200) == searches * (3 if mode == "async" else 1)
        assert stats.count("download", 200) == (0 if mode == "inline" else searches)
        assert stats.count("download", 400) == 0  # no bearer token ever reached a link
        assert_schedules_exact(sb, tmp_path / mode)


async def test_expired_download_links_are_replaced_by_asking_again(tmp_path) -> None:
    """Links that answer 403 (expired) are replaced by asking the search again: the export
    is exact, and no day fails."""
    expired = FaultRule(kind="link-expired", count=3)
    async with Sandbox(sandbox_settings(schedule_search_mode="download", faults=(expired,))) as sb:
        summary = await export_schedules(sb, tmp_path)
        assert summary.status == "ok", summary.failed_windows
        assert sb.stats().count("download", 403) == 3
        assert sb.stats().count("schedules.search", 200) == len(SCHEDULE_DAYS) * 2 + 3
        assert_schedules_exact(sb, tmp_path)


async def test_links_that_always_expire_fail_their_days_in_one_line_each(tmp_path) -> None:
    """Every link expired: each date fails after link_refreshes fresh links, one line each,
    exit 1, and nothing is committed."""
    expired = FaultRule(kind="link-expired")
    async with Sandbox(sandbox_settings(schedule_search_mode="download", faults=(expired,))) as sb:
        summary = await export_schedules(
            sb, tmp_path, workforce={**FAST_SEARCHES, "link_refreshes": 2}
        )
        assert (summary.status, summary.exit_code) == ("failed", 1)
        assert [line.split(":")[0] for line in summary.failed_windows] == [
            f"schedules {d.isoformat()}" for d in SCHEDULE_DAYS
        ]
        assert all("expired" in line for line in summary.failed_windows)
        assert sb.stats().count("download", 403) == len(SCHEDULE_DAYS) * 3
    assert {r.status for r in Manifest.load(tmp_path).records("schedules")} == {"failed"}
    assert not list((tmp_path / "schedules").glob("*.jsonl"))


async def test_a_search_that_never_answers_fails_its_day_at_its_timeout(tmp_path) -> None:
    """A search still Processing after search_timeout_s fails its date in one line naming the
    setting; the next run, once the search answers, completes it."""
    settings = sandbox_settings(schedule_search_mode="async", schedule_async_asks=1000)
    async with Sandbox(settings) as sb:
        slow = {"search_poll_s": 0.0, "search_timeout_s": 0.05}
        summary = await export_schedules(sb, tmp_path, workforce=slow)
        assert summary.exit_code == 1
        assert all("search_timeout_s" in line for line in summary.failed_windows)
        sb.update(schedule_async_asks=0)
        again = await export_schedules(sb, tmp_path)
        assert again.status == "ok", again.failed_windows
        assert_schedules_exact(sb, tmp_path)


async def test_a_denied_schedule_permission_fails_only_schedules(tmp_path) -> None:
    """Without either schedule permission, schedules fail in one line naming one, exit 3; the
    units export."""
    denied = ("wfm:schedule:view", "wfm:publishedSchedule:view")
    async with Sandbox(sandbox_settings(denied_permissions=denied)) as sb:
        settings = exporter_settings(sb, tmp_path, workforce=FAST_SEARCHES)
        start = datetime.combine(SCHEDULE_DAYS[0], time(), UTC)
        request = ExportRequest(start, start + days(1), datasets=select("workforce"))
        summary = await export(settings, request, progress=NoProgress())
    assert (summary.status, summary.exit_code) == ("denied", 3)
    (line,) = summary.denied
    assert line.startswith("schedules: ") and "wfm:publishedSchedule:view" in line
    assert "schedules" not in Manifest.load(tmp_path).datasets()
    assert set(UNITS) <= set(Manifest.load(tmp_path).datasets())


async def test_a_complete_date_is_never_searched_again(sandbox, tmp_path) -> None:
    """A second run over the same range searches nothing (every date complete); --force
    searches each again, with the same bytes."""
    await export_schedules(sandbox, tmp_path)
    first = schedule_files(tmp_path)
    searched = sandbox.stats().count("schedules.search")
    again = await export_schedules(sandbox, tmp_path)
    assert again.status == "ok" and sandbox.stats().count("schedules.search") == searched
    forced = await export_schedules(sandbox, tmp_path, force=True)
    assert forced.status == "ok"
    assert sandbox.stats().count("schedules.search") == searched + len(SCHEDULE_DAYS) * 2
    assert schedule_files(tmp_path) == first


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_schedules_killed_or_stopped_mid_range_resume_exactly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed or stopped while the dates are searched, the rerun searches only the dates not
    committed (none twice) and ends exact, with nothing half-written under a final name."""
    dates = (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3))  # cli()'s range
    with run_sandbox_in_thread(sandbox_settings(latency_ms=30)) as sb:
        out = tmp_path / "out"
        command = cli(sb, tmp_path, out, "--datasets", "schedules")
        stop_after(sb, command, "schedules.search", 3, sig)
        manifest = Manifest.load(out) if (out / "manifest.json").exists() else None
        done = [r for r in manifest.records("schedules")] if manifest else []
        assert all(r.status == "complete" for r in done) and len(done) < len(dates)
        assert not list(out.rglob("*.part")) or sig == signal.SIGKILL
        before = sb.stats().count("schedules.search", 200)
        again = subprocess.run(command, env=cli_env(sb), capture_output=True, timeout=90)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        assert sb.stats().count("schedules.search", 200) == before + 2 * (len(dates) - len(done))
        assert_schedules_exact(sb, out, dates)
        recorded = {r.file for r in Manifest.load(out).records("schedules")}
        assert {p.relative_to(out).as_posix() for p in data_files(out)} == recorded


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), 23),  # clocks go forward
        ("America/New_York", date(2026, 11, 1), 25),  # and back
        ("America/New_York", date(2026, 11, 2), 24),
        ("Asia/Manila", date(2026, 11, 1), 24),  # no DST
    ],
)
def test_a_unit_day_runs_from_local_midnight_to_local_midnight(
    zone: str, day: date, hours: int
) -> None:
    """A unit's day is its own calendar's: 23 or 25 hours across a DST change, in UTC."""
    local = unit_day("u", zone, day)
    assert local.end - local.start == timedelta(hours=hours)
    assert local.start.astimezone(ZoneInfo(zone)).time() == time()
    assert local.end.astimezone(ZoneInfo(zone)).date() == day + timedelta(days=1)


def test_due_dates_skip_complete_ones_and_redo_what_lookback_or_force_ask(tmp_path) -> None:
    """Dates never searched, failed or provisional are due; complete ones only under --force
    or within --lookback of the end."""
    manifest = Manifest.load(tmp_path)
    for name, status in (("2026-11-01", "complete"), ("2026-11-02", "failed"),
                         ("2026-11-03", "provisional"), ("2026-11-04", "complete")):  # fmt: skip
        start = datetime.fromisoformat(name).replace(tzinfo=UTC)
        manifest.put("schedules", WindowRecord(name, format_instant(start),
                                               format_instant(start + days(1)), status,
                                               "search", None))  # fmt: skip
    schedules = DATASETS["schedules"]
    assert isinstance(schedules, UnitDays)

    def due(**changes: Any) -> list[tuple[str, str]]:
        request = ExportRequest(START, START + days(5), datasets=(schedules,))
        request = dataclasses.replace(request, **changes)
        return [(d.isoformat(), why) for d, why in due_dates(request, manifest, schedules)]

    assert due() == [("2026-11-02", "failed before"), ("2026-11-03", "provisional before"),
                     ("2026-11-05", "never searched")]  # fmt: skip
    assert [d for d, _ in due(force=True)] == [f"2026-11-0{n}" for n in range(1, 6)]
    assert ("2026-11-04", "within --lookback") in due(lookback=days(2))
    assert ("2026-11-01", "within --lookback") not in due(lookback=days(2))


# ---- adherence -------------------------------------------------------------------------------


async def export_adherence(
    sb: Any, out: Path, dates: tuple[date, ...] = SCHEDULE_DAYS, **sections: Any
) -> Any:
    settings = exporter_settings(sb, out, **{"workforce": FAST_SEARCHES, **sections})
    start = datetime.combine(dates[0], time(), UTC)
    request = ExportRequest(start, start + days(len(dates)), datasets=select("adherence"))
    return await export(settings, request, progress=NoProgress())


def adherence_truth(sb: Any, dates: tuple[date, ...]) -> dict[tuple[str, str, str], Any]:
    """Per (management unit, local date, agent): the sandbox's metrics of that day asked for
    alone (one item of one day), and its exceptions as instants."""
    found: dict[tuple[str, str, str], Any] = {}
    for mu in sb.state.workforce.management_units:
        zone = mu.business_unit.time_zone
        for day in dates:
            local = unit_day(mu.id, zone, day)
            item = {"managementUnitId": mu.id, "startDate": local.start.isoformat(),
                    "endDate": local.end.isoformat(), "includeExceptions": True}  # fmt: skip
            result = orjson.loads(adherence_result(sb.state, zone, item))
            for user in result["userResults"]:
                (metrics,) = user["dayMetrics"]
                spans = {(_instant(local.start, e["startOffsetSeconds"]),
                          _instant(local.start, e["endOffsetSeconds"]))
                         for e in user["exceptionInfo"]}  # fmt: skip
                found[(mu.id, day.isoformat(), user["userId"])] = (
                    metrics["scheduleLengthSeconds"],
                    metrics["adherenceScheduleSeconds"],
                    spans,
                )
    return found


def _zone_of(sb: Any, unit_id: str) -> str:
    return next(m.business_unit.time_zone for m in sb.state.workforce.management_units
                if m.id == unit_id)  # fmt: skip


def _instant(start: datetime, seconds: int) -> str:
    return format_instant(start + timedelta(seconds=seconds))


def exported_adherence(out: Path, dates: tuple[date, ...]) -> dict[tuple[str, str, str], Any]:
    """The same of the exported files, each agent-day once, each date complete."""
    found: dict[tuple[str, str, str], Any] = {}
    records = Manifest.load(out).records("adherence")
    assert [(r.name, r.status) for r in records] == [(d.isoformat(), "complete") for d in dates]
    for record in records:
        assert record.file is not None
        for raw in read_records(out / record.file):
            line = orjson.loads(raw)
            key = (line["managementUnitId"], line["date"], line["userId"])
            assert key not in found and line["date"] == record.name
            metrics = line["metrics"]
            found[key] = (metrics["scheduleLengthSeconds"], metrics["adherenceScheduleSeconds"],
                          {(e["startDate"], e["endDate"]) for e in line["exceptions"]})  # fmt: skip
    return found


def assert_adherence_exact(sb: Any, out: Path, dates: tuple[date, ...] = SCHEDULE_DAYS) -> None:
    """Every agent-day of every management unit once, with the metrics and exceptions the
    sandbox gives that day asked for alone, however the exporter grouped the days."""
    exported, truth = exported_adherence(out, dates), adherence_truth(sb, dates)
    assert exported.keys() == truth.keys()
    for key, (scheduled, adherent, misses) in truth.items():
        got_scheduled, got_adherent, got_spans = exported[key]
        assert (got_scheduled, got_adherent) == (scheduled, adherent), key
        # An item cuts the exceptions crossing its bounds: compare those starting inside.
        midnight = format_instant(
            unit_day("", _zone_of(sb, key[0]), date.fromisoformat(key[1])).start
        )
        assert {s for s, _ in got_spans} - {midnight} == {s for s, _ in misses} - {midnight}, key


async def test_adherence_equals_the_truth_each_agent_day_once(sandbox, tmp_path) -> None:
    """Three dates across the DST change: every agent's day of every unit once, its
    scheduled and adherent seconds and exceptions the sandbox's for that local day; some
    agents were out of adherence (breaks taken late, calls into a break)."""
    summary = await export_adherence(sandbox, tmp_path)
    assert summary.status == "ok", summary.failed_windows
    assert_adherence_exact(sandbox, tmp_path)
    truth = adherence_truth(sandbox, SCHEDULE_DAYS)
    assert any(spans for _, _, spans in truth.values())
    assert any(adherent < scheduled for scheduled, adherent, _ in truth.values())


async def test_a_long_range_is_asked_in_items_of_seven_days_each_day_once(
    sandbox, tmp_path
) -> None:
    """Nine dates across New York's fall-back change: runs of seven days at most and 7 x 24
    hours at most in every time zone (the 25-hour day cuts the first run to six dates), one
    job per run and time zone, every item within the limit with exceptions, no unit-day in
    two items."""
    dates = tuple(date(2026, 10, 28) + timedelta(days=n) for n in range(9))
    summary = await export_adherence(sandbox, tmp_path, dates)
    assert summary.status == "ok", summary.failed_windows
    jobs = list(sandbox.state.adherence_jobs.values())
    assert len(jobs) == 2 * 2  # two runs (six dates, three), two time zones
    asked: Counter[tuple[str, str]] = Counter()
    for zone, items, _, _ in jobs:
        for item in items:
            start = datetime.fromisoformat(item["startDate"]).astimezone(ZoneInfo(zone))
            end = datetime.fromisoformat(item["endDate"]).astimezone(ZoneInfo(zone))
            assert item["includeExceptions"] and (end.date() - start.date()).days <= 7
            assert end - start <= timedelta(days=7)
            day = start.date()
            while day < end.date():
                asked[(item["managementUnitId"], day.isoformat())] += 1
                day += timedelta(days=1)
    assert max(asked.values()) == 1 and len(asked) == 3 * len(dates)
    assert_adherence_exact(sandbox, tmp_path, dates)


async def test_expired_adherence_links_are_renewed_by_asking_the_job_again(tmp_path) -> None:
    """Links that answer 403 are replaced by the job's fresh ones: no job is submitted
    again, no day fails, the records are exact."""
    expired = FaultRule(kind="link-expired", count=2)
    async with Sandbox(sandbox_settings(faults=(expired,))) as sb:
        summary = await export_adherence(sb, tmp_path)
        assert summary.status == "ok", summary.failed_windows
        stats = sb.stats()
        assert stats.count("download", 403) == 2
        assert stats.count("adherence.bulk") == 2 and stats.count("adherence.job") >= 2 + 1
        assert_adherence_exact(sb, tmp_path)


async def test_a_failed_adherence_job_fails_its_days_and_the_next_run_completes_them(
    tmp_path,
) -> None:
    """A job that ends in Error fails its dates in one line each (exit 1); the next run asks
    for them again and ends exact."""
    failed = FaultRule(kind="job-failed", routes=("adherence.bulk",), count=1)
    async with Sandbox(sandbox_settings(faults=(failed,))) as sb:
        first = await export_adherence(sb, tmp_path)
        assert first.exit_code == 1 and len(first.failed_windows) == len(SCHEDULE_DAYS)
        assert all("ended Error" in line for line in first.failed_windows)
        again = await export_adherence(sb, tmp_path)
        assert again.status == "ok", again.failed_windows
        assert_adherence_exact(sb, tmp_path)


async def test_a_denied_adherence_permission_fails_only_adherence(tmp_path) -> None:
    """Without wfm:historicalAdherence:view, adherence fails in one line naming it, exit 3;
    schedules export."""
    denied = ("wfm:historicalAdherence:view",)
    async with Sandbox(sandbox_settings(denied_permissions=denied)) as sb:
        settings = exporter_settings(sb, tmp_path, workforce=FAST_SEARCHES)
        start = datetime.combine(SCHEDULE_DAYS[0], time(), UTC)
        request = ExportRequest(start, start + days(1), datasets=select("schedules,adherence"))
        summary = await export(settings, request, progress=NoProgress())
    assert (summary.status, summary.exit_code) == ("denied", 3)
    (line,) = summary.denied
    assert line.startswith("adherence: ") and "wfm:historicalAdherence:view" in line
    assert set(Manifest.load(tmp_path).datasets()) == {"schedules"}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_adherence_killed_or_stopped_mid_range_resumes_exactly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed or stopped after its first job, the rerun asks only for the dates not
    committed and ends exact."""
    dates = (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3))  # cli()'s range
    with run_sandbox_in_thread(sandbox_settings(latency_ms=30)) as sb:
        out = tmp_path / "out"
        command = cli(sb, tmp_path, out, "--datasets", "adherence")
        stop_after(sb, command, "download", 1, sig)
        again = subprocess.run(command, env=cli_env(sb), capture_output=True, timeout=90)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        records = Manifest.load(out).records("adherence")
        assert [(r.name, r.status) for r in records] == [(d.isoformat(), "complete") for d in dates]
        recorded = {r.file for r in records}
        assert {p.relative_to(out).as_posix() for p in data_files(out)} == recorded
        lines = [orjson.loads(raw) for r in records if r.file for raw in read_records(out / r.file)]
        keys = Counter((x["managementUnitId"], x["date"], x["userId"]) for x in lines)
        assert keys and max(keys.values()) == 1


def test_runs_of_days_are_consecutive_and_never_over_seven_times_24_hours() -> None:
    """Runs break at a gap and at seven dates, and a run holding a 25-hour day is cut a day
    short; every date is in exactly one run."""
    days_ = [date(2026, 10, 26) + timedelta(days=n) for n in range(12)]
    days_.remove(date(2026, 11, 5))
    runs = spans(days_, 7, {"Asia/Manila"})
    assert [len(r) for r in runs] == [7, 3, 1] and [d for r in runs for d in r] == days_
    runs = spans(days_, 7, {"Asia/Manila", "America/New_York"})
    assert [len(r) for r in runs] == [6, 4, 1] and [d for r in runs for d in r] == days_


async def test_adherence_takes_the_business_units_time_zone_when_a_unit_names_none(
    tmp_path,
) -> None:
    """Management units without their own timeZone (the platform is moving it to the
    business unit): each is asked for in its business unit's time zone, exactly."""
    async with Sandbox(sandbox_settings(management_unit_time_zones=False)) as sb:
        units = sb.state.listings["management-units"].entities
        assert all("timeZone" not in unit.body for unit in units)
        summary = await export_adherence(sb, tmp_path)
        assert summary.status == "ok", summary.failed_windows
        zones = {zone for zone, _, _, _ in sb.state.adherence_jobs.values()}
        assert zones == {"America/New_York", "Asia/Manila"}
        assert_adherence_exact(sb, tmp_path)
