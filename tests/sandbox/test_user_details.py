"""The sandbox's user details: a status history consistent with the conversations, served the
way the service stores it (once per day a status touches, repeats removed only within a page)."""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from genesys_sandbox.data import Dataset
from genesys_sandbox.statuses import PRESENCE, ROUTING, Status
from genesys_sandbox.wire import format_instant
from tests.sandbox.support import JOBS, SPEC, START, Client, error_of, running

USER_JOBS = "/api/v2/analytics/users/details/jobs"
USER_QUERY = "/api/v2/analytics/users/details/query"
DAY_MS = 86_400_000
THREE_DAYS = "2026-11-01T00:00:00.000Z/2026-11-04T00:00:00.000Z"
Key = tuple[str, str, str]


def history(data: Dataset) -> dict[tuple[int, str], list[Status]]:
    by_user: dict[tuple[int, str], list[Status]] = {}
    for status in data.statuses.statuses:
        by_user.setdefault((status.user, status.kind), []).append(status)
    return by_user


def status_at(statuses: list[Status], at_ms: int) -> Status:
    return statuses[bisect_right([s.start_ms for s in statuses], at_ms) - 1]


@pytest.mark.parametrize("stay_offline", [True, False])
def test_each_history_is_contiguous_with_only_the_newest_status_open(stay_offline) -> None:
    """Statuses follow each other without a gap; only the newest is open. A leaver's newest
    is an OFFLINE (and OFF_QUEUE) from before they left that never ends, unless the data
    has leavers' statuses closed when they leave."""
    data = Dataset.build(dataclasses.replace(SPEC, leavers_stay_offline=stay_offline))
    agents = data.entities.agents
    for (user, _), statuses in history(data).items():
        for before, after in pairwise(statuses):
            assert before.end_ms == after.start_ms and before.value != after.value
        left = agents[user].leaves_at_ms
        assert (statuses[-1].end_ms is None) == (left is None or stay_offline)
        if left is not None:
            assert statuses[-1].value in ("OFFLINE", "OFF_QUEUE")
            assert statuses[-1].start_ms <= left


def test_agents_are_on_queue_and_interacting_while_they_handle_a_conversation() -> None:
    data = Dataset.build(SPEC)
    by_user = history(data)
    log = data.handling
    assert len(log) > 1000
    for agent, start in zip(log.agents, log.starts, strict=True):
        if start >= data.spec.end_ms:
            continue
        assert status_at(by_user[agent, PRESENCE], start).value == "ON_QUEUE"
        assert status_at(by_user[agent, ROUTING], start).value == "INTERACTING"


def test_statuses_cross_midnight_and_span_days_and_leavers_stop() -> None:
    data = Dataset.build(SPEC)
    statuses = data.statuses.statuses
    days_touched = Counter(
        ((s.end_ms or data.spec.end_ms) - 1) // DAY_MS - s.start_ms // DAY_MS for s in statuses
    )
    assert days_touched[1] > 50 and days_touched[2] > 10  # crossing one midnight, and two
    values = {s.value for s in statuses}
    assert {"OFFLINE", "ON_QUEUE", "BREAK", "MEAL", "IDLE", "INTERACTING", "OFF_QUEUE"} <= values
    for n, agent in enumerate(data.entities.agents):
        if agent.leaves_at_ms is not None:
            assert max(s.end_ms or 0 for s in statuses if s.user == n) <= agent.leaves_at_ms


async def job_pages(c: Client, body: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
    reply = await c.call("POST", USER_JOBS, json=body)
    assert reply.status == 202, reply.body
    job_id = reply.json()["jobId"]
    pages, params = [], {"pageSize": str(page_size)}
    while True:
        reply = await c.call("GET", f"{USER_JOBS}/{job_id}/results", params=params)
        assert reply.status == 200, reply.body
        pages.append(reply.json())
        if "cursor" not in pages[-1]:
            return pages
        params["cursor"] = pages[-1]["cursor"]


def keys_of(pages: list[dict[str, Any]]) -> Counter[Key]:
    return Counter(
        (entry["userId"], kind, status["startTime"])
        for page in pages
        for entry in page.get("userDetails", [])
        for kind in (PRESENCE, ROUTING)
        for status in entry.get(kind, [])
    )


def expected(data: Dataset, start_ms: int, end_ms: int, before_ms: int | None = None) -> set[Key]:
    history_ = data.statuses
    return {
        (history_.user_ids[s.user], s.kind, format_instant(_at(s.start_ms)))
        for s in history_.statuses
        if s.overlaps(start_ms, end_ms) and (before_ms is None or s.start_ms < before_ms)
    }


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_a_job_pages_short_repeats_across_pages_and_gives_every_overlapping_status() -> None:
    async with running() as c:
        pages = await job_pages(c, {"interval": THREE_DAYS, "order": "asc"}, 100)
        keys = keys_of(pages)
        data = c.sb.dataset
        start = data.spec.start_ms
        assert set(keys) == expected(data, start, start + 3 * DAY_MS)
        # Short pages long before the end, repeats only across pages, users over entries.
        assert any(len(p["userDetails"]) < 100 for p in pages[:-1])
        assert max(keys.values()) > 1
        for page in pages:
            assert max(keys_of([page]).values()) == 1
        entries = Counter(e["userId"] for p in pages for e in p["userDetails"])
        assert max(entries.values()) >= 3


async def test_jobs_stop_at_their_own_watermark_and_the_query_does_not() -> None:
    mark = START + timedelta(days=1, hours=12)
    async with running(user_availability_date=mark) as c:
        reply = await c.call("GET", f"{USER_JOBS}/availability")
        assert reply.json() == {"dataAvailabilityDate": format_instant(mark)}
        conversations = await c.call("GET", f"{JOBS}/availability")
        assert conversations.json()["dataAvailabilityDate"] != format_instant(mark)
        pages = await job_pages(c, {"interval": THREE_DAYS}, 1000)
        data, start = c.sb.dataset, c.sb.dataset.spec.start_ms
        mark_ms = int(mark.timestamp() * 1000)
        assert set(keys_of(pages)) == expected(data, start, start + 3 * DAY_MS, mark_ms)
        assert pages[0]["dataAvailabilityDate"] == format_instant(mark)
        query = await query_all(c, "2026-11-02T00:00:00.000Z/2026-11-03T00:00:00.000Z", 100)
        assert set(keys_of(query)) == expected(data, start + DAY_MS, start + 2 * DAY_MS)


async def query_all(c: Client, interval: str, size: int) -> list[dict[str, Any]]:
    pages, number = [], 1
    while True:
        body = {"interval": interval, "paging": {"pageSize": size, "pageNumber": number}}
        reply = await c.call("POST", USER_QUERY, json=body)
        assert reply.status == 200, reply.body
        page = reply.json()
        if "userDetails" not in page:
            assert page["totalHits"] > (number - 2) * size  # rows, before repeats go
            return pages
        pages.append(page)
        number += 1


async def test_the_query_refuses_long_intervals_unknown_fields_and_big_pages() -> None:
    async with running() as c:
        week = {"interval": "2026-11-01T00:00:00Z/2026-11-09T00:00:00Z"}
        assert error_of(await c.call("POST", USER_QUERY, json=week))["status"] == 400
        order_by = {"interval": THREE_DAYS, "orderBy": "conversationStart"}
        assert (await c.call("POST", USER_JOBS, json=order_by)).status == 400
        big = {"interval": THREE_DAYS, "paging": {"pageSize": 101, "pageNumber": 1}}
        refused = error_of(await c.call("POST", USER_QUERY, json=big))
        assert refused["code"] == "constraint.validation"


async def test_a_job_of_one_family_is_unknown_to_the_other() -> None:
    async with running() as c:
        reply = await c.call("POST", USER_JOBS, json={"interval": THREE_DAYS})
        job_id = reply.json()["jobId"]
        other = await c.call("GET", f"/api/v2/analytics/conversations/details/jobs/{job_id}")
        assert other.status == 404
        assert (await c.call("GET", f"{USER_JOBS}/{job_id}")).json()["state"] == "FULFILLED"
        assert (await c.call("DELETE", f"{USER_JOBS}/{job_id}")).status == 204


async def test_user_details_are_denied_alone() -> None:
    async with running(denied_permissions=("analytics:userDetail:view",)) as c:
        body = error_of(await c.call("POST", USER_JOBS, json={"interval": THREE_DAYS}))
        assert body["status"] == 403 and "analytics:userDetail:view" in body["message"]
        assert (await c.call("POST", JOBS, json={"interval": THREE_DAYS})).status == 202


async def test_the_control_endpoint_serves_the_ground_truth() -> None:
    async with running() as c:
        params = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
        async with c.session.get(
            f"{c.sb.url}/sandbox/user-details/ground-truth", params=params
        ) as r:
            body = await r.json()
        start = c.sb.dataset.spec.start_ms + DAY_MS
        truth = c.sb.dataset.statuses.truth(start, start + DAY_MS)
        assert body["count"] == len(truth) == len(body["statuses"]) > 1000
        assert {tuple(s[:3]) for s in body["statuses"]} == {
            (c.sb.dataset.statuses.user_ids[s.user], s.kind, format_instant(_at(s.start_ms)))
            for s in truth
        }
        async with c.session.get(f"{c.sb.url}/sandbox/user-details/ground-truth") as r:
            assert r.status == 400


async def test_a_user_id_filter_keeps_a_job_to_those_users() -> None:
    """userFilters on userId: the job's entries are those users' only, every status of theirs
    that overlaps the interval."""
    async with running() as c:
        history_ = c.sb.dataset.statuses
        users = history_.user_ids[:2]
        predicates = [{"dimension": "userId", "value": u} for u in users]
        body = {"interval": THREE_DAYS, "userFilters": [{"type": "or", "predicates": predicates}]}
        found = keys_of(await job_pages(c, body, 200))
        start = c.sb.dataset.spec.start_ms
        every = expected(c.sb.dataset, start, start + 3 * DAY_MS)
        assert found and set(found) == {k for k in every if k[0] in users}
