"""``--metrics-file``: the run's figures in Prometheus text format, for node_exporter's
textfile collector, written atomically on every exit of a run the lock let in.

Gauges describe the last run: run-wide ones (exit code, status, duration, requests, ...) and,
labelled ``dataset``, what it committed of each dataset, that dataset's windows by status and
its watermark lag. The times of the last success, the run's and each dataset's, are carried over
from the file a run replaces when it did not succeed, so an alert can fire on their age. A run
refused by the lock writes nothing (the CLI sees to it): the file belongs to the run it waited
for.

prometheus_client renders the text and reads the previous file back, one grammar both ways; the
file is written here rather than by its ``write_to_textfile``, which does not fsync.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from exporter.runner import Summary
from exporter.store.jsonl import fsync_dir, output_error
from exporter.windows import parse_api_instant

PREFIX = "genesys_export"
_LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"
_DATASET_SUCCESS = f"{PREFIX}_dataset_last_success_timestamp_seconds"


@dataclass(frozen=True, slots=True)
class Successes:
    """When a run last succeeded, and when each dataset was last committed without failure."""

    run: float | None = None
    datasets: dict[str, float] = field(default_factory=dict)

    def after(self, summary: Summary, now: float) -> Successes:
        """These times once ``summary``'s run has ended at ``now``."""
        succeeded = {name: now for name, figures in summary.datasets.items() if figures["ok"]}
        run = now if summary.exit_code == 0 else self.run
        return Successes(run, dict(sorted({**self.datasets, **succeeded}.items())))


class RunMetrics(Collector):
    """The gauges of one run, collected as prometheus_client's metric families."""

    def __init__(self, summary: Summary, *, now: float, successes: Successes) -> None:
        self._summary, self._now, self._successes = summary, now, successes

    def collect(self) -> Iterator[Metric]:
        for family in (*self._run(), *self._datasets()):
            if family.samples:  # a figure no dataset has, or no success yet: no lone HELP line
                yield family

    def _run(self) -> Iterator[Metric]:
        summary = self._summary
        yield _gauge("last_run_timestamp_seconds", "When the last run ended.", self._now)
        yield _gauge("last_success_timestamp_seconds", "When a run last ended ok.",
                     self._successes.run)  # fmt: skip
        yield _gauge("exit_code", "The last run's exit code.", summary.exit_code)
        yield _labelled("status", "The last run's status: 1.", ["status"], [([summary.status], 1)])
        yield _gauge("duration_seconds", "How long the last run took.", summary.seconds)
        yield _gauge("requests", "API requests the last run sent.", summary.requests)
        yield _gauge("retries", "Requests the last run retried.", summary.retries)
        yield _gauge("rate_limited", "HTTP 429 answers the last run met.", summary.rate_limited)
        yield _gauge("repeats_dropped", "Repeated records the last run dropped.",
                     summary.repeats_dropped)  # fmt: skip

    def _datasets(self) -> Iterator[Metric]:
        each = self._summary.datasets.items()
        yield _labelled("records", "Records the last run committed.", ["dataset"],
                        [([name], f["records"]) for name, f in each])  # fmt: skip
        yield _labelled("files_committed", "Window and snapshot files the last run committed.",
                        ["dataset"], [([name], f["files"]) for name, f in each])  # fmt: skip
        windows = [([name, status], count) for name, f in each
                   for status, count in f.get("windows_by_status", {}).items()]  # fmt: skip
        yield _labelled("windows", "Windows in the manifest after the last run, by status.",
                        ["dataset", "status"], windows)  # fmt: skip
        lags = [([name], max(0.0, self._now - parse_api_instant(mark) / 1000))
                for name, f in each if (mark := f.get("watermark"))]  # fmt: skip
        yield _labelled("watermark_lag_seconds", "How far the datalake watermark trailed the "
                        "last run's end.", ["dataset"], lags)  # fmt: skip
        successes = [([name], at) for name, at in self._successes.datasets.items()]
        yield _labelled("dataset_last_success_timestamp_seconds", "When a run last committed "
                        "the dataset, without failure or denial.", ["dataset"],
                        successes)  # fmt: skip


def render(summary: Summary, *, now: float, successes: Successes) -> bytes:
    """The metrics text of ``summary``'s run, ended at epoch second ``now``."""
    return generate_latest(RunMetrics(summary, now=now, successes=successes))


def write_metrics(path: Path, summary: Summary, *, now: float | None = None) -> None:
    """Replace ``path`` atomically with the metrics of ``summary``, carrying over the times of
    the last successes it records."""
    moment = time.time() if now is None else now
    successes = read_successes(path).after(summary, moment)
    data = render(summary, now=moment, successes=successes)
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


def read_successes(path: Path) -> Successes:
    """The times of the last successes a metrics file records (none if it is missing or not
    metrics text)."""
    try:
        families = list(text_string_to_metric_families(path.read_text()))
    except (OSError, UnicodeDecodeError, ValueError):
        return Successes()
    samples = [sample for family in families for sample in family.samples]
    run = next((s.value for s in samples if s.name == _LAST_SUCCESS), None)
    datasets = {s.labels["dataset"]: s.value for s in samples
                if s.name == _DATASET_SUCCESS and "dataset" in s.labels}  # fmt: skip
    return Successes(run, datasets)


def _gauge(name: str, help_: str, value: float | None) -> GaugeMetricFamily:
    """A gauge without labels; None leaves it without a sample (and so out of the file)."""
    family = GaugeMetricFamily(f"{PREFIX}_{name}", help_, labels=())
    if value is not None:
        family.add_metric((), value)
    return family


def _labelled(
    name: str, help_: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]
) -> GaugeMetricFamily:
    """A gauge with ``labels``: one sample per (label values, value)."""
    family = GaugeMetricFamily(f"{PREFIX}_{name}", help_, labels=labels)
    for label_values, value in samples:
        family.add_metric(label_values, value)
    return family
