"""Snapshots that tell the truth: a refused page size is learned, drift never leaves a snapshot
complete and short, an empty answer never replaces a good snapshot, a queue deleted while its
members are read is skipped, a refused listing cursor walks again, and a nextUri loop fails its
dataset at once. Each situation runs on every listing it applies to."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

import pytest

from exporter.datasets import GROUPS, Listing
from exporter.engine import lookups
from exporter.engine.listing import refused_page_size
from exporter.engine.snapshot import MOST_WALKS, SLOTS
from exporter.store.manifest import Manifest, WindowRecord
from exporter.tables.sources import collect
from genesys_sandbox import FaultRule, Sandbox
from tests.support import sandbox_listing, sandbox_settings
from tests.test_snapshots import FLAT, LISTINGS, sandbox_ids, snapshot_lines, take

TAKEN = ("complete", "provisional")
# The listings that page: the WFM unit listings answer everything at once (genesys-datasets.md
# §G, "no paging"), so a page size or a nextUri is not theirs to get wrong; test_workforce.py
# takes their faults.
PAGED = [d for d in LISTINGS if d.name in GROUPS["dimensions"]]
CURSORED = [d for d in PAGED if not d.offset_paging]


def name_of(dataset: Listing) -> str:
    return dataset.name


def record_of(out: Path, name: str) -> WindowRecord:
    (record,) = Manifest.load(out).records(name)
    return record


def assert_exact(sb: Sandbox, out: Path, dataset: Listing) -> None:
    """The dataset's snapshot holds each of the sandbox's entities (queue members: pairs)
    exactly once, and nothing else."""
    lines = snapshot_lines(out, dataset.name, TAKEN)
    if dataset.parent is None:
        assert Counter(str(line["id"]) for line in lines) == sandbox_ids(sb, dataset.name)
        return
    pairs = Counter((line["queueId"], line["id"]) for line in lines)
    assert pairs == Counter((q, e.id) for q, members in sb.state.members.items() for e in members)


# -- page sizes


@pytest.mark.parametrize(
    ("message", "params", "allowed"),
    [
        ("Value [500] is not valid for parameter [pageSize]. Allowable values are: 1-100", {},
         100),
        ("pageSize must be between 1 and 100", {}, 100),
        ("Invalid value.", {"value": "500", "parameter": "pageSize", "allowed": "1-25"}, 25),
        ("The page size must not exceed 250.", {}, 250),
        ("The maximum page size is 200", {}, 200),
        ("pageSize must be a positive integer", {}, None),  # names no limit
        ("Value [x] is not valid for parameter [state]. Allowable values are: 1-4", {}, None),
        ("The request could not be understood by the server due to malformed syntax.", {}, None),
    ],
)  # fmt: skip
def test_a_page_size_refusal_is_read_from_its_message_or_parameters(
    message: str, params: dict[str, str], allowed: int | None
) -> None:
    """The largest page allowed, from the message or messageParams, only when they are about
    the page size and name a limit."""
    assert refused_page_size(message, params) == allowed


@pytest.mark.parametrize("dataset", PAGED, ids=name_of)
async def test_a_listing_refusing_the_page_size_is_asked_the_largest_it_allows(
    tmp_path: Path, dataset: Listing
) -> None:
    """A listing answering an over-large pageSize with 400 naming 1-40 (queue members and
    forms, which ask 100: 1-30) is asked that size from then on, for the run: the snapshot is
    exact and the refusal came once (per walk running when it was learned)."""
    refusing = (sandbox_listing(dataset.name),)
    settings = sandbox_settings(
        listing_max_page_size=40, queue_members_max_page_size=30, form_max_page_size=30,
        listing_refuse_oversize=refusing,
    )  # fmt: skip
    async with Sandbox(settings) as sb:
        summary = await take(sb, tmp_path, dataset.name)
        assert summary.status == "ok", summary
        assert 1 <= sb.stats().count(sandbox_listing(dataset.name), 400) <= SLOTS
        assert_exact(sb, tmp_path, dataset)


async def test_a_400_naming_no_range_fails_only_its_snapshot_in_one_line(tmp_path: Path) -> None:
    """A 400 that is not about the page size stays an error: users fail in one line, exit 1,
    and queues complete."""
    async with Sandbox(sandbox_settings()) as sb:
        sb.add_fault(FaultRule("status", status=400, routes=("users",)))
        summary = await take(sb, tmp_path, "users,queues")
    assert (summary.status, summary.exit_code) == ("failed", 1)
    (line,) = summary.failed_windows
    assert line.startswith("users: ") and "HTTP 400 bad.request" in line and "\n" not in line
    assert sb.stats().count("users", 400) == 1
    assert Manifest.load(tmp_path).datasets() == ["queues"]


# -- drift


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_under_heavy_drift_a_snapshot_is_exact_or_provisional_never_complete_and_short(
    tmp_path: Path, seed: int
) -> None:
    """Entities created and deleted before nearly every page, pages of 25: each snapshot
    holds every entity present throughout once and nothing that never existed, or is
    provisional; users never settle, so they are provisional, counted in the summary. The
    second run, with a previous snapshot to check against, is exact."""
    settings = sandbox_settings(listing_drift=0.9, listing_max_page_size=25, fault_seed=seed)
    async with Sandbox(settings) as sb:
        for run in (1, 2):
            begun = sb.now()
            summary = await take(sb, tmp_path)
            ended = sb.now()
            assert summary.status == "ok", summary
            assert record_of(tmp_path, "users").status == "provisional"
            assert summary.provisional >= 1
            for dataset in FLAT:
                ids = Counter(str(x["id"]) for x in snapshot_lines(tmp_path, dataset.name, TAKEN))
                truth = sb.listing_truth(sandbox_listing(dataset.name), begun, ended)
                held = truth.present_throughout <= set(ids) <= truth.ever_present
                held = held and max(ids.values()) == 1
                assert held or (run == 1 and record_of(tmp_path, dataset.name).status != "complete")
            assert_exact(sb, tmp_path, next(d for d in LISTINGS if d.parent is not None))


def test_the_tables_take_the_newest_snapshot_complete_or_provisional(tmp_path: Path) -> None:
    """A provisional snapshot newer than a complete one is what the tables build from."""
    from tests.support import put_window_file

    put_window_file(tmp_path, "users", "2026-11-01", [b'{"id":"a"}'])
    put_window_file(tmp_path, "users", "2026-11-02", [b'{"id":"a"}'], status="provisional")
    sources, _ = collect(Manifest.load(tmp_path))
    assert [s.window for s in sources if s.dataset == "users"] == ["2026-11-02"]


# -- an empty answer


@pytest.mark.parametrize("dataset", FLAT, ids=name_of)
async def test_an_empty_answer_never_replaces_a_good_snapshot(
    tmp_path: Path, dataset: Listing, caplog: pytest.LogCaptureFixture
) -> None:
    """After a good snapshot, one page answered 200 with nothing: the entities the walk lost
    are looked up by id, still exist, so the listing is walked again and the snapshot is
    exact, the run saying so. Answered with nothing on every page: the dataset fails in one
    line, exit 1, and the earlier snapshot of the day stays, file and record."""
    name = dataset.name
    route = sandbox_listing(name)  # the sandbox's name for its listing
    async with Sandbox(sandbox_settings(listing_max_page_size=25)) as sb:
        assert (await take(sb, tmp_path, name)).status == "ok"
        sb.add_fault(FaultRule("empty-listing", routes=(route,), count=1))
        with caplog.at_level(logging.WARNING, "exporter"):
            second = await take(sb, tmp_path, name)
        assert second.status == "ok", second
        assert f"{name}: a walk lost entities that still exist; walking again" in caplog.text
        assert record_of(tmp_path, name).status == "complete"
        assert_exact(sb, tmp_path, dataset)
        assert sb.stats().count(f"{route}.by-id", 200) >= 1
        kept = record_of(tmp_path, name)
        sb.clear_faults()
        sb.add_fault(FaultRule("empty-listing", routes=(route,)))
        third = await take(sb, tmp_path, name)
    assert (third.status, third.exit_code) == ("failed", 1)
    (line,) = third.failed_windows
    assert line.startswith(f"{name}: Each of {MOST_WALKS} walks") and "\n" not in line
    assert record_of(tmp_path, name) == kept
    assert_exact(sb, tmp_path, dataset)


async def test_an_empty_answer_for_one_queue_is_read_again(tmp_path: Path) -> None:
    """Queue members have no GET-by-id: a queue answering no members after a snapshot that
    had some is read again, and the snapshot is exact."""
    dataset = next(d for d in LISTINGS if d.parent is not None)
    async with Sandbox(sandbox_settings()) as sb:
        assert (await take(sb, tmp_path, dataset.name)).status == "ok"
        sb.add_fault(FaultRule("empty-listing", routes=(sandbox_listing(dataset.name),), count=1))
        second = await take(sb, tmp_path, dataset.name)
        assert second.status == "ok", second
        assert record_of(tmp_path, dataset.name).status == "complete"
        assert_exact(sb, tmp_path, dataset)
        assert sb.stats().faults_injected == {"empty-listing": 1}


def test_lookups_sample_a_large_missing_set_and_judge_the_walk_by_it() -> None:
    """Few missing ids are all looked up; many are sampled first; a sample that says the walk
    lost most of what exists breaks it, one that finds them gone lets the rest be looked up,
    unless they are too many."""
    rng = random.Random(1)
    few = lookups.plan({b"a", b"b"}, previous=100, rng=rng)
    assert (sorted(few.first), few.rest, few.sampled) == ([b"a", b"b"], [], False)
    many = {str(i).encode() for i in range(300)}
    plan = lookups.plan(many, previous=300, rng=rng)
    assert plan.sampled and len(plan.first) == lookups.SAMPLE
    assert set(plan.first) | set(plan.rest) == many and not set(plan.first) & set(plan.rest)
    assert lookups.judge(plan, found=20, lost=300, previous=300, rest=280) is lookups.Check.BROKEN
    assert lookups.judge(plan, found=0, lost=300, previous=300, rest=100) is lookups.Check.CHECKED
    assert lookups.judge(plan, 0, 300, 300, rest=280) is lookups.Check.UNCHECKED


# -- a parent deleted mid-snapshot


async def test_a_queue_deleted_while_its_members_are_read_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A queue deleted between listing the queues and reading its members (404): it is
    skipped, said at info, and the members snapshot completes with every other queue's."""
    dataset = next(d for d in LISTINGS if d.parent is not None)
    async with Sandbox(sandbox_settings()) as sb:
        rule = FaultRule("entity-deleted", routes=(sandbox_listing(dataset.name),), skip=3, count=1)
        sb.add_fault(rule)
        with caplog.at_level(logging.INFO, "exporter"):
            summary = await take(sb, tmp_path, dataset.name)
        assert (summary.status, summary.exit_code) == ("ok", 0)
        assert sb.stats().count(sandbox_listing(dataset.name), 404) == 1
        assert "was deleted while it was read (404); skipped" in caplog.text
        assert record_of(tmp_path, dataset.name).status == "complete"
        assert len(sb.state.members) == len(sb.dataset.entities.queues) - 1
        assert_exact(sb, tmp_path, dataset)


