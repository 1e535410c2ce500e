"""--metrics-push: the run's metrics in a real Prometheus Pushgateway, read back from it."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
from pathlib import Path

from exporter.config import OutputSettings
from exporter.datasets import select
from exporter.metrics import Gateway, push_metrics
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.report import with_metrics
from exporter.runner import export
from exporter.summary import Summary
from genesys_sandbox import run_sandbox_in_thread
from tests.support import (
    CONVERSATIONS_FIGURES,
    PUSH_PASSWORD,
    PUSH_USER,
    START,
    MetricKey,
    cli,
    cli_env,
    days,
    exporter_settings,
    gateway_group,
    last_json,
    run_cli,
    running_pushgateway,
    sample_figures,
    sample_summary,
    sandbox_settings,
    write_config,
)

EXIT_CODE = ("genesys_export_exit_code", ())
LAST_RUN = ("genesys_export_last_run_timestamp_seconds", ())
LAST_SUCCESS = ("genesys_export_last_success_timestamp_seconds", ())
IN_REGION = {"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_OAUTHCLIENT_ID": "id",
             "GENESYSCLOUD_OAUTHCLIENT_SECRET": "not-a-real-secret"}  # fmt: skip


def by_dataset(group: dict[MetricKey, float], name: str) -> dict[str, float]:
    """One per-dataset gauge of a group: dataset -> value (the first label is the dataset)."""
    return {labels[0][1]: value for (metric, labels), value in group.items()
            if metric == f"genesys_export_{name}" and len(labels) == 1}  # fmt: skip


async def test_a_run_leaves_its_per_dataset_figures_in_the_gateway(
    sandbox, tmp_path: Path, pushgateway: str
) -> None:
    """After an export, the folder's group holds each dataset's records, windows by status,
    watermark lag and last success, as the summary counts them."""
    out = tmp_path / "out"
    settings = exporter_settings(sandbox, out)
    request = ExportRequest(START, START + days(3), datasets=select("conversations,users"))
    summary = await export(settings, request, progress=NoProgress())
    assert summary.exit_code == 0, summary.error
    with_metrics(summary, dataclasses.replace(settings.output, metrics_push=pushgateway), {})
    group = gateway_group(pushgateway, out)
    counted = {name: f["records"] for name, f in summary.datasets.items()}
    assert by_dataset(group, "records") == counted and all(counted.values())
    windows = summary.datasets["conversations"].get("windows_by_status", {})
    complete = ("genesys_export_windows", (("dataset", "conversations"), ("status", "complete")))
    assert group[complete] == windows["complete"]
    assert set(by_dataset(group, "watermark_lag_seconds")) == {"conversations"}
    successes = by_dataset(group, "dataset_last_success_timestamp_seconds")
    assert successes == {"conversations": group[LAST_RUN], "users": group[LAST_RUN]}
    assert group[LAST_SUCCESS] == group[LAST_RUN] and group[EXIT_CODE] == 0


def test_a_failed_run_keeps_the_successes_the_gateway_holds(tmp_path: Path, pushgateway: str):
    """Each push replaces the group, and carries over the last successes it held: the run's,
    and each dataset's that did not succeed this time."""
    gateway = Gateway.of_export(pushgateway, tmp_path, {})
    push_metrics(gateway, sample_summary(), now=100.0)
    datasets = {"conversations": CONVERSATIONS_FIGURES, "users": sample_figures(0, ok=False)}
    push_metrics(gateway, sample_summary(status="failed", exit_code=1, datasets=datasets), now=200)
    group = gateway_group(pushgateway, tmp_path)
    successes = by_dataset(group, "dataset_last_success_timestamp_seconds")
    assert successes == {"conversations": 200, "user-details": 100, "users": 100}
    assert (group[LAST_SUCCESS], group[LAST_RUN], group[EXIT_CODE]) == (100, 200, 1)
    assert set(by_dataset(group, "records")) == {"conversations", "users"}  # replaced, not added


def test_each_export_folder_is_a_group_of_its_own(tmp_path: Path, pushgateway: str) -> None:
    """Two folders pushing to one gateway keep their own figures and successes."""
    first, second = tmp_path / "first", tmp_path / "second"
    push_metrics(Gateway.of_export(pushgateway, first, {}), sample_summary(), now=100.0)
    failed = sample_summary(status="failed", exit_code=1, datasets={})
    push_metrics(Gateway.of_export(pushgateway, second, {}), failed, now=200.0)
    assert gateway_group(pushgateway, first)[LAST_SUCCESS] == 100
    assert by_dataset(gateway_group(pushgateway, first), "records")["users"] == 50
    assert LAST_SUCCESS not in gateway_group(pushgateway, second)
    assert gateway_group(pushgateway, second)[EXIT_CODE] == 1


