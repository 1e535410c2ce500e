"""``--metrics-file`` and ``--metrics-push``: the run's figures in Prometheus text format, for
node_exporter's textfile collector (written atomically) and for a Pushgateway (one PUT), on
every exit of a run the lock let in.

Gauges describe the last run: run-wide ones (exit code, status, duration, requests, ...) and,
labelled ``dataset``, what it committed of each dataset, that dataset's windows by status and
its watermark lag. The times of the last success, the run's and each dataset's, are carried over
from the file a run replaces when it did not succeed, so an alert can fire on their age. A run
refused by the lock writes nothing (the CLI sees to it): the file belongs to the run it waited
for.

A push replaces the export's group in the gateway, as batch jobs report: grouping key ``job``
``genesys_export`` and ``instance`` the export folder's absolute path (one group per folder,
however many pods or hosts run it). The last successes are read back from the gateway's own
``/metrics`` first, so a failed run carries them over as it does in the file; when they cannot
be read, nothing is pushed and the gateway keeps the previous group whole. Basic auth comes
from ``GENESYS_EXPORT_PUSH_USERNAME`` and ``GENESYS_EXPORT_PUSH_PASSWORD`` only.

prometheus_client renders the text, pushes it, and reads the previous file or group back, one
grammar both ways; the file is written here rather than by its ``write_to_textfile``, which does
not fsync.
"""

from __future__ import annotations

import base64
import http.client
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import default_handler, generate_latest, push_to_gateway
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from exporter.config import PUSH_PASSWORD, PUSH_USERNAME
from exporter.errors import PushFailed
from exporter.store.jsonl import write_atomically
from exporter.summary import Summary
from exporter.windows import parse_api_instant

PREFIX = "genesys_export"
JOB = PREFIX  # the job label of every push
PUSH_TIMEOUT_S = 10.0  # each of the two requests; a gateway slower than this is down
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
    try:
        previous = read_successes(path.read_text())
    except (OSError, UnicodeDecodeError):
        previous = Successes()
    successes = previous.after(summary, moment)
    data = render(summary, now=moment, successes=successes)
    write_atomically(path, data, "write the metrics file")  # the collector skips dot files


@dataclass(frozen=True, slots=True)
class Gateway:
    """A Pushgateway, and the group of one export folder in it."""

    url: str  # http(s), no credentials in it (config_rules checks)
    instance: str  # the export folder's absolute path
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def of_export(cls, url: str, out_dir: Path, env: Mapping[str, str]) -> Gateway:
        """The group of the export in ``out_dir``, with basic auth from ``env`` if it is set."""
        username, password = env.get(PUSH_USERNAME, ""), env.get(PUSH_PASSWORD, "")
        return cls(url.rstrip("/"), os.path.abspath(out_dir), username, password)

    @property
    def grouping_key(self) -> dict[str, str]:
        return {"job": JOB, "instance": self.instance}

    def headers(self) -> list[tuple[str, str]]:
        if not (self.username or self.password):
            return []
        pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return [("Authorization", f"Basic {pair}")]


def push_metrics(gateway: Gateway, summary: Summary, *, now: float | None = None) -> None:
    """Replace the export's group in ``gateway`` with the metrics of ``summary``, carrying over
    the times of the last successes the group holds. Raises PushFailed, having pushed nothing,
    when the gateway cannot be read or written."""
    moment = time.time() if now is None else now
    try:
        previous = read_successes(_read_gateway(gateway), gateway.grouping_key)
        metrics = RunMetrics(summary, now=moment, successes=previous.after(summary, moment))
        push_to_gateway(gateway.url, job=JOB, registry=metrics, timeout=PUSH_TIMEOUT_S,
                        grouping_key={"instance": gateway.instance},
                        handler=_with_headers(gateway.headers()))  # fmt: skip
    except (OSError, ValueError, http.client.HTTPException) as exc:  # urllib's, http.client's
        raise PushFailed(
            f"Could not push the metrics to the Pushgateway at {gateway.url} ({_reason(exc)}); "
            "it keeps the previous run's. Check --metrics-push and that the gateway is up."
        ) from exc


def _read_gateway(gateway: Gateway) -> str:
    """Everything the gateway holds, as the text it exposes to Prometheus."""
    request = Request(f"{gateway.url}/metrics", headers=dict(gateway.headers()))
    with urlopen(request, timeout=PUSH_TIMEOUT_S) as response:
        text: str = response.read().decode()
    return text


def _with_headers(extra: list[tuple[str, str]]) -> Callable[..., Callable[[], None]]:
    """prometheus_client's push handler, sending ``extra`` headers too."""

    def handler(url: str, method: str, timeout: float | None,
                headers: list[tuple[str, str]], data: bytes) -> Callable[[], None]:  # fmt: skip
        return default_handler(url, method, timeout, [*headers, *extra], data)

    return handler


def _reason(exc: Exception) -> str:
    """An urllib error in a few words: the gateway's own for an HTTP error (it says which
    metric it refused), the socket's for no connection; never the request's headers."""
    if isinstance(exc, HTTPError):
        said = " ".join(exc.read(300).decode(errors="replace").split())
        return f"HTTP {exc.code}: {said or exc.reason}"
    if isinstance(exc, URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def read_successes(text: str, group: Mapping[str, str] | None = None) -> Successes:
    """The times of the last successes a metrics text records, in its samples that carry
    ``group``'s labels (none if it is not metrics text)."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        return Successes()
    wanted = (group or {}).items()
    samples = [s for family in families for s in family.samples if wanted <= s.labels.items()]
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
