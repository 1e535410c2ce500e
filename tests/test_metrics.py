"""The metrics file's text (Prometheus exposition format) and the progress line's numbers."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.metrics import Successes, render, write_metrics
from exporter.progress import describe
from tests.support import CONVERSATIONS_FIGURES, metric_samples, sample_figures, sample_summary

SAMPLE = re.compile(r'^genesys_export_[a-z_]+(\{[a-z_]+="[a-z_-]+"(,[a-z_]+="[a-z_-]+")*\})? \S+$')
WATERMARK = 1_793_664_000.0  # 2026-11-03T00:00:00Z


def test_every_line_is_a_help_a_type_or_a_sample_of_a_declared_gauge() -> None:
    """The text is HELP, TYPE gauge, and samples of declared gauges, nothing else."""
    text = render(
        sample_summary(), now=1_793_750_400.0, successes=Successes(1_793_750_400.0)
    ).decode()
    declared = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:]
            assert kind == "gauge"
            declared.add(name)
            continue
        assert SAMPLE.match(line), line
        assert line.split("{")[0].split()[0] in declared
    found = metric_samples(text)
    assert found["genesys_export_rate_limited", ()] == 1
    assert found["genesys_export_status", (("status", "ok"),)] == 1


def test_records_windows_and_watermark_lag_are_per_dataset() -> None:
    """Records, windows and each windowed dataset's own watermark lag carry a dataset label."""
    found = metric_samples(render(sample_summary(), now=WATERMARK + 3600, successes=Successes()))
    records = {k[1][0][1]: v for k, v in found.items() if k[0] == "genesys_export_records"}
    assert records == {"conversations": 1200, "user-details": 300, "users": 50}
    assert found["genesys_export_windows", (("dataset", "conversations"), ("status",
                 "provisional"))] == 1  # fmt: skip
    assert found["genesys_export_windows", (("dataset", "user-details"), ("status",
                 "complete"))] == 3  # fmt: skip
    lags = {k[1]: v for k, v in found.items() if k[0] == "genesys_export_watermark_lag_seconds"}
    assert lags == {(("dataset", "conversations"),): 3600, (("dataset", "user-details"),): 7200}
    assert not [k for k in found if "last_success" in k[0]]  # no success recorded yet


def test_each_dataset_keeps_the_time_it_last_succeeded(tmp_path: Path) -> None:
    """A dataset committed without failure takes the run's time; the others keep the old one."""
    path = tmp_path / "genesys.prom"
    write_metrics(path, sample_summary(), now=100.0)
    datasets = {"conversations": CONVERSATIONS_FIGURES, "users": sample_figures(0, ok=False)}
    partly = sample_summary(status="failed", exit_code=1, datasets=datasets)
    write_metrics(path, partly, now=200.0)
    found = metric_samples(path.read_text())
    success = {k[1][0][1]: v for k, v in found.items()
               if k[0] == "genesys_export_dataset_last_success_timestamp_seconds"}  # fmt: skip
    assert success == {"conversations": 200, "user-details": 100, "users": 100}
    assert found["genesys_export_last_success_timestamp_seconds", ()] == 100
    assert found["genesys_export_exit_code", ()] == 1
    assert ("genesys_export_records", (("dataset", "user-details"),)) not in found


def test_a_failed_run_carries_the_last_success_over(tmp_path) -> None:
    """The time of the last success survives failed runs, and is absent before any."""
    path = tmp_path / "genesys.prom"
    write_metrics(path, sample_summary(exit_code=1, status="failed"), now=100.0)
    assert "genesys_export_last_success" not in path.read_text()
    write_metrics(path, sample_summary(), now=200.0)
    write_metrics(path, sample_summary(exit_code=4, status="quota_exhausted"), now=300.0)
    found = metric_samples(path.read_text())
    assert found["genesys_export_last_success_timestamp_seconds", ()] == 200
    assert found["genesys_export_last_run_timestamp_seconds", ()] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genesys.prom"]


def test_a_file_that_is_not_metrics_text_carries_nothing_over(tmp_path) -> None:
    """A garbled previous file is replaced, as if there were none."""
    path = tmp_path / "genesys.prom"
    path.write_bytes(b"genesys_export_last_success_timestamp_seconds {half\n\xff")
    write_metrics(path, sample_summary(exit_code=1, status="failed"), now=100.0)
    assert "genesys_export_last_success" not in path.read_text()


def test_progress_lines_show_plain_numbers_a_share_and_time_left() -> None:
    """No 2e+5: thousands separators, the share of the estimate, a rate and time left."""
    assert describe(200_000, 300_000, 1_000.0, 3, 7) == (
        "200,000 of about 300,000 records (67%), 3/7 windows, 1,000 records/s, about 2 min left"
    )
    assert describe(5, None, 0.0, 0, 1) == "5 records, 0/1 windows, 0 records/s"


def test_the_last_success_reads_back_as_the_same_text(tmp_path) -> None:
    """A run ending a fraction of a millisecond past a whole second writes the time as the
    next run will write it again: a failed run's file carries the same line over."""
    path = tmp_path / "genesys.prom"
    for now in (1_796_237_821.0004, 1_796_237_821.9996, 1_796_237_821.25):
        write_metrics(path, sample_summary(), now=now)
        line = next(x for x in path.read_text().splitlines() if x.startswith(
            "genesys_export_last_success"))  # fmt: skip
        write_metrics(path, sample_summary(exit_code=3, status="auth_failed"), now=now + 60)
        assert line in path.read_text().splitlines()
