"""One rate limiter for the whole process: even pacing, steered by the server, with shared pauses.

Pacing comes from asyncio-throttle, at the budget the server announces in
``inin-ratelimit-allowed`` (per minute) less a small safety share, so latency jitter never pushes
a rolling window over. When the server says the window is spent anyway (someone else shares the
budget) every request waits for ``inin-ratelimit-reset``; a 429's Retry-After pauses every
request together, not each on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asyncio_throttle import Throttler

# The documented limits are "per minute"; the headers do not say the window length.
WINDOW_S = 60.0
# Pace a little under the announced budget: arrivals jitter with latency, and a rolling window
# counts arrivals, so an exact pace would tip over now and then.
SAFETY_SHARE = 0.02
# asyncio-throttle admits ``rate_limit`` requests per sliding ``period`` and, while full, polls
# every ``retry_interval`` (10 ms). Admitting one request per interval would lose up to a tick on
# every request (measured: 4% of the budget at 300/min, 17% at 1,200/min); admitting a second's
# share of the budget per second loses a tick once per second per slot instead, about 0.5%.
BURST_S = 1.0
# The pace peaks at (1 - SAFETY_SHARE) of the budget plus one burst in any window, so a count
# within this share of the budget means another client is spending it too: wait for the reset.
SPENT_SHARE = SAFETY_SHARE / 4
UNLIMITED = 0


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """A snapshot of what the limiter did."""

    allowed_per_minute: int
    pauses: int
    paused_seconds: float
    header_pauses: int


class RateLimiter:
    """Paces every request of the process; ``per_minute`` 0 = unlimited until the server says."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or asyncio.get_running_loop().time
        self._throttler: Throttler | None = None
        self._allowed = UNLIMITED
        self._paused_until = 0.0
        self._pauses = 0
        self._paused_seconds = 0.0
        self._header_pauses = 0
        self.set_budget(per_minute)

    def set_budget(self, per_minute: int) -> None:
        """Pace at ``per_minute`` requests (less the safety share); 0 turns pacing off."""
        if per_minute == self._allowed:
            return
        self._allowed = per_minute
        if per_minute <= UNLIMITED:
            self._throttler = None
            return
        burst = max(1, round(per_minute * BURST_S / WINDOW_S))
        period = burst * WINDOW_S / (per_minute * (1 - SAFETY_SHARE))
        if self._throttler is None:
            self._throttler = Throttler(rate_limit=burst, period=period)
        self._throttler.rate_limit, self._throttler.period = burst, period

    async def acquire(self) -> None:
        """Wait for any shared pause, then for this request's turn in the pace."""
        await self.wait_unpaused()
        if self._throttler is not None:
            await self._throttler.acquire()
            await self.wait_unpaused()  # a pause may have begun while we queued

    async def wait_unpaused(self) -> None:
        """Return once no shared pause is in force (pauses can be extended while waiting)."""
        # Sleeping to a deadline (not an Event): pauses only ever end by time passing, and a
        # pause extended meanwhile is seen on the re-check.
        while (remaining := self._paused_until - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)

    def pause(self, seconds: float) -> None:
        """Stop every request for ``seconds``; overlapping pauses merge into one."""
        now = self._clock()
        until = now + seconds
        if until <= self._paused_until:
            return
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
        spent = budget - used <= int(budget * SPENT_SHARE)
        if spent and reset > 0 and self._paused_until <= self._clock():
            self._header_pauses += 1
            self.pause(reset)

    def statistics(self) -> LimiterStats:
        """What the limiter has done so far."""
        return LimiterStats(
            allowed_per_minute=self._allowed,
            pauses=self._pauses,
            paused_seconds=round(self._paused_seconds, 3),
            header_pauses=self._header_pauses,
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
