"""Evaluations re-reviewed after the fact, on the sandbox clock [INF from the model's version
and changedDate; how often and how long after is UNVERIFIED].

With ``evaluation_edits_per_hour`` r > 0, every finished evaluation is re-reviewed at the
instants of a Poisson process of rate r per hour of sandbox clock since the sandbox started,
drawn from a stream of the evaluation's own: the versions a read sees are a function of the
evaluation, r and the clock alone. Re-review k gives version ``1 + k`` (``quality.revise``),
dated the sandbox's wall time then, never before the change it follows. Until the first one
nothing differs from the data as built, and r = 0 (the default) keeps every read as built.

[UNVERIFIED] whether the conversation record's AnalyticsEvaluation follows a re-review: by
default it does (``evaluation_edits_in_details``: its oTotalScore, oTotalCriticalScore,
eventTime and rescored become the newest version's), as analytics records the latest
evaluation event; only records of re-reviewed evaluations change.
"""

from __future__ import annotations

import random
from bisect import bisect_right

import orjson

from genesys_sandbox.clock import SandboxClock
from genesys_sandbox.data import Dataset
from genesys_sandbox.orgdata import make_formatter
from genesys_sandbox.quality import Evaluation, Revision, analytics_evaluation, revise
from genesys_sandbox.wire import to_ms

HOUR_S = 3600.0


class Reviews:
    """The re-reviews of one sandbox: versions as of a sandbox instant, and records now."""

    def __init__(
        self, dataset: Dataset, clock: SandboxClock, per_hour: float, in_details: bool
    ) -> None:
        self._dataset = dataset
        self._clock = clock
        self._per_hour = per_hour
        self.changes_records = per_hour > 0 and in_details
        self._instants: dict[str, list[float]] = {}  # evaluation id -> re-review instants drawn
        self._revisions: dict[str, list[Revision]] = {}  # evaluation id -> versions made
        self._fmt = make_formatter()
        self._records: dict[int, tuple[tuple[int, ...], bytes]] = {}

    def revision(self, e: Evaluation, at: float | None = None) -> Revision:
        """``e`` as of sandbox instant ``at`` (default now)."""
        first = Revision(0, e.answers, e.changed_ms)
        if self._per_hour <= 0 or e.status != "FINISHED":
            return first
        elapsed = (self._clock.now() if at is None else at) - self._clock.started
        instants = self._instants_past(e, elapsed)
        k = bisect_right(instants, elapsed)
        made = self._revisions.setdefault(e.id, [first])
        while len(made) <= k:
            wall = to_ms(self._clock.wall(self._clock.started + instants[len(made) - 1]))
            made.append(revise(e, made[-1], max(wall, made[-1].changed_ms + 1000)))
        return made[k]

    def record(self, i: int) -> bytes:
        """Conversation ``i``'s job record now: its evaluation entries as last re-reviewed."""
        raw = self._dataset.job_record(i)
        evaluations = self._dataset.quality.by_conversation.get(i)
        if not evaluations:
            return raw
        revisions = [self.revision(e) for e in evaluations]
        numbers = tuple(r.number for r in revisions)
        if not any(numbers):
            return raw
        cached = self._records.get(i)
        if cached is None or cached[0] != numbers:
            record = orjson.loads(raw)
            pairs = zip(evaluations, revisions, strict=True)
            record["evaluations"] = [analytics_evaluation(e, r, self._fmt) for e, r in pairs]
            cached = self._records[i] = (numbers, orjson.dumps(record))
        return cached[1]

    def _instants_past(self, e: Evaluation, elapsed: float) -> list[float]:
        """``e``'s re-review instants (sandbox seconds since the start), drawn until one lies
        beyond ``elapsed``; the stream is re-seeded rather than kept (a Random is 2.5 KB)."""
        instants = self._instants.setdefault(e.id, [])
        if instants and instants[-1] > elapsed:
            return instants
        gaps = random.Random(f"reviews-{e.id}")
        scale = HOUR_S / self._per_hour
        for _ in instants:
            gaps.expovariate(1.0)
        while not instants or instants[-1] <= elapsed:
            instants.append((instants[-1] if instants else 0.0) + gaps.expovariate(1.0) * scale)
        return instants
