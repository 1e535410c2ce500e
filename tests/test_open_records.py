"""Records still going on when their day is exported are tracked and refreshed until they close:
conversations with no end yet, and statuses with no end (a leaver's last OFFLINE never ends)."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter.datasets import select
from exporter.gdpr import Eraser, parse_request
from exporter.plan import ExportRequest
from exporter.privacy import Policy
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from exporter.summary import Summary
from exporter.windows import parse_api_instant
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from genesys_sandbox.open_conversations import OpenConversations
from tests.support import (
    SMALL,
    START,
    assert_exact,
    assert_statuses_exact,
    cli_env,
    data_files,
    days,
    exporter_settings,
    on_user_details,
    sandbox_settings,
    stop_after,
)

END = START + days(3)
FOLLOW = {"open_horizon": timedelta(days=3650)}  # the sandbox's data is weeks old: follow it
OPEN = 12  # messaging and e-mail conversations still going on at the first export
SCHEDULED = ExportRequest(start=START, end=END, since_last=True)


async def scheduled(sb: Any, out: Path, datasets: str = "conversations", **jobs: Any) -> Summary:
    settings = exporter_settings(sb, out, jobs={**FOLLOW, **jobs})
    request = dataclasses.replace(SCHEDULED, datasets=select(datasets))
    return await export(settings, request, progress=NoProgress())


def exported_records(out: Path) -> dict[str, bytes]:
    """conversationId -> the line exported for it (each exactly once)."""
    found: dict[str, bytes] = {}
    for path in data_files(out / "conversations"):
        for line in read_records(path):
            key = orjson.loads(line)["conversationId"]
            assert key not in found, key
            found[key] = line
    return found


def served(sb: Any) -> dict[str, bytes]:
    """What the sandbox serves for every conversation of the three days now (open or closed)."""
    data = sb.dataset
    now = OpenConversations(data, sb.settings.open_conversations)  # as the sandbox holds them
    days = data.index_range_starting_in(data.spec.start_ms, data.spec.start_ms + 3 * 86_400_000)
    return {data.ids[i]: now.record(i) for i in days}


def tracked(out: Path, dataset: str = "conversations") -> set[str]:
    return {key for keys in Manifest.load(out).opened(dataset).values() for key in keys}


def still_going_on(sb: Any) -> set[str]:
    """Conversations the sandbox serves with no end: the open ones and the data's last minutes."""
    return {cid for cid, record in served(sb).items() if b'"conversationEnd"' not in record[:80]}


async def test_open_conversations_are_refreshed_until_they_close(tmp_path: Path) -> None:
    """A day holding conversations still going on is complete (the watermark passed it) and
    its open ones tracked; once they close, the next scheduled run rewrites them in their day
    files from one job filtered by their ids, fetching no day again: every line is then
    exactly what the sandbox serves, none stale, none twice."""
    async with Sandbox(sandbox_settings(open_conversations=OPEN)) as sb:
        first = await scheduled(sb, tmp_path)
        assert first.status == "ok", first.error
        records = Manifest.load(tmp_path).records("conversations")
        assert {r.status for r in records} == {"complete"}
        assert tracked(tmp_path) == still_going_on(sb) and len(still_going_on(sb)) > OPEN
        assert exported_records(tmp_path) == served(sb)
        assert first.open_records["conversations"]["tracked"] == len(still_going_on(sb))

        sb.update(open_conversations=0)  # they close
        sb.reset_stats()
        second = await scheduled(sb, tmp_path)
        assert second.status == "ok", second.error
        assert second.windows == 0 and sb.stats().jobs_created == 1
        assert exported_records(tmp_path) == served(sb)
        assert tracked(tmp_path) == still_going_on(sb)  # the data's last minutes: still open
        opened = second.open_records["conversations"]
        assert opened["closed"] == OPEN and opened["windows"] >= 1
        assert_exact(sb, tmp_path)