# -- a refused listing cursor


@pytest.mark.parametrize("dataset", CURSORED, ids=name_of)
async def test_a_refused_listing_cursor_walks_the_listing_again(
    tmp_path: Path, dataset: Listing
) -> None:
    """A transient 400 on a page asked by the listing's own cursor walks it again from the
    first page: the snapshot is exact. Refused on every walk, it fails in one line after
    MOST_WALKS walks."""
    name = dataset.name
    route = sandbox_listing(name)  # the sandbox's name for its listing
    async with Sandbox(sandbox_settings(listing_max_page_size=3)) as sb:
        sb.add_fault(FaultRule("cursor-rejected", routes=(route,), count=1))
        summary = await take(sb, tmp_path / "once", name)
        assert summary.status == "ok", summary
        assert_exact(sb, tmp_path / "once", dataset)
        sb.clear_faults()
        sb.reset_stats()
        sb.add_fault(FaultRule("cursor-rejected", routes=(route,)))
        failed = await take(sb, tmp_path / "always", name)
    assert (failed.status, failed.exit_code) == ("failed", 1)
    (line,) = failed.failed_windows
    assert f"refused the cursor it sent on each of {MOST_WALKS} walks" in line and "\n" not in line
    assert sb.stats().count(name, 400) == MOST_WALKS


