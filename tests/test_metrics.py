"""The metrics file's text (Prometheus exposition format) and the progress line's numbers."""

from __future__ import annotations

import re

from exporter.metrics import render, write_metrics
from exporter.progress import describe
from exporter.runner import Summary

SAMPLE = re.compile(r'^genesys_export_[a-z_]+(\{[a-z_]+="[a-z-]+"\})? -?\d+(\.\d+)?$')


def summary(**changes: object) -> Summary:
    base = dict(status="ok", exit_code=0, records=1200, windows=3, requests=40, retries=2,
                rate_limited=1, seconds=12.5, watermark="2026-11-03T00:00:00.000Z",
                windows_by_status={"complete": 2, "provisional": 1})  # fmt: skip
    return Summary(**{**base, **changes})  # type: ignore[arg-type]


def test_every_line_is_a_help_a_type_or_a_sample_of_a_declared_gauge() -> None:
    text = render(summary(), now=1_793_750_400.0, last_success=1_793_750_400.0)
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
    assert 'genesys_export_windows{status="provisional"} 1' in text
    assert "genesys_export_rate_limited 1" in text


def test_the_watermark_lag_is_the_run_end_less_the_watermark() -> None:
    watermark = 1_793_664_000.0  # 2026-11-03T00:00:00Z
    text = render(summary(), now=watermark + 3600, last_success=None)
    assert "genesys_export_watermark_lag_seconds 3600" in text
    assert "last_success" not in text


def test_a_failed_run_carries_the_last_success_over(tmp_path) -> None:
    """The time of the last success survives failed runs, and is absent before any."""
    path = tmp_path / "genesys.prom"
    write_metrics(path, summary(exit_code=1, status="failed"), now=100.0)
    assert "last_success" not in path.read_text()
    write_metrics(path, summary(), now=200.0)
    write_metrics(path, summary(exit_code=4, status="quota_exhausted"), now=300.0)
    text = path.read_text()
    assert "genesys_export_last_success_timestamp_seconds 200" in text
    assert "genesys_export_last_run_timestamp_seconds 300" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genesys.prom"]


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
        write_metrics(path, summary(), now=now)
        line = next(x for x in path.read_text().splitlines() if x.startswith(
            "genesys_export_last_success"))  # fmt: skip
        write_metrics(path, summary(exit_code=3, status="auth_failed"), now=now + 60)
        assert line in path.read_text().splitlines()
        assert not line.endswith(".000")
