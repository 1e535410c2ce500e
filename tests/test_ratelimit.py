"""The shared limiter: pauses merge, headers steer the pace."""

from __future__ import annotations

import asyncio

from exporter.client.ratelimit import (
    BUCKET_SHARE,
    SAFETY_SHARE,
    SAFETY_SHARE_MOST,
    URGENT,
    RateLimiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_overlapping_pauses_count_once() -> None:
    """Eight 429s arriving together make one shared pause, extended not repeated."""
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock)
    for i in range(8):
        clock.now = i * 0.001
        limiter.pause(1.0)
    stats = limiter.statistics()
    assert stats.pauses == 1
    assert abs(stats.paused_seconds - 1.007) < 1e-6


async def test_a_later_pause_after_the_first_ended_counts_again() -> None:
    """A pause that starts after the previous one ended is a second pause."""
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock)
    limiter.pause(1.0)
    clock.now = 2.0
    limiter.pause(1.0)
    assert limiter.statistics().pauses == 2


async def test_headers_set_the_budget_and_pause_near_the_wall() -> None:
    """inin-ratelimit-allowed sets the pace; a nearly spent window pauses until reset."""
    clock = FakeClock()
    limiter = RateLimiter(300, clock=clock)
    limiter.observe(
        {
            "inin-ratelimit-allowed": "600",
            "inin-ratelimit-count": "10",
            "inin-ratelimit-reset": "30",
        }
    )
    assert limiter.statistics().allowed_per_minute == 600
    assert limiter.statistics().pauses == 0
    limiter.observe(
        {
            "inin-ratelimit-allowed": "600",
            "inin-ratelimit-count": "600",
            "inin-ratelimit-reset": "12",
        }
    )
    stats = limiter.statistics()
    assert stats.header_pauses == 1 and stats.paused_seconds == 12


async def test_missing_or_garbled_headers_change_nothing() -> None:
    """Responses without usable headers leave the configured pace alone."""
    limiter = RateLimiter(120, clock=FakeClock())
    limiter.observe({})
    limiter.observe({"inin-ratelimit-allowed": "lots"})
    assert limiter.statistics().allowed_per_minute == 120


async def admissions(limiter: RateLimiter, requests: int) -> list[float]:
    loop = asyncio.get_running_loop()
    admitted = []
    for _ in range(requests):
        await limiter.acquire()
        admitted.append(loop.time())
    return admitted


def most_in_any_span(
    admitted: list[float], per_minute: int, safety_share: float = SAFETY_SHARE
) -> float:
    """The most requests admitted in any span, less what the paced rate allows over it: at
    most the bucket's depth when the pace holds. Callers allow half a request of slack: the
    times are noted when the event loop gets round to it, a little after each admission."""
    rate = per_minute * (1 - safety_share) / 60
    return max(
        (j - i + 1) - rate * (admitted[j] - admitted[i])
        for i in range(len(admitted))
        for j in range(i, len(admitted))
    )


async def test_pacing_lets_the_bucket_through_then_holds_the_pace() -> None:
    """In any span, requests number at most the bucket's depth plus the paced rate times the
    span (the budget less the safety share); the bucket's depth goes at once."""
    per_minute = 6000  # 100 per second, 10.05 ms apart; a bucket 15 deep
    depth = int(per_minute * SAFETY_SHARE * BUCKET_SHARE)
    admitted = await admissions(RateLimiter(per_minute), depth + 20)
    assert admitted[depth - 1] - admitted[0] < 60 / per_minute
    assert most_in_any_span(admitted, per_minute) <= depth + 0.5


async def test_a_new_budget_paces_the_requests_after_it() -> None:
    """The server's budget replaces the configured one: 60/min would take a second a request."""
    limiter = RateLimiter(60)
    await limiter.acquire()
    limiter.observe({"inin-ratelimit-allowed": "6000"})
    admitted = await asyncio.wait_for(admissions(limiter, 60), timeout=5)
    assert most_in_any_span(admitted, 6000) <= int(6000 * SAFETY_SHARE * BUCKET_SHARE) + 0.5


async def queued_behind_a_turn(limiter: RateLimiter, per_minute: int) -> asyncio.Task[None]:
    """Empty the bucket, then start a request that holds the next turn: later ones queue."""
    for _ in range(int(per_minute * SAFETY_SHARE * BUCKET_SHARE)):
        await limiter.acquire()
    holder = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    return holder


