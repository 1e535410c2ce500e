"""Conversation-details jobs: overlap selection, cursor paging, states, limits and availability."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson

from genesys_sandbox import ManualClock
from tests.sandbox.support import DAY1, JOBS, START, error_of, running

DAY2 = "2026-11-02T00:00:00.000Z/2026-11-03T00:00:00.000Z"
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def test_paging_a_job_to_the_end_returns_exactly_the_overlap_set() -> None:
    """Following cursors yields every conversation alive in the interval, once, then no cursor."""
    async with running() as c:
        day2 = START + timedelta(days=1)
        job = await c.submit({"interval": DAY2})
        records = await c.all_results(job, page_size=100)
        ids = [r["conversationId"] for r in records]
        data = c.sb.dataset
        expected = [data.ids[i] for i in data.indices_overlapping(ms(day2), ms(day2) + 86_400_000)]
        assert ids == expected and len(set(ids)) == len(ids)
        started_before = set(ids) - data.ids_starting_in(day2, day2 + timedelta(days=1))
        assert started_before, "midnight crossers from day 1 overlap day 2"
        assert all(
            r["conversationStart"] < "2026-11-02"
            for r in records
            if r["conversationId"] in started_before
        )
        assert any("attributes" in p for r in records for p in r["participants"])
        pages = -(-len(ids) // 100)
        assert c.sb.stats().count("jobs.results", 200) == pages


async def test_result_pages_carry_cursor_until_last_and_the_availability_date() -> None:
    """Every page has dataAvailabilityDate; only the last page lacks a cursor."""
    async with running(job_default_page_size=150) as c:
        job = await c.submit({"interval": DAY1})
        first = (await c.call("GET", f"{JOBS}/{job}/results")).json()
        assert len(first["conversations"]) == 150 and isinstance(first["cursor"], str)
        assert INSTANT.match(first["dataAvailabilityDate"])
        total = len(c.sb.dataset.indices_overlapping(ms(START), ms(START) + 86_400_000))
        last = (await c.call("GET", f"{JOBS}/{job}/results", params={"pageSize": total})).json()
        assert "cursor" not in last and len(last["conversations"]) == total


async def test_oversize_and_bad_page_sizes_are_400_invalid_query_param_value() -> None:
    """pageSize above job_max_page_size, zero or not a number is 400 invalid.query.param.value."""
    async with running(job_default_page_size=10, job_max_page_size=50) as c:
        job = await c.submit({"interval": DAY1})
        assert (await c.call("GET", f"{JOBS}/{job}/results", params={"pageSize": 50})).status == 200
        for bad in ("51", "0", "many"):
            reply = await c.call("GET", f"{JOBS}/{job}/results", params={"pageSize": bad})
            body = error_of(reply)
            assert reply.status == 400 and body["code"] == "invalid.query.param.value"
            assert f"[{bad}]" in body["message"] and "[pageSize]" in body["message"]


async def test_job_goes_queued_pending_fulfilled_on_the_clock() -> None:
    """With job_delay_s=10: QUEUED, PENDING from 5 s, FULFILLED at 10 s; results 400 before."""
    clock = ManualClock()
    async with running(clock=clock, job_delay_s=10) as c:
        job = await c.submit({"interval": DAY1})
        status = (await c.call("GET", f"{JOBS}/{job}")).json()
        assert status["state"] == "QUEUED" and "completionDate" not in status
        assert INSTANT.match(status["submissionDate"]) and INSTANT.match(status["expirationDate"])
        early = await c.call("GET", f"{JOBS}/{job}/results")
        assert early.status == 400 and error_of(early)["code"] == "bad.request"
        clock.advance(5)
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "PENDING"
        clock.advance(5)
        done = (await c.call("GET", f"{JOBS}/{job}")).json()
        assert done["state"] == "FULFILLED" and INSTANT.match(done["completionDate"])
        assert (await c.call("GET", f"{JOBS}/{job}/results")).status == 200


async def test_jobs_expire_then_disappear() -> None:
    """After job_expiry_s the job is EXPIRED and its results 404; after as long again, 404."""
    clock = ManualClock()
    async with running(clock=clock, job_expiry_s=60) as c:
        job = await c.submit({"interval": DAY1})
        status = (await c.call("GET", f"{JOBS}/{job}")).json()
        expires = datetime.fromisoformat(status["expirationDate"])
        submitted = datetime.fromisoformat(status["submissionDate"])
        assert expires - submitted == timedelta(seconds=60)
        clock.advance(60)
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "EXPIRED"
        gone = await c.call("GET", f"{JOBS}/{job}/results")
        assert gone.status == 404 and error_of(gone)["code"] == "not.found"
        clock.advance(60)
        assert (await c.call("GET", f"{JOBS}/{job}")).status == 404


async def test_delete_cancels_the_job() -> None:
    """DELETE answers 204; the job then reads CANCELLED and its results 404; counted once."""
    async with running() as c:
        job = await c.submit({"interval": DAY1})
        assert (await c.call("DELETE", f"{JOBS}/{job}")).status == 204
        assert (await c.call("DELETE", f"{JOBS}/{job}")).status == 204
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "CANCELLED"
        assert (await c.call("GET", f"{JOBS}/{job}/results")).status == 404
        stats = c.sb.stats()
        assert stats.jobs_created == 1 and stats.jobs_deleted == 1
        assert stats.count("jobs.delete", 204) == 2


async def test_concurrent_job_cap_answers_429_with_the_analytics_limit() -> None:
    """More than max_concurrent_jobs queued jobs gets 429 naming the analytics limit."""
    clock = ManualClock()
    async with running(clock=clock, job_delay_s=10, max_concurrent_jobs=2) as c:
        first = await c.submit({"interval": DAY1})
        await c.submit({"interval": DAY1})
        refused = await c.call("POST", JOBS, json={"interval": DAY1})
        body = error_of(refused)
        assert refused.status == 429 and body["code"] == "too.many.requests.retry.after"
        assert body["limit"] == {
            "namespace": "analytics",
            "key": "details.jobs.concurrent.access.max",
            "value": 2,
        }
        assert refused.headers["Retry-After"] == "1"
        await c.call("DELETE", f"{JOBS}/{first}")
        await c.submit({"interval": DAY1})
        clock.advance(10)  # all fulfilled: no longer counted
        await c.submit({"interval": DAY1})
        await c.submit({"interval": DAY1})
        stats = c.sb.stats()
        assert stats.rate_limited == 1 and stats.jobs_created == 5


async def test_jobs_leave_out_what_is_not_yet_available() -> None:
    """A job sees only conversations starting before dataAvailabilityDate at submission."""
    cutoff = START + timedelta(hours=12)
    async with running(availability_date=cutoff) as c:
        avail = (await c.call("GET", f"{JOBS}/availability")).json()
        assert avail == {"dataAvailabilityDate": "2026-11-01T12:00:00.000Z"}
        records = await c.all_results(await c.submit({"interval": DAY1}))
        starts = [r["conversationStart"] for r in records]
        assert starts and max(starts) < "2026-11-01T12:00:00.000Z"
        assert len(records) == len(c.sb.dataset.ids_starting_in(START, cutoff))
        c.sb.update(availability_date=START + timedelta(days=1))
        assert len(await c.all_results(await c.submit({"interval": DAY1}))) > len(records)


async def test_availability_lags_now_by_the_setting() -> None:
    """Without a fixed date, dataAvailabilityDate is now minus availability_lag_s."""
    async with running(availability_lag_s=3600) as c:
        body = (await c.call("GET", f"{JOBS}/availability")).json()
        date = datetime.fromisoformat(body["dataAvailabilityDate"])
        lag = datetime.now(UTC) - date
        assert timedelta(seconds=3595) < lag < timedelta(seconds=3660)


async def test_start_of_day_matching_uses_the_touched_day_rule() -> None:
    """startOfDayIntervalMatching: an hour of day 2 returns every conversation starting day 2."""
    async with running() as c:
        day2 = START + timedelta(days=1)
        body = {
            "interval": "2026-11-02T06:00:00Z/2026-11-02T07:00:00Z",
            "startOfDayIntervalMatching": True,
        }
        ids = {r["conversationId"] for r in await c.all_results(await c.submit(body))}
        assert ids == c.sb.dataset.ids_starting_in(day2, day2 + timedelta(days=1))


async def test_order_desc_and_limit() -> None:
    """order=desc reverses the results; limit keeps only the first N."""
    async with running() as c:
        asc = [r["conversationId"] for r in await c.all_results(await c.submit({"interval": DAY1}))]
        desc_job = await c.submit({"interval": DAY1, "order": "desc", "limit": 7})
        desc = [r["conversationId"] for r in await c.all_results(desc_job)]
        assert desc == asc[::-1][:7]


async def test_bad_submissions_are_400_with_the_platform_codes() -> None:
    """Missing/malformed/backwards intervals, bad enums and non-JSON bodies get 400s."""
    cases = [
        ({}, "bad.request"),
        ({"interval": "2026-11-01"}, "bad.request"),
        ({"interval": "yesterday/today"}, "invalid.date"),
        ({"interval": "2026-11-02T00:00:00Z/2026-11-01T00:00:00Z"}, "bad.request"),
        ({"interval": DAY1, "order": "sideways"}, "invalid.value"),
        ({"interval": DAY1, "orderBy": "duration"}, "invalid.value"),
        ({"interval": DAY1, "startOfDayIntervalMatching": "yes"}, "invalid.value"),
        ([DAY1], "bad.request"),
    ]
    async with running() as c:
        for body, code in cases:
            reply = await c.call("POST", JOBS, json=body)
            assert reply.status == 400 and error_of(reply)["code"] == code, body
        order = error_of(await c.call("POST", JOBS, json={"interval": DAY1, "order": "up"}))
        assert order["message"].startswith("Value [up] is not valid for field type [order]")
        assert c.sb.stats().jobs_created == 0


async def test_unknown_jobs_and_foreign_cursors_are_refused() -> None:
    """An unknown job id is 404 everywhere; a cursor of another job or garbage is 400."""
    async with running(job_default_page_size=10) as c:
        for method, suffix in (("GET", ""), ("GET", "/results"), ("DELETE", "")):
            reply = await c.call(method, f"{JOBS}/no-such-job{suffix}")
            assert reply.status == 404 and error_of(reply)["code"] == "not.found"
        one, two = await c.submit({"interval": DAY1}), await c.submit({"interval": DAY1})
        cursor = (await c.call("GET", f"{JOBS}/{one}/results")).json()["cursor"]
        for bad in (cursor, "garbage!"):
            reply = await c.call("GET", f"{JOBS}/{two}/results", params={"cursor": bad})
            assert reply.status == 400 and error_of(reply)["code"] == "bad.request"


def id_filter(dimension: str, values: list[str]) -> list[dict[str, object]]:
    predicates = [{"dimension": dimension, "value": v} for v in values]
    return [{"type": "or", "predicates": predicates}]


async def test_a_conversation_id_filter_selects_those_conversations_only() -> None:
    """conversationFilters on conversationId keep the job to those ids (within its interval);
    an id outside the interval or unknown selects nothing."""
    async with running() as c:
        data = c.sb.dataset
        inside = [data.ids[i] for i in (3, 40, 41)]
        outside = data.ids[-1]  # starts on the last day, not on day 1
        body = {
            "interval": DAY1,
            "startOfDayIntervalMatching": True,
            "conversationFilters": id_filter("conversationId", [*inside, outside, "nope"]),
        }
        records = await c.all_results(await c.submit(body), page_size=100)
        assert [r["conversationId"] for r in records] == inside
        bad = await c.call("POST", JOBS, json={"interval": DAY1, "conversationFilters": {}})
        assert bad.status == 400


async def test_open_conversations_are_served_without_an_end_until_they_close() -> None:
    """open_conversations serves that many messaging and e-mail conversations as still going
    on (no conversationEnd, the same id and start); lowering it serves them whole again."""
    async with running(open_conversations=4) as c:
        data = c.sb.dataset
        opened = sorted(c.sb.state.open.indices)
        assert len(opened) == 4
        ids = [data.ids[i] for i in opened]
        body = {
            "interval": "2026-11-01T00:00:00.000Z/2026-11-04T00:00:00.000Z",
            "conversationFilters": id_filter("conversationId", ids),
        }
        records = await c.all_results(await c.submit(body), page_size=100)
        assert sorted(r["conversationId"] for r in records) == sorted(ids)
        assert all("conversationEnd" not in r for r in records)
        c.sb.update(open_conversations=0)
        records = await c.all_results(await c.submit(body), page_size=100)
        assert {r["conversationId"]: r for r in records} == {
            data.ids[i]: orjson.loads(data.job_record(i)) for i in opened
        }
