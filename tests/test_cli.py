"""The CLI boundary: one clear line and the right exit code for bad input; secrets never shown."""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from exporter.store.lock import LOCK_NAME
from genesys_sandbox import run_sandbox_in_thread
from tests.support import (
    assert_one_clear_line,
    cli,
    cli_env,
    last_json,
    metric_samples,
    run_cli,
    sandbox_settings,
    start_time,
)

SECRET = "S3CRET-zebra-4242-do-not-leak"


def sandbox_env(sb, secret: str | None = None) -> dict[str, str]:
    """The environment pointing the CLI at ``sb``; ``secret`` replaces the right one."""
    return {
        "GENESYSCLOUD_API_URL": sb.url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": sb.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": secret or sb.client_secret,
    }


def export_one_day(config: Path, out: Path, env: dict[str, str], *flags: str):
    return run_cli(
        "export", "--config", str(config), "--start", "2026-11-01", "--end", "2026-11-02",
        "--out", str(out), *flags, env=env,
    )  # fmt: skip


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path


REAL = {"GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}
IN_REGION = REAL | {"GENESYSCLOUD_REGION": "us-east-1"}

BAD_INPUT = [
    pytest.param(
        ["--start", "2026-13-01"],
        IN_REGION,
        ["--start", "YYYY-MM-DD"],
        id="unparseable-date",
    ),
    pytest.param(
        ["--start", "2026-11-05", "--end", "2026-11-01"],
        IN_REGION,
        ["--end"],
        id="end-before-start",
    ),
    pytest.param(
        ["--start", "2099-01-01"],
        IN_REGION,
        ["future"],
        id="start-in-future",
    ),
    pytest.param(
        ["--start", "2026-11-01", "--region", "moon-1"],
        REAL,
        ["moon-1", "us-east-1"],
        id="unknown-region",
    ),
    pytest.param(
        ["--start", "2026-11-01", "--region", "us-east-1"],
        {},
        ["GENESYSCLOUD_OAUTHCLIENT_ID"],
        id="missing-credentials",
    ),
    pytest.param(["--start", "2026-11-01"], REAL, ["region"], id="no-region"),
    pytest.param(
        ["--start", "2026-11-01", "--concurrency", "lots"],
        IN_REGION,
        ["concurrency"],
        id="bad-int",
    ),
    pytest.param(
        ["--start", "2026-11-01", "--compression", "rar"],
        IN_REGION,
        ["compression"],
        id="bad-enum",
    ),
    pytest.param(
        ["--start", "2026-11-01", "--lookback", "soon"],
        IN_REGION,
        ["--lookback"],
        id="bad-duration",
    ),
    pytest.param(
        ["--since-last", "--out", "/nonexistent/nowhere"],
        IN_REGION,
        ["--since-last"],
        id="since-last",
    ),
]


@pytest.mark.parametrize(("args", "env", "needles"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(args, env, needles, empty_config) -> None:
    """Each bad input: one line naming problem and fix, exit 2, and a JSON summary saying so."""
    result = run_cli("export", "--config", str(empty_config), *args, env=env)
    assert_one_clear_line(result, 2, *needles)
    assert SECRET not in result.stdout + result.stderr
    summary = last_json(result)
    assert (summary["status"], summary["exit_code"]) == ("bad_input", 2)
    assert all(needle in summary["error"] for needle in needles)


def test_unknown_config_key_suggests_the_closest(tmp_path: Path) -> None:
    """A typo in config.toml is named with the closest real key."""
    config = tmp_path / "c.toml"
    config.write_text("[http]\nconcurency = 4\n")
    result = run_cli("export", "--config", str(config), "--start", "2026-11-01")
    assert_one_clear_line(result, 2, "concurency", "concurrency")


def test_wrong_secret_explains_and_never_leaks(tmp_path: Path, empty_config) -> None:
    """A wrong secret exits 3 with the diagnosis; the secret appears nowhere."""
    out = tmp_path / "out"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = export_one_day(empty_config, out, sandbox_env(sb, SECRET))
    assert result.returncode == 3
    assert "region" in result.stderr and "SAML" in result.stderr
    assert "Traceback" not in result.stderr
    assert orjson.loads(result.stdout.splitlines()[-1])["status"] == "auth_failed"
    scan_for_secret(result, out)


def test_successful_run_never_leaks_the_secret(tmp_path: Path, empty_config) -> None:
    """A verbose, successful export prints and writes no secret and no bearer token."""
    out = tmp_path / "out"
    with run_sandbox_in_thread(sandbox_settings(client_secret=SECRET)) as sb:
        result = export_one_day(empty_config, out, sandbox_env(sb), "-v")
    assert result.returncode == 0, result.stderr
    scan_for_secret(result, out)
    assert "Bearer" not in result.stderr


def scan_for_secret(result, out: Path) -> None:
    assert SECRET not in result.stdout and SECRET not in result.stderr
    if out.exists():
        for path in out.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def test_auth_check_reports_region_lifetime_and_reach(empty_config) -> None:
    """auth check logs in, probes, and prints the token lifetime and what it reached."""
    with run_sandbox_in_thread(sandbox_settings(token_ttl_s=3600)) as sb:
        result = run_cli("auth", "check", "--config", str(empty_config), env=sandbox_env(sb))
    assert result.returncode == 0, result.stderr
    assert "token lifetime:  3600 s" in result.stdout
    assert re.search(r"^conversations +windowed +analytics:conversationDetail:view +ok ",
                     result.stdout, re.MULTILINE)  # fmt: skip
    summary = last_json(result)
    assert (summary["status"], summary["exit_code"], summary["token_lifetime_s"]) == ("ok", 0, 3600)


def test_auth_check_names_a_missing_permission(empty_config) -> None:
    """Without the analytics permission auth check exits 3 naming the permission."""
    denied = ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view")
    with run_sandbox_in_thread(sandbox_settings(denied_permissions=denied)) as sb:
        result = run_cli("auth", "check", "--config", str(empty_config), env=sandbox_env(sb))
    assert result.returncode == 3
    assert "analytics:conversationDetail:view" in result.stdout
    assert (last_json(result)["status"], last_json(result)["exit_code"]) == ("denied", 3)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_auth_check_ends_with_a_json_summary_on_every_exit(empty_config, as_json) -> None:
    """auth check ends with its JSON summary line after a bad config, a refused login, a pass."""
    flags = ["--json"] if as_json else []
    bad = run_cli("auth", "check", "--config", str(empty_config), *flags, env=REAL)
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        refused = run_cli("auth", "check", "--config", str(empty_config), *flags,
                          env=sandbox_env(sb, SECRET))  # fmt: skip
        good = run_cli("auth", "check", "--config", str(empty_config), *flags, env=sandbox_env(sb))
    for result, status, code in ((bad, "bad_input", 2), (refused, "auth_failed", 3),
                                 (good, "ok", 0)):  # fmt: skip
        assert result.returncode == code, result.stderr
        assert (last_json(result)["status"], last_json(result)["exit_code"]) == (status, code)
        assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
    assert (good.stdout.count("\n") == 1) == as_json  # --json: the summary alone


def test_an_unwritable_metrics_file_fails_the_run_and_the_summary_says_so(
    tmp_path, empty_config
) -> None:
    """An unwritable metrics file exits 1 and the summary, printed after it, says exit 1 and why."""
    (tmp_path / "not-a-folder").write_text("")
    metrics = tmp_path / "not-a-folder" / "genesys.prom"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = export_one_day(empty_config, tmp_path / "out", sandbox_env(sb), "--no-progress",
                                "--metrics-file", str(metrics))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    summary = last_json(result)
    assert (summary["status"], summary["exit_code"]) == ("error", 1) and summary["records"]
    assert "metrics file" in summary["error"] and str(metrics) in summary["error"]


def test_every_command_is_documented_in_the_readme() -> None:
    """Each subcommand, and every flag of export, run and tables, appears in the README."""
    from exporter.cli import build_parser

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in ("export", "run", "tables"):
        for action in commands[name]._actions:
            if action.help == argparse.SUPPRESS:  # --client-secret exists only to be refused
                continue
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in readme, (name, flag)
    for command in ("export", "run", "tables", "datasets", "auth check", "sandbox"):
        assert f"genesys-export {command}" in readme


def test_an_end_in_the_future_is_cut_to_now_with_a_note(tmp_path, empty_config) -> None:
    """--end next year exports up to now and says so, instead of planning empty windows."""
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = run_cli(
            "export", "--config", str(empty_config), "--start", "2026-11-01", "--end",
            "2099-01-01", "--out", str(tmp_path / "out"), "--no-progress", "--plan",
            env=sandbox_env(sb),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--end 2099-01-01 is in the future; exporting up to now" in result.stderr
    names = [line.split()[1] for line in result.stdout.splitlines()[2:-2]]
    assert names[0] == "2026-11-01" and all(name < "2099" for name in names)


def test_the_metrics_file_is_written_after_ok_and_failed_runs(tmp_path, empty_config) -> None:
    """--metrics-file leaves Prometheus text after every run; a failed run keeps the time of
    the last success."""
    metrics = tmp_path / "genesys.prom"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        ok = export_one_day(empty_config, tmp_path / "out", sandbox_env(sb), "--no-progress",
                            "--metrics-file", str(metrics))  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        first = metric_samples(metrics.read_text())
        bad = export_one_day(empty_config, tmp_path / "out", sandbox_env(sb, "wrong"),
                             "--no-progress", "--metrics-file", str(metrics))  # fmt: skip
    assert bad.returncode == 3
    second = metric_samples(metrics.read_text())
    assert first[EXIT_CODE] == 0 and second[EXIT_CODE] == 3
    assert first[LAST_SUCCESS] == second[LAST_SUCCESS]
    complete = ("genesys_export_windows", (("dataset", "conversations"), ("status", "complete")))
    assert first[complete] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".genesys.prom")]


EXIT_CODE = ("genesys_export_exit_code", ())
LAST_SUCCESS = ("genesys_export_last_success_timestamp_seconds", ())
LAST_RUN = ("genesys_export_last_run_timestamp_seconds", ())


def per_dataset(found: dict, name: str) -> dict[str, float]:
    """One per-dataset gauge of a metrics file: dataset -> value."""
    return {labels[0][1]: value for (metric, labels), value in found.items()
            if metric == f"genesys_export_{name}"}  # fmt: skip


def test_metrics_are_per_dataset_and_keep_each_datasets_last_success(
    tmp_path, empty_config
) -> None:
    """Records per dataset as the summary counts them; a denied dataset keeps its last success."""
    metrics, out = tmp_path / "genesys.prom", tmp_path / "out"
    flags = ("--no-progress", "--datasets", "conversations,user-details,users",
             "--metrics-file", str(metrics))  # fmt: skip
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        first = export_one_day(empty_config, out, sandbox_env(sb), *flags)
    assert first.returncode == 0, first.stderr
    before = metric_samples(metrics.read_text())
    counted = {name: f["records"] for name, f in last_json(first)["datasets"].items()}
    assert per_dataset(before, "records") == counted and all(counted.values())
    assert set(per_dataset(before, "watermark_lag_seconds")) == {"conversations", "user-details"}
    denied = sandbox_settings(denied_permissions=("analytics:userDetail:view",))
    with run_sandbox_in_thread(denied) as sb:
        second = export_one_day(empty_config, out, sandbox_env(sb), "--force", *flags)
    assert second.returncode == 3, second.stderr
    after = metric_samples(metrics.read_text())
    success = per_dataset(after, "dataset_last_success_timestamp_seconds")
    assert success["user-details"] == per_dataset(before, "dataset_last_success_timestamp_seconds")[
        "user-details"] == before[LAST_RUN]  # fmt: skip
    assert success["conversations"] == success["users"] == after[LAST_RUN] != before[LAST_RUN]


@pytest.mark.parametrize("source", ["flag", "config-file"])
def test_a_run_that_fails_on_its_configuration_writes_its_metrics(tmp_path, source) -> None:
    """A config error (metrics named by flag or config file) writes exit 2, keeps the successes."""
    metrics, out = tmp_path / "genesys.prom", tmp_path / "out"
    config = tmp_path / "config.toml"
    config.write_text(f"[output]\nmetrics_file = {str(metrics)!r}\n")
    flags = ["--metrics-file", str(metrics)] if source == "flag" else []
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        good = export_one_day(config, out, sandbox_env(sb), "--no-progress", *flags)
    assert good.returncode == 0, good.stderr
    before = metric_samples(metrics.read_text())
    env = REAL if source == "flag" else {"GENESYSCLOUD_REGION": "us-east-1"}
    bad = run_cli("export", "--config", str(config), "--start", "2026-11-01", *flags, env=env)
    assert_one_clear_line(bad, 2, "region" if source == "flag" else "GENESYSCLOUD_OAUTHCLIENT_ID")
    assert (last_json(bad)["status"], last_json(bad)["exit_code"]) == ("bad_input", 2)
    after = metric_samples(metrics.read_text())
    assert after[EXIT_CODE] == 2 and after["genesys_export_status", (("status", "bad_input"),)] == 1
    assert after[LAST_SUCCESS] == before[LAST_SUCCESS] and after[LAST_RUN] > before[LAST_RUN]
    assert per_dataset(after, "records") == {} and per_dataset(before, "records")
    assert per_dataset(after, "dataset_last_success_timestamp_seconds") == per_dataset(
        before, "dataset_last_success_timestamp_seconds")  # fmt: skip


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process on this host, to stand for a run holding the folder."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to read a process's start time")
    with subprocess.Popen(["sleep", "60"]) as child:
        yield child
        child.kill()


def test_a_run_the_lock_refuses_leaves_the_holders_metrics_alone(
    tmp_path, empty_config, live_process
) -> None:
    """A live holder on a no-op-flock filesystem: exit 75, summary locked, its metrics untouched."""
    out, metrics = tmp_path / "out", tmp_path / "genesys.prom"
    out.mkdir()
    pid = live_process.pid
    holder = {"pid": pid, "host": socket.gethostname(), "run_id": "holder",
              "started": "2026-11-01T00:00:00+00:00", "pid_start": start_time(pid)}  # fmt: skip
    (out / LOCK_NAME).write_bytes(orjson.dumps(holder))
    metrics.write_text("# the holder's figures\n")
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = export_one_day(empty_config, out, sandbox_env(sb), "--no-progress",
                                "--metrics-file", str(metrics))  # fmt: skip
    assert result.returncode == 75, result.stderr
    assert "locks do not work" in result.stderr and f"pid {live_process.pid}" in result.stderr
    assert (last_json(result)["status"], last_json(result)["exit_code"]) == ("locked", 75)
    assert metrics.read_text() == "# the holder's figures\n"
    assert orjson.loads((out / LOCK_NAME).read_bytes()) == holder


def test_every_dataset_is_documented_in_the_readme() -> None:
    """The README's dataset table names each dataset with its endpoint and permission."""
    from exporter.datasets import DATASETS, Windowed

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n## Datasets\n", 1)[1].split("\n## ", 1)[0]  # not the table list
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines()
            if line.startswith("| `")}  # fmt: skip
    for name, dataset in DATASETS.items():
        assert name in rows, name
        path = dataset.api.jobs if isinstance(dataset, Windowed) else dataset.path
        assert path in rows[name], name
        assert (dataset.permission or "none declared") in rows[name], name
        assert f"`{name}/YYYY-MM-DD.jsonl`" in rows[name], name


LOADED = """
import sys
from exporter import cli

code = cli.main(sys.argv[1:])
heavy = {"duckdb", "prometheus_client", "pyarrow"}
print("loaded:", sorted({name.split(".")[0] for name in sys.modules} & heavy))
sys.exit(code)
"""


def test_an_export_never_loads_duckdb_prometheus_or_arrow(tmp_path: Path) -> None:
    """DuckDB (about 25 MB of memory), prometheus_client (12 MB) and pyarrow load only for a
    build, for metrics and for a publish: an export's peak memory holds none of them (the
    memory-1m benchmark once measured 30 MB more when it did)."""
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        command = [sys.executable, "-c", LOADED, *cli(sb, tmp_path, tmp_path / "out")[3:]]
        done = subprocess.run(command, env=cli_env(sb), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout
