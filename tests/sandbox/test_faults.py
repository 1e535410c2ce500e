"""Fault injection: every kind on the wire, rule bookkeeping, and the seeded random mix."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
import orjson
import pytest

from genesys_sandbox import FaultRule, ManualClock, Sandbox, fault_mix
from tests.sandbox.support import DAY1, JOBS, Client, error_of, running, settings

AVAILABILITY = f"{JOBS}/availability"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "internal.server.error"),
        (502, "bad.gateway"),
        (503, "service.unavailable"),
        (504, "request.timeout"),
    ],
)
async def test_status_faults_answer_the_platform_error_body(status: int, code: str) -> None:
    """A status fault answers that status with its ErrorBody code once, then normal service."""
    async with running() as c:
        c.sb.add_fault(FaultRule("status", status=status, count=1))
        reply = await c.call("GET", AVAILABILITY)
        assert reply.status == status and error_of(reply)["code"] == code
        assert "Retry-After" not in reply.headers
        assert (await c.call("GET", AVAILABILITY)).status == 200
        stats = c.sb.stats()
        assert stats.faults_injected == {"status": 1}
        assert stats.count("jobs.availability", status) == 1


async def test_retry_after_in_seconds_and_hours() -> None:
    """Retry-After goes out as given: a 503 with 2 s, a daily-quota 429 with 4 hours."""
    async with running() as c:
        c.sb.add_fault(FaultRule("status", status=503, retry_after="2", count=1))
        c.sb.add_fault(FaultRule("status", status=429, retry_after="14400", count=1))
        first, second = await c.call("GET", AVAILABILITY), await c.call("GET", AVAILABILITY)
        assert (first.status, first.headers["Retry-After"]) == (503, "2")
        assert (second.status, second.headers["Retry-After"]) == (429, "14400")
        assert "[14400]" in error_of(second)["message"]
        assert c.sb.stats().rate_limited == 1


async def test_retry_after_as_an_http_date() -> None:
    """retry_after="http-date:5" sends an HTTP-date about five seconds ahead."""
    async with running() as c:
        c.sb.add_fault(FaultRule("status", status=429, retry_after="http-date:5", count=1))
        reply = await c.call("GET", AVAILABILITY)
        when = parsedate_to_datetime(reply.headers["Retry-After"])
        ahead = (when - datetime.now(UTC)).total_seconds()
        assert reply.status == 429 and 3.5 <= ahead <= 7


async def test_429_without_retry_after() -> None:
    """A 429 fault without retry_after has no Retry-After header but the normalized body."""
    async with running() as c:
        c.sb.add_fault(FaultRule("status", status=429, count=1))
        reply = await c.call("GET", AVAILABILITY)
        assert reply.status == 429 and "Retry-After" not in reply.headers
        assert error_of(reply)["code"] == "too.many.requests.retry.after"


async def test_drop_closes_the_connection_before_answering() -> None:
    """drop: the client sees a disconnect; the sandbox counts status 0 and the fault."""
    async with running() as c:
        await c.login()
        c.sb.add_fault(FaultRule("drop", routes=("jobs.availability",)))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await c.call("GET", AVAILABILITY)
        stats = c.sb.stats()
        assert stats.count("jobs.availability", 0) == stats.faults_injected["drop"] >= 1
        assert stats.count("jobs.availability", 200) == 0


async def test_drop_mid_body_sends_headers_then_half_the_body() -> None:
    """drop-mid-body on submit: the job exists but the client gets a payload error."""
    async with running() as c:
        await c.login()
        c.sb.add_fault(FaultRule("drop-mid-body", routes=("jobs.submit",), count=1))
        with pytest.raises(aiohttp.ClientPayloadError):
            await c.call("POST", JOBS, json={"interval": DAY1})
        stats = c.sb.stats()
        assert stats.jobs_created == 1 and stats.count("jobs.submit", 202) == 1
        assert stats.faults_injected == {"drop-mid-body": 1}


async def test_hang_never_answers_and_does_not_hold_up_shutdown() -> None:
    """hang: the client times out; closing the sandbox does not wait for hang_s."""
    began = time.perf_counter()
    async with running() as c:
        await c.login()
        c.sb.add_fault(FaultRule("hang", routes=("jobs.availability",)))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.call("GET", AVAILABILITY), 0.2)
        assert c.sb.stats().in_flight == 1
    assert time.perf_counter() - began < 5


async def test_hang_s_bounds_the_hang_then_drops() -> None:
    """With hang_s=0.2 the connection is dropped after 0.2 s, counted as status 0."""
    async with running() as c:
        await c.login()
        c.sb.add_fault(FaultRule("hang", routes=("jobs.availability",), hang_s=0.2))
        began = time.perf_counter()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await c.call("GET", AVAILABILITY)
        assert time.perf_counter() - began >= 0.2
        stats = c.sb.stats()
        assert stats.count("jobs.availability", 0) == stats.faults_injected["hang"] >= 1


async def test_truncate_cuts_the_json_with_an_honest_length() -> None:
    """truncate: complete HTTP (Content-Length matches) carrying half a JSON document."""
    async with running() as c:
        job = await c.submit({"interval": DAY1})
        c.sb.add_fault(FaultRule("truncate", routes=("jobs.results",), count=1))
        reply = await c.call("GET", f"{JOBS}/{job}/results")
        assert reply.status == 200 and int(reply.headers["Content-Length"]) == len(reply.body)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(reply.body)


async def test_invalid_json_replaces_the_body() -> None:
    """invalid-json: same status, a body that is not JSON."""
    async with running() as c:
        c.sb.add_fault(FaultRule("invalid-json", routes=("users",), count=1))
        reply = await c.call("GET", "/api/v2/users")
        assert reply.status == 200 and reply.body.startswith(b"<html>")


async def test_job_failed_ends_the_job_failed() -> None:
    """job-failed: the submit succeeds, the job reads FAILED with a message, results are 400."""
    async with running() as c:
        c.sb.add_fault(FaultRule("job-failed", count=1))
        job = await c.submit({"interval": DAY1})
        status = (await c.call("GET", f"{JOBS}/{job}")).json()
        assert status["state"] == "FAILED" and status["errorMessage"]
        assert (await c.call("GET", f"{JOBS}/{job}/results")).status == 400
        healthy = await c.submit({"interval": DAY1})
        assert (await c.call("GET", f"{JOBS}/{healthy}")).json()["state"] == "FULFILLED"


async def test_job_expired_expires_the_job_on_a_results_call() -> None:
    """job-expired: the results call finds the job expired (404) and the job reads EXPIRED."""
    async with running() as c:
        job = await c.submit({"interval": DAY1})
        c.sb.add_fault(FaultRule("job-expired", count=1))
        reply = await c.call("GET", f"{JOBS}/{job}/results")
        assert reply.status == 404 and error_of(reply)["code"] == "not.found"
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "EXPIRED"


async def test_job_stuck_stays_queued_on_the_clock_for_hang_s_then_runs_its_course() -> None:
    """job-stuck: the job reads QUEUED for hang_s of the sandbox clock (a stalled queue; its
    results are 400 meanwhile), then goes PENDING and FULFILLED after the usual delay."""
    clock = ManualClock()
    async with running(clock=clock, job_delay_s=10) as c:
        c.sb.add_fault(FaultRule("job-stuck", count=1, hang_s=600))
        job = await c.submit({"interval": DAY1})
        clock.advance(599)
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "QUEUED"
        assert (await c.call("GET", f"{JOBS}/{job}/results")).status == 400
        clock.advance(6)
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "PENDING"
        clock.advance(5)
        assert (await c.call("GET", f"{JOBS}/{job}")).json()["state"] == "FULFILLED"
        assert c.sb.stats().faults_injected == {"job-stuck": 1}


async def test_results_expire_after_job_expiry_pages_of_one_job() -> None:
    """job_expiry_pages=2: each job serves two results pages, then reads EXPIRED and its
    results 404; another job serves its own two."""
    async with running(job_default_page_size=10, job_expiry_pages=2) as c:
        first, second = await c.submit({"interval": DAY1}), await c.submit({"interval": DAY1})
        page = (await c.call("GET", f"{JOBS}/{first}/results")).json()
        cursor = {"cursor": page["cursor"]}
        assert (await c.call("GET", f"{JOBS}/{first}/results", params=cursor)).status == 200
        assert (await c.call("GET", f"{JOBS}/{second}/results")).status == 200
        gone = await c.call("GET", f"{JOBS}/{first}/results", params=cursor)
        assert gone.status == 404 and error_of(gone)["code"] == "not.found"
        assert (await c.call("GET", f"{JOBS}/{first}")).json()["state"] == "EXPIRED"
        assert (await c.call("GET", f"{JOBS}/{second}")).json()["state"] == "FULFILLED"


async def test_repeat_records_repeats_within_a_page_and_across_its_seam() -> None:
    """repeat-records: a page sends its middle record twice and starts with the previous
    page's last record; the distinct records are still exactly the job's."""
    async with running(job_default_page_size=100) as c:
        job = await c.submit({"interval": DAY1})
        clean = [r["conversationId"] for r in await c.all_results(job)]
        c.sb.add_fault(FaultRule("repeat-records", skip=1))
        repeated = [r["conversationId"] for r in await c.all_results(job)]
        assert len(repeated) == len(clean) + 2 * (-(-len(clean) // 100) - 1)
        assert sorted(set(repeated)) == sorted(clean) and len(set(clean)) == len(clean)
        second_page_start = repeated[100]  # page 1 was let through: 100 records
        assert second_page_start == clean[99]


async def test_cursor_rejected_only_hits_requests_with_a_cursor() -> None:
    """cursor-rejected: first pages pass, a page asked by cursor gets 400 (once here)."""
    async with running(job_default_page_size=100) as c:
        c.sb.add_fault(FaultRule("cursor-rejected", count=1))
        job = await c.submit({"interval": DAY1})
        first = (await c.call("GET", f"{JOBS}/{job}/results")).json()
        params = {"cursor": first["cursor"]}
        refused = await c.call("GET", f"{JOBS}/{job}/results", params=params)
        assert refused.status == 400 and error_of(refused)["code"] == "bad.request"
        assert (await c.call("GET", f"{JOBS}/{job}/results", params=params)).status == 200
        assert c.sb.stats().faults_injected == {"cursor-rejected": 1}


async def test_forbidden_fault_names_the_routes_permissions() -> None:
    """forbidden: 403 missing.any.permissions naming the route's own permissions, on the named
    routes only; a route that declares none answers not.authorized."""
    async with running() as c:
        c.sb.add_fault(FaultRule("forbidden", routes=("queues", "users")))
        reply = await c.call("GET", "/api/v2/routing/queues")
        body = error_of(reply)
        assert reply.status == 403 and body["code"] == "missing.any.permissions"
        assert body["message"].endswith("[routing:queue:view]")
        users = await c.call("GET", "/api/v2/users")
        assert users.status == 403 and error_of(users)["code"] == "not.authorized"
        assert (await c.call("GET", AVAILABILITY)).status == 200


async def test_the_token_route_is_hit_only_when_named() -> None:
    """Rules without routes spare /oauth/token; naming oauth.token faults it."""
    async with running() as c:
        c.sb.add_fault(FaultRule("status", status=503))
        await c.login()
        c.sb.clear_faults()
        c.sb.add_fault(FaultRule("status", status=503, routes=("oauth.token",), count=1))
        refused = await c.token_request({"grant_type": "client_credentials"}, None)
        assert refused.status == 503 and c.sb.stats().count("oauth.token", 503) == 1


async def test_skip_and_count_pick_which_requests_fail() -> None:
    """skip=2, count=2: the 3rd and 4th matching requests fail, the rest pass."""
    async with running() as c:
        await c.login()
        c.sb.add_fault(FaultRule("status", status=500, skip=2, count=2))
        statuses = [(await c.call("GET", AVAILABILITY)).status for _ in range(6)]
        assert statuses == [200, 200, 500, 500, 200, 200]


async def probability_pattern(seed: int) -> list[int]:
    async with Sandbox(settings(fault_seed=seed)) as sb, aiohttp.ClientSession() as session:
        c = Client(sb, session)
        sb.add_fault(FaultRule("status", status=502, probability=0.5))
        return [(await c.call("GET", "/api/v2/users")).status for _ in range(40)]


async def test_probability_is_random_but_seeded() -> None:
    """probability=0.5 fails some requests, and the same fault_seed fails the same ones."""
    first, again = await probability_pattern(5), await probability_pattern(5)
    assert first == again and 5 < first.count(502) < 35
    assert await probability_pattern(6) != first


def test_fault_mix_splits_the_rate_evenly() -> None:
    """fault_mix(r) fires with total probability r, r/5 for each of 429/500/502/503/504."""
    rules = fault_mix(0.1)
    assert [r.status for r in rules] == [429, 500, 502, 503, 504]
    assert [r.retry_after for r in rules] == ["1", None, None, "1", None]
    passed, shares = 1.0, []
    for rule in rules:
        shares.append(passed * rule.probability)
        passed *= 1 - rule.probability
    assert all(math.isclose(s, 0.02) for s in shares) and math.isclose(1 - passed, 0.1)


async def test_fault_rate_from_settings_mixes_statuses() -> None:
    """faults=fault_mix(1.0) answers every API request with one of the five statuses."""
    async with running(faults=fault_mix(1.0)) as c:
        await c.login()
        statuses = {(await c.call("GET", "/api/v2/users")).status for _ in range(60)}
        assert statuses == {429, 500, 502, 503, 504}


def test_fault_rules_parse_and_validate() -> None:
    """The CLI spec parses into a rule; unknown kinds, routes and values are refused."""
    rule = FaultRule.parse(
        "kind=status,status=503,probability=0.05,retry-after=2,routes=query|users"
    )
    assert rule == FaultRule(
        "status", routes=("query", "users"), status=503, probability=0.05, retry_after="2"
    )
    assert FaultRule.from_json(rule.to_json()) == rule
    assert FaultRule.parse("kind=drop,count=3,skip=1").count == 3
    for bad in (
        "kind=boom",
        "kind=status,routes=nowhere",
        "kind=status,probability=2",
        "status=503",
        "kind=status,retry-after=soon",
        "kind=status,colour=red",
    ):
        with pytest.raises(ValueError):
            FaultRule.parse(bad)
