"""How a command says it ended: the JSON summary, one line, the last on stdout; for an export,
also its metrics (a file, a Pushgateway) and its account of the run in words, for stderr.

The summary is printed after everything that can change the exit code, and its ``exit_code`` is
the process's exit status: a wrapper reads the last line and knows what happened. With ``cli``,
the only module that prints.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from exporter.config import OutputSettings
from exporter.errors import ExportError, LockHeld, OutputError, PushFailed
from exporter.summary import Summary

log = logging.getLogger(__name__)


def error_summary(exc: ExportError) -> dict[str, Any]:
    """The summary of a command that ``exc`` ended before it had anything else to say."""
    return {"status": exc.summary_status, "exit_code": exc.exit_code, "error": str(exc)}


def print_summary(summary: Mapping[str, Any]) -> int:
    """Print ``summary`` as stdout's last line; returns its exit code, for the process's."""
    print(orjson.dumps(summary).decode(), flush=True)
    code: int = summary["exit_code"]
    return code


def with_metrics(summary: Summary, output: OutputSettings, env: Mapping[str, str]) -> Summary:
    """``summary`` once its metrics are written to ``output.metrics_file`` and pushed to
    ``output.metrics_push`` (basic auth from ``env``), but never for a run the lock refused
    (they are the holder's). A file that cannot be written fails the run (exit 1 unless it had
    failed already), and the summary says so: it is on the export's own disk, and a collector
    would go on reading the old one. A push that fails is one warning and changes nothing: the
    export is done, and a gateway that is down shows in its own metrics."""
    writes = output.metrics_push is not None or output.metrics_file is not None
    if summary.exit_code == LockHeld.exit_code or not writes:
        return summary
    # prometheus_client (about 12 MB) loads only for a run that writes metrics, once it ended.
    from exporter.metrics import Gateway, push_metrics, write_metrics

    if output.metrics_push is not None:
        try:
            push_metrics(Gateway.of_export(output.metrics_push, output.out_dir, env), summary)
        except PushFailed as exc:
            log.warning("%s", exc)
    if output.metrics_file is None:
        return summary
    try:
        write_metrics(output.metrics_file, summary)
    except OutputError as exc:
        error = f"{summary.error} {exc}" if summary.error else str(exc)
        if summary.exit_code:
            return dataclasses.replace(summary, error=error)
        status, code = exc.summary_status, exc.exit_code
        return dataclasses.replace(summary, status=status, exit_code=code, error=error)
    return summary
