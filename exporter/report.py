"""The JSON summary every command run ends with: one line, the last on stdout.

It is printed after everything that can change the exit code, and its ``exit_code`` is the
process's exit status: a wrapper reads the last line and knows what happened. With ``cli``, the
only module that prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from exporter.errors import ExportError
from exporter.runner import Summary


def error_summary(exc: ExportError) -> dict[str, Any]:
    """The summary of a command that ``exc`` ended before it had anything else to say."""
    return {"status": exc.summary_status, "exit_code": exc.exit_code, "error": str(exc)}


def print_summary(summary: Mapping[str, Any]) -> int:
    """Print ``summary`` as stdout's last line; returns its exit code, for the process's."""
    print(orjson.dumps(summary).decode(), flush=True)
    code: int = summary["exit_code"]
    return code


def with_error(summary: Summary, exc: ExportError) -> Summary:
    """``summary`` failed by ``exc`` after the fact (the metrics file it could not write): a
    run that had failed keeps its status and exit code, one that had not takes the error's."""
    error = f"{summary.error} {exc}" if summary.error else str(exc)
    if summary.exit_code:
        return dataclasses.replace(summary, error=error)
    return dataclasses.replace(
        summary, status=exc.summary_status, exit_code=exc.exit_code, error=error
    )
