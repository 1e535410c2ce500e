"""Snapshots of the entity listings: each equals the sandbox's entities exactly once, with drift
on, every id in the exported conversations resolves, and a denied permission fails only its
dataset."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from collections import Counter
from pathlib import Path

import orjson
import pytest

from exporter.datasets import DATASETS, Listing, select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.jsonl import read_records
from exporter.store.manifest import Manifest
from genesys_sandbox import FaultRule, Sandbox, run_sandbox_in_thread
from tests.support import (
    ANNOUNCED_BUDGET,
    START,
    cli,
    cli_env,
    data_files,
    days,
    exported_ids,
    exporter_settings,
    ground_truth,
    sandbox_listing,
    sandbox_settings,
    stop_after,
)

LISTINGS = [d for d in DATASETS.values() if isinstance(d, Listing)]
FLAT = [d for d in LISTINGS if d.parent is None]


def snapshot_lines(
    out: Path, name: str, statuses: tuple[str, ...] = ("complete",)
) -> list[dict[str, object]]:
    """The lines of the dataset's one snapshot file, checked against its manifest entry (its
    status one of ``statuses``)."""
    (record,) = Manifest.load(out).records(name)
    assert record.status in statuses and record.source == "listing" and record.taken_at
    assert record.file is not None and (out / record.file).stat().st_size == record.bytes
    lines = [orjson.loads(line) for line in read_records(out / record.file)]
    assert len(lines) == record.records
    return lines


SNAPSHOTS = ",".join(d.name for d in LISTINGS)  # the dimensions and the workforce units


async def take(sb, out: Path, datasets: str = SNAPSHOTS, **sections):
    settings = exporter_settings(sb, out, **sections)
    request = ExportRequest(start=None, end=START + days(3), datasets=select(datasets))
    return await export(settings, request, progress=NoProgress())


def sandbox_ids(sb, name: str) -> Counter[str]:
    return Counter(e.id for e in sb.state.listings[sandbox_listing(name)].entities)


async def test_every_snapshot_equals_the_sandboxs_entities_exactly_once(sandbox, tmp_path) -> None:
    """Each listing's file holds each of the sandbox's entities once, as the API sent it:
    users of every state, queue members as (queue, user) pairs."""
    summary = await take(sandbox, tmp_path)
    assert summary.status == "ok", summary
    assert summary.snapshots == len(LISTINGS)
    for dataset in FLAT:
        lines = snapshot_lines(tmp_path, dataset.name)
        assert Counter(str(line["id"]) for line in lines) == sandbox_ids(sandbox, dataset.name)
    users = snapshot_lines(tmp_path, "users")
    assert {line["state"] for line in users} >= {"active", "inactive", "deleted"}
    assert all("team" in line or "skills" in line for line in users if line.get("teamId"))
    members = Counter((m["queueId"], m["id"]) for m in snapshot_lines(tmp_path, "queue-members"))
    expected = Counter((q, e.id) for q, entities in sandbox.state.members.items() for e in entities)
    assert members == expected and max(members.values()) == 1


@pytest.mark.parametrize("page_size", [3, 7])
async def test_drift_during_the_walk_never_loses_an_entity_that_existed_throughout(
    tmp_path, page_size: int
) -> None:
    """Entities created and deleted while the exporter pages by number (so pages shift both
    ways), with pages small enough to need many: every entity present for the whole walk is
    there once, and nothing that never existed (complete, or provisional where the walks never
    settled)."""
    settings = sandbox_settings(listing_drift=0.5, listing_max_page_size=page_size)
    async with Sandbox(settings) as sb:
        begun = sb.state.clock.now()
        summary = await take(sb, tmp_path, "queues,wrapup-codes,skills,users")
        ended = sb.state.clock.now()
        assert summary.status == "ok", summary
        drifted = 0
        for name in ("queues", "wrapup-codes", "skills", "users"):
            collection = sb.state.listings[name]
            lines = snapshot_lines(tmp_path, name, ("complete", "provisional"))
            ids = Counter(str(line["id"]) for line in lines)
            assert max(ids.values()) == 1
            assert collection.present_throughout(begun, ended) <= set(ids), name
            assert set(ids) <= collection.ever_present(begun, ended), name
            drifted += len(collection.history())
        assert drifted > 10  # the walks really met drift


async def test_every_id_in_exported_conversations_resolves_in_the_snapshots(
    sandbox, tmp_path
) -> None:
    """Users (agents, inactive and deleted ones of older conversations), queues, wrap-up
    codes, divisions, flows, skills, languages and teams named by any conversation, and the
    users and presence definitions named by any status, are in the exported entities."""
    settings = exporter_settings(sandbox, tmp_path)
    request = ExportRequest(START, START + days(3), datasets=select("all"))
    summary = await export(settings, request, progress=NoProgress())
    assert summary.status == "ok", summary
    entities = {d.name: {str(line["id"]) for line in snapshot_lines(tmp_path, d.name)}
                for d in FLAT}  # fmt: skip
    referenced = ("users", "teams", "queues", "wrapup-codes", "divisions", "flows", "skills",
                  "languages", "presence-definitions")  # fmt: skip
    named: dict[str, set[str]] = {k: set() for k in referenced}
    for path in sorted((tmp_path / "conversations").glob("*.jsonl")):
        for raw in read_records(path):
            collect_ids(orjson.loads(raw), named)
    for path in sorted((tmp_path / "user-details").glob("*.jsonl")):
        for raw in read_records(path):
            entry = orjson.loads(raw)
            named["users"].add(entry["userId"])
            presences = named["presence-definitions"]
            presences.update(p["organizationPresenceId"] for p in entry["primaryPresence"])
    for name, ids in named.items():
        assert ids, name
        assert ids <= entities[name], (name, sorted(ids - entities[name])[:3])


def collect_ids(conversation: dict, named: dict[str, set[str]]) -> None:
    named["divisions"].update(conversation.get("divisionIds", []))
    for participant in conversation["participants"]:
        if "userId" in participant:
            named["users"].add(participant["userId"])
        if "teamId" in participant:
            named["teams"].add(participant["teamId"])
        for session in participant["sessions"]:
            if "flow" in session:
                named["flows"].add(session["flow"]["flowId"])
            for segment in session["segments"]:
                if "queueId" in segment:
                    named["queues"].add(segment["queueId"])
                if "wrapUpCode" in segment:
                    named["wrapup-codes"].add(segment["wrapUpCode"])
                named["skills"].update(segment.get("requestedRoutingSkillIds", []))
                if "requestedLanguageId" in segment:
                    named["languages"].add(segment["requestedLanguageId"])


async def test_a_denied_permission_fails_only_its_datasets(tmp_path) -> None:
    """Without routing:queue:view, queues and queue members fail with one line each naming
    the permission, every other dataset completes, and the run exits 3."""
    async with Sandbox(sandbox_settings(denied_permissions=("routing:queue:view",))) as sb:
        settings = exporter_settings(sb, tmp_path)
        request = ExportRequest(START, START + days(1), datasets=select("all"))
        summary = await export(settings, request, progress=NoProgress())
    assert (summary.status, summary.exit_code) == ("denied", 3)
    assert [line.split(":")[0] for line in summary.denied] == ["queue-members", "queues"]
    assert all("routing:queue:view" in line for line in summary.denied)
    done = set(Manifest.load(tmp_path).datasets())
    assert done == set(DATASETS) - {"queues", "queue-members"}
    assert set(exported_ids(tmp_path / "conversations")) == ground_truth(sb, START, START + days(1))


async def test_a_later_snapshot_the_same_day_replaces_the_file(sandbox, tmp_path) -> None:
    """Two runs the same day leave one file per dataset, the second run's."""
    await take(sandbox, tmp_path, "queues,teams")
    first = {r.name: r.run_id for r in Manifest.load(tmp_path).records("queues")}
    await take(sandbox, tmp_path, "queues,teams")
    second = {r.name: r.run_id for r in Manifest.load(tmp_path).records("queues")}
    assert first.keys() == second.keys() and first != second
    assert len(list((tmp_path / "queues").iterdir())) == 1


