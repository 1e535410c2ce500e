"""Analytics details jobs of any family: the state machine on the sandbox clock, the concurrency
cap, cursors and result windows. What a job selects and how a page reads belong to its family
(``conversation_jobs``, ``userdetails``).

Timeline of a job submitted at t with delay d and expiry e: QUEUED until t + d/2, PENDING until
t + d, then FULFILLED (or FAILED when a fault said so) until t + d + e, then EXPIRED; once another
e has passed the job is forgotten (404). A stuck queue (the job-stuck fault) leaves the job QUEUED
for q more seconds first: its whole timeline moves by q [INF: a service whose queue stalls and
later recovers, its expirationDate counted from completion as always]. Results may also expire
after a number of pages served (``job_expiry_pages``). A job of one family is unknown (404) to
the other's routes, and each family has its own cap of active jobs per client [INF].
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from genesys_sandbox.clock import SandboxClock
from genesys_sandbox.wire import ApiProblem, format_instant

T = TypeVar("T")
ACTIVE = frozenset({"QUEUED", "PENDING"})
CONCURRENCY_LIMIT = {"namespace": "analytics", "key": "details.jobs.concurrent.access.max"}
FAILURE_MESSAGE = "The job failed to complete. Submit it again."


@dataclass(slots=True)
class Job:
    """One submitted job, the rows it fixed at submission, and when its state changes."""

    id: str
    owner: str
    family: str  # "conversations" or "users"
    rows: Sequence[Any]
    submitted_at: float
    pending_at: float
    completes_at: float
    expires_at: float
    forgotten_at: float
    failed: bool = False
    cancelled: bool = False
    pages_served: int = 0
    page_size: int | None = None  # set by the job's body (aggregates), not by each request

    def state(self, now: float) -> str:
        if self.cancelled:
            return "CANCELLED"
        if now >= self.expires_at:
            return "EXPIRED"
        if now >= self.completes_at:
            return "FAILED" if self.failed else "FULFILLED"
        return "PENDING" if now >= self.pending_at else "QUEUED"


@dataclass(frozen=True, slots=True)
class Window:
    """The rows [offset, end) of one results page, and the cursor of the next (None: last)."""

    offset: int
    end: int
    cursor: str | None


class JobBoard:
    """Every job of the sandbox, and the answers of the job routes."""

    def __init__(self, clock: SandboxClock) -> None:
        self._clock = clock
        self._jobs: dict[str, Job] = {}

    def submit(
        self, owner: str, family: str, rows: Sequence[Any], *, delay_s: float, expiry_s: float,
        max_active: int, failed: bool = False, queued_s: float = 0.0,
    ) -> Job:  # fmt: skip
        """A new job, unless ``owner`` has ``max_active`` queued or pending ones of ``family``;
        it waits QUEUED ``queued_s`` before its ``delay_s`` starts (a stuck queue)."""
        now = self._clock.now()
        self._forget_old(now)
        active = sum(
            j.owner == owner and j.family == family and j.state(now) in ACTIVE
            for j in self._jobs.values()
        )
        if active >= max_active:
            limit = {**CONCURRENCY_LIMIT, "value": max_active}
            raise ApiProblem.of(
                429, "too.many.requests.retry.after", "1",
                headers={"Retry-After": "1"}, extra={"limit": limit},
            )  # fmt: skip
        starts_at = now + queued_s
        completes_at = starts_at + delay_s
        job = Job(
            id=str(uuid.uuid4()), owner=owner, family=family, rows=rows, submitted_at=now,
            pending_at=starts_at + delay_s / 2, completes_at=completes_at,
            expires_at=completes_at + expiry_s, forgotten_at=completes_at + 2 * expiry_s,
            failed=failed,
        )  # fmt: skip
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str, family: str) -> Job:
        """The job, or 404 when it never existed in ``family`` or was forgotten after expiry."""
        job = self._jobs.get(job_id)
        if job is None or job.family != family or self._clock.now() >= job.forgotten_at:
            raise ApiProblem.of(404, "not.found")
        return job

    def status(self, job: Job) -> dict[str, Any]:
        """The AsyncQueryStatus body of ``job`` now."""
        state = job.state(self._clock.now())
        wall = self._clock.wall
        body: dict[str, Any] = {"state": state}
        if state == "FAILED":
            body["errorMessage"] = FAILURE_MESSAGE
        body["submissionDate"] = format_instant(wall(job.submitted_at))
        if state in ("FULFILLED", "FAILED", "EXPIRED"):
            body["completionDate"] = format_instant(wall(job.completes_at))
        body["expirationDate"] = format_instant(wall(job.expires_at))
        return body

    def cancel(self, job: Job) -> bool:
        """Cancel (DELETE) ``job``; True the first time."""
        first = not job.cancelled
        job.cancelled = True
        return first

    def expire_now(self, job: Job) -> None:
        """Make ``job`` expire at once (the job-expired fault)."""
        now = self._clock.now()
        retention = job.forgotten_at - job.expires_at
        job.pending_at = min(job.pending_at, now)
        job.completes_at = min(job.completes_at, now)
        job.expires_at = min(job.expires_at, now)
        job.forgotten_at = job.expires_at + retention

    def window(
        self, job: Job, cursor: str | None, size: int, *, expiry_pages: int | None = None
    ) -> Window:
        """The rows of a results page: before FULFILLED 400, expired or cancelled 404; the
        job expires first when it has served ``expiry_pages`` pages already."""
        if expiry_pages is not None and job.pages_served >= expiry_pages:
            self.expire_now(job)
        state = job.state(self._clock.now())
        if state in ("EXPIRED", "CANCELLED"):
            raise ApiProblem.of(404, "not.found")
        if state != "FULFILLED":
            # Undocumented; a 400 naming the state is the most plausible answer.
            raise ApiProblem(400, "bad.request", f"The job is {state}; results need FULFILLED.")
        offset = 0 if cursor is None else decode_cursor(cursor, job)
        end = offset + size
        job.pages_served += 1
        return Window(offset, end, encode_cursor(end, job) if end < len(job.rows) else None)

    def _forget_old(self, now: float) -> None:
        for job_id in [k for k, j in self._jobs.items() if now >= j.forgotten_at]:
            del self._jobs[job_id]


def with_repeats(chosen: list[T], previous: T | None) -> list[T]:
    """The repeat-records fault: ``chosen``'s middle item twice, and the previous page's last
    item first (a repeat across the seam), as a results store re-indexed under a cursor might."""
    if not chosen:
        return chosen
    repeated = list(chosen)
    repeated.insert(len(repeated) // 2, repeated[len(repeated) // 2])
    if previous is not None:
        repeated.insert(0, previous)
    return repeated


def encode_cursor(offset: int, job: Job) -> str:
    """An opaque cursor bound to its job (a cursor of another job is refused)."""
    return base64.urlsafe_b64encode(f"{offset}:{job.id[:8]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, job: Job) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset_text, _, tag = text.partition(":")
        offset = int(offset_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        offset, tag = -1, ""
    if tag != job.id[:8] or not 0 < offset < len(job.rows):
        raise ApiProblem(400, "bad.request", "The cursor is not valid for this job.")
    return offset
