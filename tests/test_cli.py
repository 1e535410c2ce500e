"""The CLI boundary: one clear line and the right exit code for bad input; secrets never shown."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import orjson
import pytest

from genesys_sandbox import run_sandbox_in_thread
from tests.support import assert_one_clear_line, last_json, run_cli, sandbox_settings

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
    """Each bad input names the problem and the fix in one line, exit 2, no traceback, and
    the JSON summary says so."""
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
    """auth check's last stdout line is its JSON summary, as one line, after a bad config
    (exit 2) and a refused login (exit 3) as after a good one."""
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
    """A metrics file that cannot be written exits 1, and the summary, printed after it was
    tried, says exit 1 and why: never exit 0 over a process that exits 1."""
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
    """Each subcommand and export flag appears in the README's CLI reference."""
    from exporter.cli import build_parser

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    parser = build_parser()
    export = parser._subparsers._group_actions[0].choices["export"]  # type: ignore[union-attr]
    for action in export._actions:
        if action.help == argparse.SUPPRESS:  # --client-secret exists only to be refused
            continue
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert flag in readme, flag
    for command in ("export", "auth check", "sandbox"):
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
        first = metrics.read_text()
        bad = export_one_day(empty_config, tmp_path / "out", sandbox_env(sb, "wrong"),
                             "--no-progress", "--metrics-file", str(metrics))  # fmt: skip
    assert bad.returncode == 3
    second = metrics.read_text()
    assert "genesys_export_exit_code 0" in first and "genesys_export_exit_code 3" in second
    success = [line for line in first.splitlines() if line.startswith("genesys_export_last_s")]
    assert success and success[0] in second.splitlines()
    assert 'genesys_export_windows{status="complete"} 1' in first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".genesys.prom")]


def test_every_dataset_is_documented_in_the_readme() -> None:
    """The README's dataset table names each dataset with its endpoint and permission."""
    from exporter.datasets import DATASETS, Listing

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n## Datasets\n", 1)[1].split("\n## ", 1)[0]  # not the table list
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines()
            if line.startswith("| `")}  # fmt: skip
    for name, dataset in DATASETS.items():
        assert name in rows, name
        path = dataset.path if isinstance(dataset, Listing) else dataset.api.jobs
        assert path in rows[name], name
        assert (dataset.permission or "none declared") in rows[name], name
        assert f"`{name}/YYYY-MM-DD.jsonl`" in rows[name], name
