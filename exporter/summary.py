"""What an export run did, for people and programs: the ``Summary`` (the JSON on stdout's last
line, the account on stderr, what metrics and lineage events say) and how it is made.

Every outcome ends in a summary, whatever ended the run (done, a failure, a stop, an error):
its counts come from the manifest, so they are right on every exit, and its status and exit
code from the worst thing that happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from exporter.client.http import ClientStats
from exporter.engine.jobs import JobStalled
from exporter.engine.kinds import Tally, Work
from exporter.errors import ExportError, Interrupted, PermissionDenied
from exporter.store.manifest import Manifest, WindowRecord
from exporter.windows import format_instant


class DatasetFigures(TypedDict):
    """One dataset in the summary: the files, records and bytes this run committed, its
    windows or snapshots that failed, whether it was denied, and ``ok``: committed by a run
    that went to its end, without failure or denial. A windowed dataset adds its watermark
    and its windows in the manifest by status."""

    files: int
    records: int
    bytes: int
    failed: int
    denied: bool
    ok: bool
    watermark: NotRequired[str | None]
    windows_by_status: NotRequired[dict[str, int]]


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did; ``status`` is ok, failed, denied, interrupted, quota_exhausted,
    stalled, unreachable, locked, auth_failed, bad_input or error."""

    status: str
    exit_code: int
    records: int = 0  # in the windows and snapshots this run committed
    windows: int = 0  # windows committed by this run
    skipped: int = 0
    provisional: int = 0
    snapshots: int = 0  # snapshot files committed by this run
    failed_windows: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()  # one line per dataset the OAuth client may not read
    repeats_dropped: int = 0
    kept_windows: int = 0  # unfinished, checkpointed for the next run to continue
    kept_jobs: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    seconds: float = 0.0
    watermark: str | None = None  # the first windowed dataset's; each one's is in ``datasets``
    windows_by_status: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, DatasetFigures] = field(default_factory=dict)
    # Per windowed dataset: records still going on (tracked) and what the refresh did.
    open_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    run_id: str | None = None  # the manifest's run_id of what this run wrote; None: no run

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_windows"] = list(self.failed_windows)
        data["denied"] = list(self.denied)
        return data

    def lines(self, out_dir: Path) -> list[str]:
        """What the run did, in words (stderr): each denial and failure, then its figures."""
        rate = self.records / self.seconds if self.seconds else 0.0
        repeats = (
            f", {self.repeats_dropped} repeated records dropped" if self.repeats_dropped else ""
        )
        return [
            *(f"dataset denied: {denied}" for denied in self.denied),
            *(f"failed: {failed}" for failed in self.failed_windows),
            f"{self.status}: {self.records} records in {self.windows} windows and "
            f"{self.snapshots} snapshots ({self.skipped} windows already complete, "
            f"{self.provisional} provisional{repeats}) in "
            f"{self.seconds:.1f} s ({rate:,.0f} records/s); {self.requests} requests, "
            f"{self.retries} retries, {self.rate_limited} rate-limited, "
            f"{self.token_refreshes} tokens; output in {out_dir}",
        ]


@dataclass(slots=True)
class Outcome:
    """What an export run did, filled in as it goes: what its summary is made of."""

    run_id: str
    manifest: Manifest | None = None
    dated: list[str] = field(default_factory=list)  # the datasets whose files are windows
    works: list[Work] = field(default_factory=list)  # one per kind, once prepared
    started: bool = False  # whether any work began

    def tally(self) -> Tally:
        """Every kind's tally, as one."""
        total = Tally()
        for part in (work.tally() for work in self.works):
            total.denied.update(part.denied)
            total.failed += part.failed
            total.stalled.update(part.stalled)
            total.repeats += part.repeats
            total.skipped += part.skipped
            total.watermarks.update(part.watermarks)
            total.open_records.update(part.open_records)
        return total