# -- a nextUri loop


@pytest.mark.parametrize("dataset", PAGED, ids=name_of)
async def test_a_next_uri_loop_fails_its_snapshot_at_once(tmp_path: Path, dataset: Listing) -> None:
    """A listing whose nextUri points back at its own page fails at the first repeat, in one
    line, a few requests in; the other listings complete (but queue members, which list the
    queues first), the run exits 1, and the earlier snapshot of the day stays."""
    name = dataset.name
    route = sandbox_listing(name)  # the sandbox's name for its listing
    async with Sandbox(sandbox_settings(listing_max_page_size=5)) as sb:
        paged = ",".join(d.name for d in PAGED)
        assert (await take(sb, tmp_path, paged)).status == "ok"
        kept = record_of(tmp_path, name)
        sb.reset_stats()
        sb.add_fault(FaultRule("next-uri-loop", routes=(route,)))
        summary = await take(sb, tmp_path, paged)
        requests = sb.stats().count(route)
    failing = {name} | {d.name for d in PAGED if d.parent and d.parent.name == name}
    assert (summary.status, summary.exit_code) == ("failed", 1)
    assert {line.split(":")[0] for line in summary.failed_windows} == failing
    for line in summary.failed_windows:
        assert "sent a nextUri it had sent before" in line and "\n" not in line
    # Each walk asks its first page, then that page again (at the size the service gave).
    walks = len(sb.dataset.entities.queues) if dataset.parent else len(failing)
    assert requests <= 2 * walks
    assert record_of(tmp_path, name) == kept
    assert summary.snapshots == len(PAGED) - len(failing)
