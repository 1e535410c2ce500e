"""Rate limits, correlation ids, latency and the in-flight counters."""

from __future__ import annotations

import asyncio
import time

from genesys_sandbox import ManualClock, Sandbox
from tests.sandbox.support import JOBS, error_of, running, settings

AVAILABILITY = f"{JOBS}/availability"


async def test_rate_headers_count_up_and_the_sixth_request_is_429() -> None:
    """With 5 per window every answer has inin-ratelimit-*; the 6th is 429 with Retry-After."""
    async with running(rate_per_minute=5) as c:
        for n in range(1, 6):
            reply = await c.call("GET", AVAILABILITY)
            assert reply.status == 200
            assert reply.headers["inin-ratelimit-allowed"] == "5"
            assert reply.headers["inin-ratelimit-count"] == str(n)
            assert 0 < int(reply.headers["inin-ratelimit-reset"]) <= 60
        refused = await c.call("GET", AVAILABILITY)
        body = error_of(refused)
        assert refused.status == 429 and body["code"] == "too.many.requests.retry.after"
        retry_after = refused.headers["Retry-After"]
        assert 1 <= int(retry_after) <= 60
        assert body["message"] == (
            f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
        )
        stats = c.sb.stats()
        assert stats.rate_limited == 1 and stats.count("jobs.availability", 429) == 1


async def test_the_window_rolls_on_the_clock() -> None:
    """A full window frees up as its oldest requests age past rate_window_s."""
    clock = ManualClock()
    async with running(clock=clock, rate_per_minute=2, rate_window_s=10) as c:
        await c.login()
        await c.call("GET", AVAILABILITY)
        clock.advance(4)
        await c.call("GET", AVAILABILITY)
        refused = await c.call("GET", AVAILABILITY)
        assert refused.status == 429 and refused.headers["Retry-After"] == "6"
        clock.advance(6)
        freed = await c.call("GET", AVAILABILITY)
        assert freed.status == 200 and freed.headers["inin-ratelimit-count"] == "2"
        assert freed.headers["inin-ratelimit-reset"] == "4"


async def test_each_token_has_its_own_budget() -> None:
    """A second token starts with an empty window while the first is exhausted."""
    async with running(rate_per_minute=1) as c:
        await c.call("GET", AVAILABILITY)
        assert (await c.call("GET", AVAILABILITY)).status == 429
        await c.login()
        assert (await c.call("GET", AVAILABILITY)).status == 200


async def test_unlimited_sends_no_rate_headers() -> None:
    """rate_per_minute=None: no inin-ratelimit-* headers and never a 429."""
    async with running(rate_per_minute=None) as c:
        for _ in range(20):
            reply = await c.call("GET", AVAILABILITY)
            assert reply.status == 200 and "inin-ratelimit-count" not in reply.headers


async def test_401_answers_carry_rate_headers_without_using_budget() -> None:
    """A refused token still sees inin-ratelimit-* headers; it does not count a request."""
    async with running(rate_per_minute=5) as c:
        reply = await c.call("GET", AVAILABILITY, authorization="Bearer nope")
        assert reply.status == 401 and reply.headers["inin-ratelimit-count"] == "0"


async def test_every_response_carries_its_own_correlation_id() -> None:
    """Token, API, error and unknown-path answers all carry a distinct ININ-Correlation-Id."""
    async with running() as c:
        replies = [
            await c.token_request({"grant_type": "client_credentials"}, None),
            await c.call("GET", AVAILABILITY),
            await c.call("GET", f"{JOBS}/nope"),
            await c.call("GET", "/api/v2/not/a/route"),
        ]
        ids = [r.headers["ININ-Correlation-Id"] for r in replies]
        assert len(set(ids)) == 4
        assert error_of(replies[2])["code"] == error_of(replies[3])["code"] == "not.found"


async def test_latency_delays_every_answer() -> None:
    """latency_ms=60 makes every request take at least 60 ms, token requests included."""
    async with running(latency_ms=60) as c:
        began = time.perf_counter()
        await c.login()
        await c.call("GET", AVAILABILITY)
        assert time.perf_counter() - began >= 0.12


async def test_jitter_is_bounded_and_seeded() -> None:
    """Added latency lies within [latency, latency + jitter] and repeats for the same seed."""
    draws = []
    for _ in range(2):
        async with Sandbox(settings(latency_ms=5, latency_jitter_ms=20, fault_seed=3)) as sb:
            draws.append([sb.state.latency_s() for _ in range(50)])
    assert draws[0] == draws[1]
    assert all(0.005 <= d <= 0.025 for d in draws[0]) and len(set(draws[0])) > 40
    async with running(latency_ms=0, latency_jitter_ms=30) as c:
        began = time.perf_counter()
        await asyncio.gather(*(c.call("GET", "/api/v2/users") for _ in range(5)))
        assert time.perf_counter() - began < 1.0


async def test_in_flight_counts_concurrent_requests() -> None:
    """Five concurrent slow requests show in_flight 5 while served, max_in_flight 5 after."""
    async with running(latency_ms=500) as c:
        await c.login()
        calls = [asyncio.create_task(c.call("GET", AVAILABILITY)) for _ in range(5)]
        for _ in range(100):
            await asyncio.sleep(0.01)
            if c.sb.stats().in_flight == 5:
                break
        assert c.sb.stats().in_flight == 5
        await asyncio.gather(*calls)
        stats = c.sb.stats()
        assert stats.in_flight == 0 and stats.max_in_flight == 5
        c.sb.reset_stats()
        assert c.sb.stats().max_in_flight == 0 and not c.sb.stats().requests
