"""Retry policy: Retry-After parsing and backoff bounds (pure functions, property-tested)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from exporter.client.retry import (
    RETRY_AFTER_CLAMP_S,
    RetryPolicy,
    delay_before_retry,
    parse_retry_after,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=10**9))
def test_delta_seconds_parse_and_clamp(seconds: int) -> None:
    """Integer Retry-After values parse to seconds, clamped to the sanity bound."""
    assert parse_retry_after(str(seconds), now=NOW) == min(float(seconds), RETRY_AFTER_CLAMP_S)


@given(st.integers(min_value=-3600, max_value=86400))
def test_http_date_is_seconds_from_now(offset: int) -> None:
    """An HTTP-date Retry-After is the time until that date, never negative."""
    header = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(header, now=NOW) == max(0.0, float(offset))


@given(st.text())
def test_garbage_never_raises(text: str) -> None:
    """Any header text yields a non-negative number or None, never an exception."""
    value = parse_retry_after(text, now=NOW)
    assert value is None or 0.0 <= value <= RETRY_AFTER_CLAMP_S


def test_absent_and_blank_are_none() -> None:
    """No header, an empty one, and NaN mean 'no server advice'."""
    assert parse_retry_after(None) is None
    assert parse_retry_after("  ") is None
    assert parse_retry_after("nan") is None


@given(
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=120),
    n=st.integers(min_value=1, max_value=30),
)
def test_backoff_delays_stay_within_bounds(base: float, cap: float, n: int) -> None:
    """The k-th delay lies in [0, min(cap, base * 2**k)] whatever the jitter draws."""
    policy = RetryPolicy(backoff_base_s=base, backoff_max_s=cap)
    for rng in (lambda v: v, lambda v: 0.0):  # both jitter extremes
        delays = policy.delays(rng)
        for k in range(n):
            delay = next(delays)
            assert 0.0 <= delay <= min(cap, base * 2**k) + 1e-9


def test_full_jitter_grows_to_the_cap() -> None:
    """Without jitter the delays double from the base until they reach the cap."""
    delays = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3).delays(lambda v: v)
    assert [next(delays) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_server_retry_after_wins() -> None:
    """A server Retry-After replaces our own backoff; without one ours stands."""
    assert delay_before_retry(7.0, 2.0) == 2.0
    assert delay_before_retry(7.0, None) == 7.0
