"""What the sandbox saw: live counters, and the frozen snapshot tests assert on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Requests that never got a status line (dropped or hung connections) are counted as status 0.
NO_RESPONSE = 0


@dataclass(frozen=True, slots=True)
class SandboxStats:
    """A snapshot of the sandbox's counters; ``requests`` is keyed ``"route status"``."""

    requests: Mapping[str, int] = field(default_factory=dict)
    token_requests: int = 0
    tokens_issued: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    jobs_created: int = 0
    jobs_deleted: int = 0
    job_records: int = 0  # conversations the created jobs selected: what reading them costs
    rate_limited: int = 0
    faults_injected: Mapping[str, int] = field(default_factory=dict)

    def count(self, route: str | None = None, status: int | None = None) -> int:
        """Requests seen for ``route`` (any if None) answered ``status`` (any if None)."""
        total = 0
        for key, n in self.requests.items():
            name, _, code = key.rpartition(" ")
            if (route is None or name == route) and (status is None or int(code) == status):
                total += n
        return total

    def to_json(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready dict (served at GET /sandbox/stats)."""
        return {
            "requests": dict(self.requests),
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "jobs_created": self.jobs_created,
            "jobs_deleted": self.jobs_deleted,
            "job_records": self.job_records,
            "rate_limited": self.rate_limited,
            "faults_injected": dict(self.faults_injected),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxStats:
        """Rebuild a snapshot fetched from GET /sandbox/stats."""
        values = dict(data)
        values["requests"] = MappingProxyType(dict(values.get("requests", {})))
        values["faults_injected"] = MappingProxyType(dict(values.get("faults_injected", {})))
        return cls(**values)


class StatsRecorder:
    """The live counters, mutated only from the sandbox's event loop."""

    __slots__ = (
        "faults_injected",
        "in_flight",
        "job_records",
        "jobs_created",
        "jobs_deleted",
        "max_in_flight",
        "rate_limited",
        "requests",
        "token_requests",
        "tokens_issued",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` stays true and ``max_in_flight`` restarts from it."""
        self.requests: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.token_requests = 0
        self.tokens_issued = 0
        self.max_in_flight = self.in_flight
        self.jobs_created = 0
        self.jobs_deleted = 0
        self.job_records = 0
        self.rate_limited = 0

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def record(self, route: str, status: int) -> None:
        """Count one finished request; 429s (any cause) also count as rate limited."""
        self.requests[f"{route} {status}"] += 1
        if status == 429:
            self.rate_limited += 1
        if route == "oauth.token":
            self.token_requests += 1

    def snapshot(self) -> SandboxStats:
        return SandboxStats(
            requests=MappingProxyType(dict(self.requests)),
            token_requests=self.token_requests,
            tokens_issued=self.tokens_issued,
            in_flight=self.in_flight,
            max_in_flight=self.max_in_flight,
            jobs_created=self.jobs_created,
            jobs_deleted=self.jobs_deleted,
            job_records=self.job_records,
            rate_limited=self.rate_limited,
            faults_injected=MappingProxyType(dict(self.faults_injected)),
        )
