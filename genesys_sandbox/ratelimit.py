"""Per-token request budget over a rolling window, and the ``inin-ratelimit-*`` headers."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's verdict on one request, with the numbers its headers report."""

    allowed: bool
    budget: int
    count: int  # requests in the window, this one included when allowed
    reset_s: float  # seconds until the oldest request in the window leaves it

    def headers(self) -> dict[str, str]:
        """``inin-ratelimit-*`` headers, plus Retry-After (whole seconds) on a refusal."""
        headers = {
            "inin-ratelimit-allowed": str(self.budget),
            "inin-ratelimit-count": str(self.count),
            "inin-ratelimit-reset": str(math.ceil(self.reset_s)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.reset_s))


class RollingWindowLimiter:
    """At most ``budget`` requests per token in any ``window_s`` seconds (times from the caller).

    A refused request does not use budget: the real service's counter is believed to count
    served requests, so a client that honours Retry-After gets through on its next attempt.
    """

    def __init__(self, budget: int, window_s: float) -> None:
        self.budget = budget
        self.window_s = window_s
        self._windows: dict[str, deque[float]] = {}

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = deque()
        horizon = now - self.window_s
        while window and window[0] <= horizon:
            window.popleft()
        return window

    def _reset_s(self, window: deque[float], now: float) -> float:
        # Rounded to the microsecond: (t + 60) - t can come out a hair above 60 in floats,
        # which whole-second headers would round up to 61.
        return round(window[0] + self.window_s - now, 6) if window else self.window_s

    def acquire(self, key: str, now: float) -> RateDecision:
        """Count one request by ``key`` at ``now`` if the window has room; else refuse it."""
        window = self._window(key, now)
        if len(window) >= self.budget:
            return RateDecision(False, self.budget, len(window), self._reset_s(window, now))
        window.append(now)
        return RateDecision(True, self.budget, len(window), self._reset_s(window, now))

    def peek(self, key: str, now: float) -> RateDecision:
        """The window's state for ``key`` without counting a request (for 401 answers)."""
        window = self._window(key, now)
        return RateDecision(True, self.budget, len(window), self._reset_s(window, now))

    def forget(self) -> None:
        """Drop every window (tokens were revoked, their budgets with them)."""
        self._windows.clear()
