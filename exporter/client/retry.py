"""Retry policy as pure functions: what to retry, how long to wait, when to give up.

The server's word wins: a Retry-After (seconds or HTTP-date) replaces our own backoff. Our own
backoff is capped, fully jittered exponential, from the ``backoff`` library's generators.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import backoff

# A Retry-After larger than this is nonsense or a daily quota; clamping keeps arithmetic sane
# while the caller's own bound (retry_after_max_s) decides whether to wait at all.
RETRY_AFTER_CLAMP_S = 7 * 24 * 3600.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until_http_date(text, now or datetime.now(UTC))
    if seconds is None or seconds != seconds:  # not a date either, or NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CLAMP_S)


def _seconds_until_http_date(text: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds for one request's retries: by attempts and by total time, whichever comes first."""

    max_attempts: int = 8
    max_seconds: float = 300.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("retry max_attempts must be at least 1")
        if self.max_seconds < 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("retry times must not be negative")

    def delays(self, rng: Callable[[float], float] = backoff.full_jitter) -> Iterator[float]:
        """Jittered delays before attempt 2, 3, ...: uniform in [0, min(max, base * 2**n)]."""
        gen = backoff.expo(base=2, factor=self.backoff_base_s, max_value=self.backoff_max_s)
        next(gen)  # the library's generators are primed with one send
        for ceiling in gen:
            yield rng(min(ceiling, self.backoff_max_s))


def delay_before_retry(own_delay: float, server_retry_after: float | None) -> float:
    """The server's Retry-After wins over our own backoff when it gave one."""
    return own_delay if server_retry_after is None else server_retry_after


def seeded_jitter(seed: int) -> Callable[[float], float]:
    """A reproducible full jitter, for tests and benchmarks."""
    rng = random.Random(seed)
    return lambda value: rng.uniform(0, value)