LISTING_FAULTS = [
    FaultRule(kind="status", status=429, retry_after="0.05", probability=0.3, count=8),
    FaultRule(kind="status", status=503, probability=0.3, count=8),
    FaultRule(kind="drop", probability=0.2, count=5),
    FaultRule(kind="truncate", probability=0.2, count=5),
    FaultRule(kind="invalid-json", probability=0.2, count=5),
]


@pytest.mark.parametrize("fault", LISTING_FAULTS, ids=lambda r: f"{r.kind}-{r.status}")
async def test_listing_faults_still_give_exact_snapshots(tmp_path, fault: FaultRule) -> None:
    """The fault suite on every listing route: each snapshot still equals the sandbox's."""
    routes = tuple(sandbox_listing(d.name) for d in LISTINGS)
    async with Sandbox(sandbox_settings(listing_max_page_size=5)) as sb:
        sb.add_fault(dataclasses.replace(fault, routes=routes))
        summary = await take(sb, tmp_path)
        assert summary.status == "ok", summary
        assert sum(sb.stats().faults_injected.values()) > 0
        for dataset in FLAT:
            ids = Counter(str(line["id"]) for line in snapshot_lines(tmp_path, dataset.name))
            assert ids == sandbox_ids(sb, dataset.name)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_snapshot_killed_or_stopped_mid_walk_is_taken_again_exactly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed or stopped while the listings are being walked (pages of 5, so walks take many
    requests), the rerun takes the unfinished snapshots again: each equals the sandbox's
    entities once (no drift: what it held all along), and nothing half-written is left
    under a final name."""
    settings = sandbox_settings(
        listing_max_page_size=20, latency_ms=5, rate_per_minute=ANNOUNCED_BUDGET
    )
    with run_sandbox_in_thread(settings) as sb:
        out = tmp_path / "out"
        command = cli(sb, tmp_path, out, "--datasets", SNAPSHOTS)
        stop_after(sb, command, "users", 3, sig)
        taken = Manifest.load(out).datasets() if (out / "manifest.json").exists() else []
        assert len(taken) < len(LISTINGS)  # stopped mid-way: some snapshots unfinished
        for path in data_files(out):
            # Nothing half-written under a final name. A file is renamed into place whole and
            # recorded just after, so a SIGKILL between the two leaves it whole but unrecorded
            # (the manifest never claims more than the disk holds); the rerun replaces it.
            data = path.read_bytes()
            assert data.endswith(b"\n"), path
            assert all(orjson.loads(line) for line in data.splitlines()), path
        again = subprocess.run(command, env=cli_env(sb), capture_output=True, timeout=90)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        recorded = {r.file for d in LISTINGS for r in Manifest.load(out).records(d.name)}
        assert {p.relative_to(out).as_posix() for p in data_files(out)} == recorded
        for dataset in FLAT:
            lines = snapshot_lines(out, dataset.name)
            held = sb.listing_truth(sandbox_listing(dataset.name), 0.0, sb.now()).present_throughout
            assert Counter(str(line["id"]) for line in lines) == Counter(held)
        assert not list(out.rglob("*.part"))
