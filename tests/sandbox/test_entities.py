"""The org's entities and the conversations agree: every id resolves, leavers only appear
before they left, and the agent answering a queue is a member of it and on shift."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from genesys_sandbox import DatasetSpec
from genesys_sandbox.data import Dataset, to_ms
from genesys_sandbox.entities import build_entities
from genesys_sandbox.schedule import SLOT_MS, Schedule
from tests.sandbox.support import SPEC, START


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset.build(SPEC)


@pytest.fixture(scope="module")
def records(dataset: Dataset) -> list[dict[str, Any]]:
    return [orjson.loads(dataset.job_record(i)) for i in range(len(dataset))]


def ms(text: str) -> int:
    return to_ms(datetime.fromisoformat(text))


def agent_legs(record: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(agent participant, its first session) of every agent leg."""
    for participant in record["participants"]:
        if participant["purpose"] == "agent":
            yield participant, participant["sessions"][0]


def segments(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for participant in record["participants"]:
        for session in participant["sessions"]:
            yield from session["segments"]


def test_every_id_in_every_conversation_resolves(
    dataset: Dataset, records: list[dict[str, Any]]
) -> None:
    """userId, teamId, queueId, wrapUpCode, divisionIds, flows, skills and languages resolve."""
    e = dataset.entities
    known = {
        "user": {u.id for u in e.users}, "team": {t.id for t in e.teams},
        "queue": {q.id for q in e.queues}, "wrapup": {w.id for w in e.wrapup_codes},
        "division": {d.id for d in e.divisions}, "skill": {s.id for s in e.skills},
        "language": {lang.id for lang in e.languages},
    }  # fmt: skip
    flows = {f.id: (f.name, f.type, f.version) for f in e.flows}
    languages_seen = 0
    for record in records:
        assert set(record["divisionIds"]) <= known["division"]
        for participant, _ in agent_legs(record):
            assert participant["userId"] in known["user"] and participant["teamId"] in known["team"]
        for segment in segments(record):
            assert segment.get("queueId", next(iter(known["queue"]))) in known["queue"]
            assert segment.get("wrapUpCode", next(iter(known["wrapup"]))) in known["wrapup"]
            assert set(segment.get("requestedRoutingSkillIds", ())) <= known["skill"]
            if "requestedLanguageId" in segment:
                languages_seen += 1
                assert segment["requestedLanguageId"] in known["language"]
        for participant in record["participants"]:
            for session in participant["sessions"]:
                if "flow" in session:
                    flow = session["flow"]
                    assert flows[flow["flowId"]] == (
                        flow["flowName"],
                        flow["flowType"],
                        flow["flowVersion"],
                    )
    assert languages_seen > len(records) // 20


def test_leavers_appear_only_in_conversations_before_they_left(
    dataset: Dataset, records: list[dict[str, Any]]
) -> None:
    """Inactive and deleted agents handle conversations, but only ones started before they left."""
    leavers = {u.id: u for u in dataset.entities.agents if u.leaves_at_ms is not None}
    assert {u.state for u in leavers.values()} == {"inactive", "deleted"}
    handled: set[str] = set()
    for record in records:
        for participant, _ in agent_legs(record):
            leaver = leavers.get(participant["userId"])
            if leaver is not None:
                handled.add(leaver.id)
                assert leaver.leaves_at_ms is not None
                assert ms(record["conversationStart"]) < leaver.leaves_at_ms
    assert handled  # (with 1,500 conversations over 3 days, not every leaver worked a shift)
    assert all(SPEC.start_ms < u.leaves_at_ms < SPEC.end_ms for u in leavers.values())  # type: ignore[operator]


def test_queue_legs_are_answered_by_members_on_shift(
    dataset: Dataset, records: list[dict[str, Any]]
) -> None:
    """Each agent leg's queue counts the agent as a member, and its alert falls in their shift."""
    members = {q.id: set(q.member_ids) for q in dataset.entities.queues}
    index = {a.id: n for n, a in enumerate(dataset.entities.agents)}
    legs = 0
    for record in records:
        for participant, session in agent_legs(record):
            first = session["segments"][0]
            queues = [s["queueId"] for s in session["segments"] if "queueId" in s]
            if not queues:
                continue  # an agent's own outbound call still dialling: no queue yet
            assert participant["userId"] in members[queues[0]]
            shifts = dataset.schedule.shifts[index[participant["userId"]]]
            assert any(shift.covers(ms(first["segmentStart"])) for shift in shifts)
            legs += 1
    assert legs > len(records) // 2


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("days", [1, 8])
def test_every_queue_has_someone_on_queue_every_quarter_hour(seed: int, days: int) -> None:
    """Whatever the seed and length, every queue has a member on queue (not on a break) in
    every quarter hour of the range: conversations never need an agent off shift."""
    spec = DatasetSpec(seed=seed, days=days, start=START)
    rng = random.Random(seed)
    entities = build_entities(rng, (spec.start_ms, spec.end_ms))
    schedule = Schedule(entities, (spec.start_ms, spec.end_ms), rng)
    for q in range(len(entities.queues)):
        for at in range(spec.start_ms, spec.end_ms, SLOT_MS):
            for agent in schedule.answerers(q, at):
                shift = next(s for s in schedule.shifts[agent] if s.covers(at))
                assert not any(a <= at < b for a, b, _ in shift.away)


def test_the_org_is_deterministic_and_users_are_distinct(dataset: Dataset) -> None:
    """The same spec gives the same org; users' names and emails are unique."""
    again = Dataset.build(SPEC).entities
    assert again == dataset.entities
    users = dataset.entities.users
    assert len({u.name for u in users}) == len({u.email for u in users}) == len(users)
    assert {u.manager_id for u in dataset.entities.agents} <= {u.id for u in users}
