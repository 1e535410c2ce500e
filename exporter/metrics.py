"""``--metrics-file``: the run's figures in Prometheus text format, for node_exporter's
textfile collector, written atomically after every run (whatever its outcome).

Every metric is a gauge describing the last run, except the time of the last success, which a
failed run carries over from the file it replaces, so an alert can fire on its age.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from datetime import datetime
from pathlib import Path

from exporter.runner import Summary
from exporter.store.jsonl import fsync_dir, output_error

PREFIX = "genesys_export"
_LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"


def render(summary: Summary, *, now: float, last_success: float | None) -> str:
    """The metrics text for ``summary`` at epoch second ``now``."""
    lines: list[str] = []

    def gauge(name: str, help_: str, values: dict[str, float] | float) -> None:
        lines.append(f"# HELP {PREFIX}_{name} {help_}")
        lines.append(f"# TYPE {PREFIX}_{name} gauge")
        if isinstance(values, dict):
            lines.extend(f"{PREFIX}_{name}{{{k}}} {_number(v)}" for k, v in values.items())
        else:
            lines.append(f"{PREFIX}_{name} {_number(values)}")

    gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).", now)
    if last_success is not None:
        gauge("last_success_timestamp_seconds", "When a run last ended ok (Unix time).",
              last_success)  # fmt: skip
    gauge("exit_code", "Exit code of the last run (0 ok).", summary.exit_code)
    gauge("duration_seconds", "How long the last run took.", summary.seconds)
    gauge("records", "Records in the windows the last run committed.",
          {'dataset="conversations"': summary.records})  # fmt: skip
    gauge("repeats_dropped", "Repeated records the last run dropped.", summary.repeats_dropped)
    gauge("windows_committed", "Windows the last run committed.", summary.windows)
    gauge("windows", "Windows in the manifest after the last run, by status.",
          {f'status="{k}"': v for k, v in summary.windows_by_status.items()})  # fmt: skip
    gauge("requests", "API requests the last run sent.", summary.requests)
    gauge("retries", "Requests the last run retried.", summary.retries)
    gauge("rate_limited", "HTTP 429 answers the last run met.", summary.rate_limited)
    if summary.watermark is not None:
        watermark = datetime.fromisoformat(summary.watermark.replace("Z", "+00:00"))
        gauge("watermark_lag_seconds", "How far the datalake watermark trailed the run's end.",
              max(0.0, now - watermark.timestamp()))  # fmt: skip
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, summary: Summary, *, now: float | None = None) -> None:
    """Replace ``path`` atomically with the metrics of ``summary``."""
    moment = time.time() if now is None else now
    last = moment if summary.exit_code == 0 else _previous_success(path)
    data = render(summary, now=moment, last_success=last).encode()
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # the collector skips dot files
    try:
        with open(temp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise output_error(exc, path, "write the metrics file") from exc


def _previous_success(path: Path) -> float | None:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    found = re.search(rf"^{_LAST_SUCCESS} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def _number(value: float) -> str:
    """At most 3 decimals, none for a whole number: the same text when it is read back."""
    value = round(float(value), 3)  # 1796237821.0004 is "1796237821", never "...821.000"
    return str(int(value)) if value.is_integer() else f"{value:.3f}"
