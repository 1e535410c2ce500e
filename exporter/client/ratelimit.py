"""One rate limiter for the whole process: even pacing, steered by the server, with shared pauses.

Pacing is a leaky bucket (aiolimiter), at the budget the server announces in
``inin-ratelimit-allowed`` (per minute) less a small safety share, so latency jitter never pushes
a rolling window over. When the server says the window is spent anyway (someone else shares the
budget) every request waits for ``inin-ratelimit-reset``; a 429's Retry-After pauses every
request together, not each on its own. When requests queue for the pace, the one with the
lowest ``priority`` takes the next turn (see ``acquire``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

log = logging.getLogger(__name__)
# The documented limits are "per minute"; the headers do not say the window length.
WINDOW_S = 60.0
# Pace a little under the announced budget. The server counts arrivals in a rolling window: in
# one window land the requests sent over 60 s plus the latency jitter's spread, plus what the
# bucket lets through at once. Half of the share covers the bucket, half (at 300/min) a spread
# of about 0.15 s; a wider spread meets the header check below, then Retry-After. Each 429 met while
# pacing doubles the share (up to the most): a link with more jitter learns its margin from
# one 429 instead of meeting one a minute. Measured against the sandbox (100-300 ms latency):
# 96% and 95% of the ceiling at 300/min and 1,200/min from 0.5%, 96% and 94% from 1%.
SAFETY_SHARE = 0.005
SAFETY_SHARE_MOST = 0.04
# A leaky bucket (aiolimiter) wakes each request at its exact turn. Its depth lets a request
# take a turn that found every cursor busy a moment earlier (at 1,200/min a one-deep bucket
# lost 5% of the turns); it is kept within half the safety share. asyncio-throttle, used
# before, polled every 10 ms while full: 1-4% of the budget lost to ticks.
BUCKET_SHARE = 1 / 2  # of the safety share
# Our own pace peaks just under the budget in any window, so a count within this share of
# the budget means another client is spending it too: wait for the reset.
SPENT_SHARE = 1 / 4  # of the safety share
UNLIMITED = 0
# The priority of requests that start or end jobs (submits, polls, deletes): before any page.
# Token requests go to the login host and never wait here.
URGENT = -1.0


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """A snapshot of what the limiter did."""

    allowed_per_minute: int
    pauses: int
    paused_seconds: float
    header_pauses: int
    safety_share: float  # of the budget left unused, widened by 429s


class RateLimiter:
    """Paces every request of the process; ``per_minute`` 0 = unlimited until the server says."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or asyncio.get_running_loop().time
        self._bucket: AsyncLimiter | None = None
        self._allowed = UNLIMITED
        self._paused_until = 0.0
        self._pauses = 0
        self._paused_seconds = 0.0
        self._header_pauses = 0
        self._safety = SAFETY_SHARE
        # One request at a time waits in the bucket; the rest wait here, lowest priority first.
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._turn_taken = False
        self.set_budget(per_minute)

    def set_budget(self, per_minute: int) -> None:
        """Pace at ``per_minute`` requests (less the safety share); 0 turns pacing off."""
        if per_minute == self._allowed:
            return
        log.debug("pacing at %d requests/min", per_minute, extra={"per_minute": per_minute})
        self._allowed = per_minute
        self._pace()

    def _pace(self) -> None:
        if self._allowed <= UNLIMITED:
            self._bucket = None
            return
        depth = max(1, int(self._allowed * self._safety * BUCKET_SHARE))
        interval = WINDOW_S / (self._allowed * (1 - self._safety))
        self._bucket = AsyncLimiter(depth, depth * interval)

    def rate_limited(self) -> None:
        """A 429 came back: unless a pause is already in force (the answers to requests sent
        before it), pace with twice the safety share, up to ``SAFETY_SHARE_MOST``."""
        if self._bucket is None or self._paused_until > self._clock():
            return
        widened = min(SAFETY_SHARE_MOST, self._safety * 2)
        if widened != self._safety:
            self._safety = widened
            self._pace()

    async def acquire(self, priority: float = URGENT) -> None:
        """Wait for any shared pause, then for this request's turn in the pace.

        While requests queue for turns, the lowest ``priority`` goes next, ties in arrival
        order. Job pages pass how far their job has read through its interval, so the jobs
        furthest behind read at their cursor's full speed and every job ends at about the same
        time, instead of the biggest ones finishing alone at one cursor's pace each.
        """
        await self.wait_unpaused()
        if self._bucket is None:
            return
        await self._next_turn(priority)
        try:
            bucket = self._bucket  # a new budget paces the requests that queue after it
            if bucket is not None:
                await bucket.acquire()
        finally:
            self._pass_turn()
        await self.wait_unpaused()  # a pause may have begun while we queued

    async def _next_turn(self, priority: float) -> None:
        if not self._turn_taken:
            self._turn_taken = True
            return
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (priority, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the turn, cancelled before use
                self._pass_turn()
            raise

    def _pass_turn(self) -> None:
        while self._queue:
            turn = heapq.heappop(self._queue)[2]
            if not turn.done():  # cancelled waiters stay queued until they come up
                turn.set_result(None)
                return
        self._turn_taken = False

    async def wait_unpaused(self) -> None:
        """Return once no shared pause is in force (pauses can be extended while waiting)."""
        # Sleeping to a deadline (not an Event): pauses only ever end by time passing, and a
        # pause extended meanwhile is seen on the re-check.
        while (remaining := self._paused_until - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)

    def pause(self, seconds: float, why: str = "") -> None:
        """Stop every request for ``seconds`` (``why``: for the debug log); overlapping pauses
        merge into one."""
        now = self._clock()
        until = now + seconds
        if until <= self._paused_until:
            return
        log.debug("pausing every request for %.2f s: %s", seconds, why or "asked to",
                  extra={"seconds": round(seconds, 3), "reason": why})  # fmt: skip
        if self._paused_until <= now:
            self._pauses += 1
            self._paused_seconds += seconds
        else:
            self._paused_seconds += until - self._paused_until
        self._paused_until = until

    def observe(self, headers: Mapping[str, str]) -> None:
        """Steer by the server's ``inin-ratelimit-*`` headers, when it sent them."""
        budget = _header_int(headers, "inin-ratelimit-allowed")
        if budget is None or budget <= 0:
            return
        self.set_budget(budget)
        used = _header_int(headers, "inin-ratelimit-count")
        reset = _header_float(headers, "inin-ratelimit-reset")
        if used is None or reset is None:
            return
        spent = budget - used <= int(budget * self._safety * SPENT_SHARE)
        if spent and reset > 0 and self._paused_until <= self._clock():
            self._header_pauses += 1
            self.pause(reset, f"the rate-limit window is spent ({used} of {budget} used; "
                       "inin-ratelimit-reset)")  # fmt: skip

    def statistics(self) -> LimiterStats:
        """What the limiter has done so far."""
        return LimiterStats(
            allowed_per_minute=self._allowed,
            pauses=self._pauses,
            paused_seconds=round(self._paused_seconds, 3),
            header_pauses=self._header_pauses,
            safety_share=self._safety,
        )


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = _header_float(headers, name)
    return None if value is None else int(value)


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None