async def test_the_refresh_costs_one_job_per_chunk_of_ids(tmp_path: Path) -> None:
    """The refresh asks for the open records by id, open_refresh_ids at a time: its jobs
    follow the number of open records, not the days they sit in."""
    async with Sandbox(sandbox_settings(open_conversations=OPEN)) as sb:
        await scheduled(sb, tmp_path)
        open_now = len(tracked(tmp_path))
        sb.reset_stats()
        again = await scheduled(sb, tmp_path, open_refresh_ids=5)
        assert again.status == "ok", again.error
        assert sb.stats().jobs_created == -(-open_now // 5) == sb.stats().jobs_deleted
        assert again.open_records["conversations"]["refreshed"] == open_now
        assert again.open_records["conversations"]["windows"] == 0  # nothing changed


async def test_a_record_open_past_the_horizon_is_reported_and_no_longer_refreshed(
    tmp_path: Path,
) -> None:
    """With the default 14-day horizon, records of November still going on in December are
    treated as closed: reported, untracked, and never asked for again."""
    async with Sandbox(sandbox_settings(open_conversations=OPEN)) as sb:
        await scheduled(sb, tmp_path)
        open_before = len(tracked(tmp_path))
        sb.reset_stats()
        settings = exporter_settings(sb, tmp_path)
        again = await export(settings, SCHEDULED, progress=NoProgress())
        assert again.status == "ok", again.error
        assert again.open_records["conversations"]["expired"] == open_before
        assert tracked(tmp_path) == set() and sb.stats().jobs_created == 0


async def test_a_leavers_status_that_never_ends_costs_no_day_again(tmp_path: Path) -> None:
    """A leaver's last OFFLINE never ends. Its day is complete and the status tracked: the
    next scheduled run exports no day again (it used to re-export every day since, growing
    without bound) and only asks for the open statuses, 100 users a job."""
    async with Sandbox(sandbox_settings()) as sb:
        first = await scheduled(sb, tmp_path, "user-details")
        assert first.status == "ok", first.error
        records = Manifest.load(tmp_path).records("user-details")
        assert {r.status for r in records} == {"complete"}
        leavers = {a.id for a in sb.dataset.entities.agents if a.leaves_at_ms is not None}
        users = {key.split("|")[0] for key in tracked(tmp_path, "user-details")}
        assert leavers & users
        files = {p: p.read_bytes() for p in data_files(tmp_path / "user-details")}
        sb.reset_stats()
        again = await scheduled(sb, tmp_path, "user-details")
        assert again.status == "ok", again.error
        assert again.windows == 0 and sb.stats().jobs_created == -(-len(users) // 100)
        assert {p: p.read_bytes() for p in data_files(tmp_path / "user-details")} == files
        assert_statuses_exact(sb, tmp_path)


async def test_statuses_that_end_later_are_written_ended(tmp_path: Path) -> None:
    """Statuses open at the first export and ended when refreshed (here: the same org, its
    leavers' statuses closed) are rewritten with their end in their day files, and are no
    longer tracked; every status is still exactly once."""
    async with Sandbox(sandbox_settings()) as sb:
        await scheduled(sb, tmp_path, "user-details")
        before = tracked(tmp_path, "user-details")
    closed_spec = dataclasses.replace(SMALL, leavers_stay_offline=False)
    async with Sandbox(sandbox_settings(dataset=closed_spec)) as sb:
        again = await scheduled(sb, tmp_path, "user-details")
        assert again.status == "ok", again.error
        after = tracked(tmp_path, "user-details")
        leavers = {a.id for a in sb.dataset.entities.agents if a.leaves_at_ms is not None}
        assert after == {key for key in before if key.split("|")[0] not in leavers}
        assert again.open_records["user-details"]["closed"] == len(before) - len(after) > 0
        assert_statuses_exact(sb, tmp_path)
        assert_statuses_as_served(sb, tmp_path)


def assert_statuses_as_served(sb: Any, out: Path) -> None:
    """Every exported status is byte for byte the sandbox's (ended where it has ended)."""
    history = sb.dataset.statuses
    served_ = {(history.user_ids[s.user], s.kind, s.start_ms): s.json for s in history.statuses}
    for path in data_files(out / "user-details"):
        for line in read_records(path):
            entry = orjson.loads(line)
            for kind in ("primaryPresence", "routingStatus"):
                for status in entry[kind]:
                    start = parse_api_instant(status["startTime"])
                    assert orjson.dumps(status) == served_[entry["userId"], kind, start]


RECOVERABLE = [
    pytest.param(FaultRule("status", status=503, probability=0.4, count=6), id="503"),
    pytest.param(FaultRule("drop", probability=0.4, count=4), id="dropped"),
    pytest.param(FaultRule("truncate", routes=("jobs.results",), count=2), id="truncated"),
    pytest.param(FaultRule("job-failed", count=1), id="job-failed"),
    pytest.param(FaultRule("cursor-rejected", count=1), id="cursor-rejected"),
]


@pytest.mark.parametrize("fault", RECOVERABLE)
async def test_a_refresh_under_faults_is_exact_now_or_next_run(tmp_path: Path, fault) -> None:
    """Faults during the refresh never leave a stale or doubled line: a refresh that gives up
    keeps its records tracked and the next run finishes it; the lines then equal the
    sandbox's, each once."""
    async with Sandbox(sandbox_settings(open_conversations=OPEN)) as sb:
        await scheduled(sb, tmp_path)
        sb.update(open_conversations=0)
        sb.add_fault(fault)
        first = await scheduled(sb, tmp_path, page_size=5)  # several pages for faults to hit
        assert first.status == "ok", first.error
        assert sum(sb.stats().faults_injected.values()) > 0
        if first.open_records["conversations"]["failed"]:
            assert tracked(tmp_path) >= still_going_on(sb)
            sb.clear_faults()
            await scheduled(sb, tmp_path, page_size=5)
        assert exported_records(tmp_path) == served(sb)
        assert tracked(tmp_path) == still_going_on(sb)


@pytest.mark.parametrize("fault", RECOVERABLE)
async def test_a_status_refresh_under_faults_is_exact_now_or_next_run(
    tmp_path: Path, fault
) -> None:
    """The same faults on the user-details refresh: the statuses end as the sandbox serves
    them, ended where they ended, each once."""
    async with Sandbox(sandbox_settings()) as sb:
        await scheduled(sb, tmp_path, "user-details")
    closed = sandbox_settings(dataset=dataclasses.replace(SMALL, leavers_stay_offline=False))
    async with Sandbox(closed) as sb:
        sb.add_fault(on_user_details(fault))
        first = await scheduled(sb, tmp_path, "user-details", page_size=20)
        assert first.status == "ok", first.error
        assert sum(sb.stats().faults_injected.values()) > 0
        if first.open_records["user-details"]["failed"]:
            sb.clear_faults()
            await scheduled(sb, tmp_path, "user-details", page_size=20)
        assert_statuses_exact(sb, tmp_path)
        assert_statuses_as_served(sb, tmp_path)


def follow_config(tmp_path: Path, page_size: int) -> Path:
    """A CLI config: fast polls, open records followed, results pages of ``page_size``."""
    path = tmp_path / f"follow-{page_size}.toml"
    path.write_text(
        f"[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\npage_size = {page_size}\n"
        'open_horizon = "3650d"\n[output]\ncheckpoint_s = 0.0\n'
        "[http]\nretry_backoff_base_s = 0.01\n"
    )
    return path


def scheduled_command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "exporter", "export", "--config", str(config), "--start",
            "2026-11-01", "--end", "2026-11-04", "--since-last", "--out", str(out),
            "--no-progress"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("pages", [1, 4])
def test_a_kill_during_a_refresh_then_a_rerun_is_exact(tmp_path: Path, pages: int) -> None:
    """SIGKILL while a refresh reads or rewrites: the next run ends with every line what the
    sandbox serves, each once (a day rewritten but not yet recorded is fetched again)."""
    with run_sandbox_in_thread(sandbox_settings(open_conversations=OPEN)) as sb:
        out = tmp_path / "out"
        first = scheduled_command(follow_config(tmp_path, 1000), out)
        assert subprocess.run(first, env=cli_env(sb), capture_output=True).returncode == 0
        sb.update(open_conversations=0)
        sb.reset_stats()
        refresh = scheduled_command(follow_config(tmp_path, 3), out)
        stop_after(sb, refresh, "jobs.results", pages, signal.SIGKILL)
        done = subprocess.run(refresh, env=cli_env(sb), capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert exported_records(out) == served(sb)
        assert tracked(out) == still_going_on(sb)


async def test_refreshed_records_are_erased_and_protected_as_first_written(
    tmp_path: Path,
) -> None:
    """A refreshed record goes through what a record written the first time does: the GDPR
    deletions' erasure, then the privacy profile; every line is the served one, erased, then
    protected, whether it was written once or refreshed."""
    key = "refresh-privacy-key-0123456789abcdef"
    async with Sandbox(sandbox_settings(open_conversations=OPEN)) as sb:
        going_on = sorted(still_going_on(sb))
        for conversation_id in going_on:  # a deletion only a refresh can apply
            with contextlib.suppress(ValueError):  # a customer with nothing to name them by
                sb.state.add_gdpr_request(conversation_id)
                break
        settings = exporter_settings(sb, tmp_path, jobs=FOLLOW, privacy={"profile": "strict"},
                                     forget={"enabled": True})  # fmt: skip
        settings = dataclasses.replace(settings, privacy_key=key)
        request = dataclasses.replace(SCHEDULED, datasets=select("conversations"))
        assert (await export(settings, request, progress=NoProgress())).status == "ok"
        sb.update(open_conversations=0)  # they close
        second = await export(settings, request, progress=NoProgress())
        assert second.status == "ok", second.error
        assert second.open_records["conversations"]["closed"] == OPEN
        requests = [parse_request(r) for r in sb.state.gdpr_truth()]
        eraser = Eraser(requests)
        protect = Policy("strict", [], key).for_dataset("conversations")
        assert protect is not None and len(eraser.requests) >= 3
        expected = {cid: protect(eraser.protect(line)) for cid, line in served(sb).items()}
        assert exported_records(tmp_path) == expected
        now = served(sb)
        assert any(eraser.erase(now[cid])[1] for cid in going_on)  # a refreshed one was erased