def test_a_run_the_lock_refused_pushes_nothing(tmp_path: Path, pushgateway: str) -> None:
    """The group belongs to the run holding the folder: a refused run (75) leaves it alone."""
    output = OutputSettings(out_dir=tmp_path, metrics_push=pushgateway)
    with_metrics(Summary("locked", 75, error="Another export holds the folder."), output, {})
    assert gateway_group(pushgateway, tmp_path) == {}


def test_the_cli_pushes_on_every_exit_and_a_bad_config_keeps_the_last_success(
    tmp_path: Path, pushgateway: str
) -> None:
    """--metrics-push after an ok run, then after a run refused for its configuration (exit 2):
    the group says exit 2 and still holds the first run's success."""
    out = tmp_path / "out"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        ok = subprocess.run(cli(sb, tmp_path, out, "--metrics-push", pushgateway),
                            env=cli_env(sb), capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    first = gateway_group(pushgateway, out)
    assert by_dataset(first, "records") == {"conversations": last_json(ok)["records"]}
    bad = run_cli("export", "--config", str(write_config(tmp_path)), "--out", str(out),
                  "--start", "2026-11-01", "--metrics-push", pushgateway,
                  env={"GENESYSCLOUD_REGION": "us-east-1"})  # fmt: skip
    assert bad.returncode == 2 and "GENESYSCLOUD_OAUTHCLIENT_ID" in bad.stderr
    second = gateway_group(pushgateway, out)
    assert second[EXIT_CODE] == 2 and second["genesys_export_status", (("status", "bad_input"),)]
    assert second[LAST_SUCCESS] == first[LAST_SUCCESS] < second[LAST_RUN]


def test_a_gateway_that_is_down_is_one_warning_and_the_run_still_succeeds(tmp_path) -> None:
    """Nothing listens at the URL: exit 0, one warning line naming the gateway, and the
    metrics file is written all the same."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    metrics = tmp_path / "genesys.prom"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = subprocess.run(
            cli(sb, tmp_path, tmp_path / "out", "--metrics-push", closed, "--metrics-file",
                str(metrics)), env=cli_env(sb), capture_output=True, text=True,
        )  # fmt: skip
    assert result.returncode == 0 and last_json(result)["status"] == "ok", result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and f"Pushgateway at {closed}" in warnings[0]
    assert "Connection refused" in warnings[0] and "Traceback" not in result.stderr
    assert "genesys_export_records" in metrics.read_text()


def test_basic_auth_comes_from_the_environment_and_is_never_shown(tmp_path: Path) -> None:
    """A gateway asking for basic auth: refused without the environment's credentials (a
    warning saying 401), holding the figures with them; the password shows nowhere."""
    out = tmp_path / "out"
    with (
        running_pushgateway(tmp_path, auth=True) as url,
        run_sandbox_in_thread(sandbox_settings()) as sb,
    ):
        command = cli(sb, tmp_path, out, "--metrics-push", url)
        wrong = {"GENESYS_EXPORT_PUSH_USERNAME": PUSH_USER,
                 "GENESYS_EXPORT_PUSH_PASSWORD": PUSH_PASSWORD + "-not"}  # fmt: skip
        refused = subprocess.run(command, env=cli_env(sb, **wrong), capture_output=True, text=True)
        right = {**wrong, "GENESYS_EXPORT_PUSH_PASSWORD": PUSH_PASSWORD}
        pushed = subprocess.run(command, env=cli_env(sb, **right), capture_output=True, text=True)
        group = gateway_group(url, out, auth=True)
    assert refused.returncode == pushed.returncode == 0, refused.stderr + pushed.stderr
    assert "Pushgateway" not in pushed.stderr, pushed.stderr
    assert f"Pushgateway at {url} (HTTP 401" in refused.stderr, refused.stderr
    complete = ("genesys_export_windows", (("dataset", "conversations"), ("status", "complete")))
    assert group[EXIT_CODE] == 0 and group[complete] == 3
    for result in (refused, pushed):
        assert PUSH_PASSWORD not in result.stdout + result.stderr


def test_a_push_url_holding_credentials_is_refused_without_repeating_them(tmp_path) -> None:
    """Credentials go in the environment: a URL with a password in it is a usage error that
    never repeats the URL."""
    url = "http://pusher:hunter2-secret@127.0.0.1:9091"
    result = run_cli("export", "--config", str(write_config(tmp_path)), "--metrics-push", url,
                     "--start", "2026-11-01", env=IN_REGION)  # fmt: skip
    assert result.returncode == 2 and "--metrics-push must be an http(s) URL" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