async def test_queued_requests_take_turns_lowest_priority_first() -> None:
    """Requests waiting for the pace go by priority (job pages: the job furthest behind),
    equal priorities in the order they came, urgent ones (submits, polls) before any page."""
    limiter = RateLimiter(6000)
    holder = await queued_behind_a_turn(limiter, 6000)
    order: list[str] = []

    async def request(name: str, priority: float) -> None:
        await limiter.acquire(priority)
        order.append(name)

    queued = [("ahead", 0.9), ("behind", 0.1), ("middle", 0.5), ("behind too", 0.1)]
    tasks = [asyncio.create_task(request(name, p)) for name, p in queued]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(request("poll", URGENT)))
    await asyncio.wait_for(asyncio.gather(holder, *tasks), timeout=5)
    assert order == ["poll", "behind", "behind too", "middle", "ahead"]


async def test_cancelled_waiters_pass_their_turn_on() -> None:
    """A request cancelled while queued, or just after being handed the turn, does not keep
    the others waiting."""
    limiter = RateLimiter(6000)
    await queued_behind_a_turn(limiter, 6000)
    handed = asyncio.create_task(limiter.acquire(0.1))
    queued = asyncio.create_task(limiter.acquire(0.2))
    last = asyncio.create_task(limiter.acquire(0.3))

    async def cancel_at_handover() -> None:
        await limiter.acquire(URGENT)  # its turn goes to `handed`, which has not run yet
        handed.cancel()

    await asyncio.sleep(0)
    queued.cancel()
    await asyncio.wait_for(asyncio.gather(cancel_at_handover(), last), timeout=5)
    assert handed.cancelled() and queued.cancelled()
    await asyncio.wait_for(limiter.acquire(), timeout=5)


async def test_wait_unpaused_returns_when_the_pause_ends() -> None:
    """A waiter resumes after the pause, including one extended while it waited."""
    limiter = RateLimiter(0)
    limiter.pause(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiter = asyncio.create_task(limiter.wait_unpaused())
    await asyncio.sleep(0.02)
    limiter.pause(0.08)
    await waiter
    assert loop.time() - started >= 0.095


async def test_a_count_at_our_own_paced_peak_does_not_pause() -> None:
    """Pacing peaks near 298 of 300 in a window; that count is ours, not a spent window."""
    limiter = RateLimiter(300, clock=FakeClock())
    headers = {"inin-ratelimit-allowed": "300", "inin-ratelimit-reset": "20"}
    limiter.observe({**headers, "inin-ratelimit-count": "299"})
    assert limiter.statistics().header_pauses == 0
    limiter.observe({**headers, "inin-ratelimit-count": "300"})
    assert limiter.statistics().header_pauses == 1


async def test_a_429_while_pacing_widens_the_margin_once_per_pause() -> None:
    """The first 429 doubles the safety share; those answering requests sent before its pause
    began do not; later episodes double it again, up to the most."""
    clock = FakeClock()
    limiter = RateLimiter(300, clock=clock)
    limiter.rate_limited()
    limiter.pause(1.0)
    for _ in range(7):  # the rest of a burst, during the pause
        limiter.rate_limited()
    assert limiter.statistics().safety_share == 2 * SAFETY_SHARE
    for episode in range(1, 10):
        clock.now = 10.0 * episode
        limiter.rate_limited()
    assert limiter.statistics().safety_share == SAFETY_SHARE_MOST


async def test_unpaced_429s_leave_the_margin_alone() -> None:
    """With no budget known there is no pace to widen."""
    limiter = RateLimiter(0, clock=FakeClock())
    limiter.rate_limited()
    assert limiter.statistics().safety_share == SAFETY_SHARE


async def test_a_widened_margin_paces_slower() -> None:
    """After 429s widen the share to the most, requests keep to the budget less that share."""
    per_minute = 6000
    limiter = RateLimiter(per_minute)
    for _ in range(3):  # three episodes: 0.5% -> 1% -> 2% -> 4%
        limiter.rate_limited()
    assert limiter.statistics().safety_share == SAFETY_SHARE_MOST
    depth = int(per_minute * SAFETY_SHARE_MOST * BUCKET_SHARE)
    admitted = await asyncio.wait_for(admissions(limiter, depth + 80), timeout=5)
    after_bucket = admitted[depth:]
    rate = (len(after_bucket) - 1) / (after_bucket[-1] - after_bucket[0])
    assert rate <= per_minute / 60 * (1 - SAFETY_SHARE_MOST) * 1.01  # 97/s; the first: 99.5/s
