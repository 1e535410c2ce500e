"""How a command says it ended: the JSON summary, one line, the last on stdout; for an export,
also its metrics file and its account of the run in words, for stderr.

The summary is printed after everything that can change the exit code, and its ``exit_code`` is
the process's exit status: a wrapper reads the last line and knows what happened. With ``cli``,
the only module that prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from exporter.errors import ExportError, LockHeld, OutputError
from exporter.metrics import write_metrics
from exporter.runner import Summary


def error_summary(exc: ExportError) -> dict[str, Any]:
    """The summary of a command that ``exc`` ended before it had anything else to say."""
    return {"status": exc.summary_status, "exit_code": exc.exit_code, "error": str(exc)}


def print_summary(summary: Mapping[str, Any]) -> int:
    """Print ``summary`` as stdout's last line; returns its exit code, for the process's."""
    print(orjson.dumps(summary).decode(), flush=True)
    code: int = summary["exit_code"]
    return code


def with_metrics(summary: Summary, path: Path | None) -> Summary:
    """``summary`` once its metrics file is written, but never for a run the lock refused (the
    file is the holder's); one that cannot be written fails the run (exit 1 unless it had
    failed already), and the summary says so."""
    if path is None or summary.exit_code == LockHeld.exit_code:
        return summary
    try:
        write_metrics(path, summary)
    except OutputError as exc:
        error = f"{summary.error} {exc}" if summary.error else str(exc)
        if summary.exit_code:
            return dataclasses.replace(summary, error=error)
        status, code = exc.summary_status, exc.exit_code
        return dataclasses.replace(summary, status=status, exit_code=code, error=error)
    return summary


def run_lines(summary: Summary, out_dir: Path) -> list[str]:
    """What an export run did, in words: each denial and failure, then one line of figures."""
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    repeats = (
        f", {summary.repeats_dropped} repeated records dropped" if summary.repeats_dropped else ""
    )
    return [
        *(f"dataset denied: {denied}" for denied in summary.denied),
        *(f"failed: {failed}" for failed in summary.failed_windows),
        f"{summary.status}: {summary.records} records in {summary.windows} windows and "
        f"{summary.snapshots} snapshots ({summary.skipped} windows already complete, "
        f"{summary.provisional} provisional{repeats}) in "
        f"{summary.seconds:.1f} s ({rate:,.0f} records/s); {summary.requests} requests, "
        f"{summary.retries} retries, {summary.rate_limited} rate-limited, "
        f"{summary.token_refreshes} tokens; output in {out_dir}",
    ]