def summarize(
    outcome: Outcome,
    stopped_by: str | None,
    error: ExportError | None,
    stats: ClientStats | None,
    seconds: float,
) -> Summary:
    """The summary of a run, whatever ended it: its counts from the manifest (what this run
    committed, what it kept to resume), so they are right on every exit. ``stopped_by``: the
    signal that stopped it, if one did."""
    manifest = outcome.manifest
    tally = outcome.tally()
    dated = set(outcome.dated)
    ours = [(name, r) for name, r in _all_records(manifest) if r.run_id == outcome.run_id]
    committed = [(name, r) for name, r in ours if r.status in ("complete", "provisional")]
    kept = [r for _, r in ours if r.status == "in-progress"]
    windows = [r for name, r in _all_records(manifest) if name in dated]
    status, code, message = _verdict(outcome, tally, stopped_by, error, len(committed), kept)
    watermark = next(iter(tally.watermarks.values()), None)
    return Summary(
        status=status,
        exit_code=code,
        records=sum(r.records for _, r in committed),
        windows=sum(name in dated for name, _ in committed),
        skipped=tally.skipped,
        provisional=sum(r.status == "provisional" for _, r in committed),
        snapshots=sum(name not in dated for name, _ in committed),
        failed_windows=tuple(sorted(tally.failed)),
        denied=tuple(tally.denied[name] for name in sorted(tally.denied)),
        repeats_dropped=tally.repeats,
        kept_windows=len(kept),
        kept_jobs=len({r.job_id for r in kept}),
        requests=stats.requests if stats else 0,
        retries=stats.retries if stats else 0,
        rate_limited=stats.rate_limited if stats else 0,
        token_refreshes=stats.token_refreshes if stats else 0,
        seconds=round(seconds, 3),
        watermark=format_instant(watermark) if watermark else None,
        windows_by_status=dict(sorted(Counter(r.status for r in windows).items())),
        datasets=_per_dataset(outcome, tally, committed, finished=not (error or stopped_by)),
        open_records=tally.open_records,
        error=message,
        run_id=outcome.run_id,
    )


def _all_records(manifest: Manifest | None) -> list[tuple[str, WindowRecord]]:
    if manifest is None:
        return []
    return [(name, r) for name in manifest.datasets() for r in manifest.records(name)]


def _per_dataset(
    outcome: Outcome,
    tally: Tally,
    committed: list[tuple[str, WindowRecord]],
    *,
    finished: bool,
) -> dict[str, DatasetFigures]:
    """Per dataset this run committed, failed, was denied, or planned windows of."""
    manifest = outcome.manifest
    if manifest is None:
        return {}
    denied = tally.denied
    found: dict[str, DatasetFigures] = {}
    for name in sorted({*manifest.datasets(), *outcome.dated, *denied}):
        ours = [r for entity, r in committed if entity == name]
        lost = sum(line.startswith((f"{name} ", f"{name}:")) for line in tally.failed)
        if not (ours or lost or name in denied or name in outcome.dated):
            continue
        ok = finished and bool(ours) and not lost and name not in denied
        figures = DatasetFigures(files=len(ours), records=sum(r.records for r in ours),
                                 bytes=sum(r.bytes for r in ours), failed=lost,
                                 denied=name in denied, ok=ok)  # fmt: skip
        if name in outcome.dated:
            watermark = tally.watermarks.get(name)
            figures["watermark"] = format_instant(watermark) if watermark else None
            statuses = Counter(r.status for r in manifest.records(name))
            figures["windows_by_status"] = dict(sorted(statuses.items()))
        found[name] = figures
    return found


def _verdict(
    outcome: Outcome,
    tally: Tally,
    stopped_by: str | None,
    error: ExportError | None,
    committed: int,
    kept: list[WindowRecord],
) -> tuple[str, int, str | None]:
    kept_note = _kept_note(committed, kept)
    if error is not None:
        note = f" ({kept_note})" if outcome.started else ""
        return error.summary_status, error.exit_code, f"{error}{note}"
    if stopped_by:
        if not outcome.started:
            what = f"Stopped by {stopped_by} before anything was fetched; nothing to keep."
        else:
            what = f"Stopped by {stopped_by}: {kept_note}. Run the same command again to continue."
        return "interrupted", Interrupted.exit_code, what
    if tally.denied:
        return "denied", PermissionDenied.exit_code, None
    if tally.failed:
        return "failed", 1, None
    if tally.stalled:  # nothing is wrong but the service's pace: run again later
        stalled = "; ".join(f"{k}: {v}" for k, v in sorted(tally.stalled.items()))
        what = f"{stalled}; run the same command again later to continue ({kept_note})."
        return JobStalled.summary_status, JobStalled.exit_code, what
    return "ok", 0, None


def _kept_note(committed: int, kept: list[WindowRecord]) -> str:
    jobs_ = len({r.job_id for r in kept})
    unfinished = (
        f"{len(kept)} unfinished windows kept at their checkpoints, {jobs_} jobs left running "
        "for the next run to continue"
        if kept
        else "no unfinished window to keep"
    )
    return f"{committed} windows and snapshots committed this run; {unfinished}"
