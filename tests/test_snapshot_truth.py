"""Snapshots that tell the truth: a refused page size is learned, and a nextUri loop fails its
dataset at once. Each situation runs on every listing it applies to."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from exporter.datasets import Listing
from exporter.engine.listing import refused_page_size
from exporter.engine.snapshot import SLOTS
from exporter.store.manifest import Manifest, WindowRecord
from genesys_sandbox import FaultRule, Sandbox
from tests.support import sandbox_settings
from tests.test_snapshots import LISTINGS, sandbox_ids, snapshot_lines, take

TAKEN = ("complete", "provisional")


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


@pytest.mark.parametrize("dataset", LISTINGS, ids=name_of)
async def test_a_listing_refusing_the_page_size_is_asked_the_largest_it_allows(
    tmp_path: Path, dataset: Listing
) -> None:
    """A listing answering an over-large pageSize with 400 naming 1-40 (queue members, which
    ask 100: 1-30) is asked that size from then on, for the run: the snapshot is exact and
    the refusal came once (per walk running when it was learned)."""
    settings = sandbox_settings(listing_max_page_size=40, queue_members_max_page_size=30,
                                listing_refuse_oversize=(dataset.name,))  # fmt: skip
    async with Sandbox(settings) as sb:
        summary = await take(sb, tmp_path, dataset.name)
        assert summary.status == "ok", summary
        assert 1 <= sb.stats().count(dataset.name, 400) <= SLOTS
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
    assert Manifest.load(tmp_path).entities() == ["queues"]


# -- a nextUri loop


@pytest.mark.parametrize("dataset", LISTINGS, ids=name_of)
async def test_a_next_uri_loop_fails_its_snapshot_at_once(tmp_path: Path, dataset: Listing) -> None:
    """A listing whose nextUri points back at its own page fails at the first repeat, in one
    line, a few requests in; the other listings complete (but queue members, which list the
    queues first), the run exits 1, and the earlier snapshot of the day stays."""
    name = dataset.name
    async with Sandbox(sandbox_settings(listing_max_page_size=5)) as sb:
        assert (await take(sb, tmp_path)).status == "ok"
        kept = record_of(tmp_path, name)
        sb.reset_stats()
        sb.add_fault(FaultRule("next-uri-loop", routes=(name,)))
        summary = await take(sb, tmp_path)
        requests = sb.stats().count(name)
    failing = {name} | {d.name for d in LISTINGS if d.parent and d.parent.name == name}
    assert (summary.status, summary.exit_code) == ("failed", 1)
    assert {line.split(":")[0] for line in summary.failed_windows} == failing
    for line in summary.failed_windows:
        assert "sent a nextUri it had sent before" in line and "\n" not in line
    # Each walk asks its first page, then that page again (at the size the service gave).
    walks = len(sb.dataset.entities.queues) if dataset.parent else len(failing)
    assert requests <= 2 * walks
    assert record_of(tmp_path, name) == kept
    assert summary.snapshots == len(LISTINGS) - len(failing)
