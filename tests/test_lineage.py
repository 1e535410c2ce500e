"""OpenLineage run events, sent through the client's file transport and read back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter import lineage
from exporter.config import OutputSettings
from exporter.datasets import select
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.summary import Summary
from genesys_sandbox import run_sandbox_in_thread
from tests.support import (
    START,
    cli,
    cli_env,
    days,
    exporter_settings,
    last_json,
    run_cli,
    sandbox_settings,
    tables_sandbox_settings,
    write_config,
)

SECRET = "S3CRET-lineage-4242-do-not-leak"


def file_transport(path: Path) -> dict[str, str]:
    """The client's own environment variables for its file transport, one event a line."""
    return {
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(path),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's client writes its events to the returned file."""
    path = tmp_path / "events.jsonl"
    for name, value in file_transport(path).items():
        monkeypatch.setenv(name, value)
    return path


def read_events(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def statistics(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each output's name -> its outputStatistics facet, without the facet's own fields."""
    return {
        o["name"]: {k: v for k, v in o["outputFacets"]["outputStatistics"].items()
                    if not k.startswith("_")}
        for o in event["outputs"]
    }  # fmt: skip


def tags(event: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in event["run"]["facets"]["tags"]["tags"]}


def test_an_export_sends_one_start_and_one_complete_with_each_datasets_counts(tmp_path) -> None:
    """START names the datasets to write; COMPLETE, of the same run, gives each dataset's
    records, bytes and files as the summary counts them, under the configured namespace."""
    out, events = tmp_path / "out", tmp_path / "events.jsonl"
    config = tmp_path / "acme.toml"
    config.write_text(write_config(tmp_path).read_text().replace(
        "[output]\n", '[output]\nlineage_namespace = "acme-prod"\n'))  # fmt: skip
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = subprocess.run(
            cli(sb, tmp_path, out, "--datasets", "conversations,users", "--config", str(config)),
            env=cli_env(sb, **file_transport(events)), capture_output=True, text=True,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    start, end = read_events(events)
    assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == end["run"]["runId"]
    assert start["job"]["namespace"] == end["job"]["namespace"] == "acme-prod"
    assert start["job"]["name"] == "export"
    folders = {str(out / "conversations"), str(out / "users")}
    assert {o["name"] for o in start["outputs"]} == folders
    assert {o["namespace"] for o in start["outputs"] + end["outputs"]} == {"file"}
    summary = last_json(result)
    counted = {str(out / name): {"rowCount": f["records"], "size": f["bytes"],
                                 "fileCount": f["files"]}
               for name, f in summary["datasets"].items()}  # fmt: skip
    assert statistics(end) == counted and all(c["rowCount"] for c in counted.values())
    ours = {"run_id": summary["run_id"], "status": "ok", "exit_code": "0"}
    assert ours.items() <= tags(end).items()  # the client adds its own version
    assert "errorMessage" not in end["run"]["facets"]


def test_a_failing_run_sends_fail_with_its_error_and_never_the_secret(tmp_path) -> None:
    """Credentials the service refuses: START, then FAIL whose error message is the summary's;
    the secret is nowhere in the events."""
    events = tmp_path / "events.jsonl"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        env = cli_env(sb, **file_transport(events)) | {"GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}
        result = subprocess.run(cli(sb, tmp_path, tmp_path / "out"), env=env,
                                capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert SECRET not in events.read_text()
    start, end = read_events(events)
    assert (start["eventType"], end["eventType"]) == ("START", "FAIL")
    error = end["run"]["facets"]["errorMessage"]
    assert error["message"] == last_json(result)["error"] and error["programmingLanguage"]
    assert tags(end)["exit_code"] == "3" and tags(end)["status"] == "auth_failed"


async def test_no_event_carries_the_secret_or_a_token(sandbox, tmp_path, events_file) -> None:
    """A run that logged in and fetched: neither the client secret nor any token the sandbox
    issued appears in its events."""
    settings = exporter_settings(sandbox, tmp_path / "out")
    run = lineage.begin("export", settings.output, datasets=["conversations"])
    request = ExportRequest(START, START + days(1), datasets=select("conversations"))
    run.finish_export(await export(settings, request, progress=NoProgress()))
    text = events_file.read_text()
    issued = list(sandbox.state.tokens._expiry)  # the sandbox's own record of its tokens
    assert issued and [e["eventType"] for e in read_events(events_file)] == ["START", "COMPLETE"]
    assert sandbox.client_secret not in text and not any(token in text for token in issued)


def test_a_stopped_run_ends_with_abort_and_a_refused_one_with_fail(tmp_path, events_file) -> None:
    """Exit 130 is ABORT (the run was stopped, its work kept); exit 75 is FAIL, naming the
    lock."""
    output = OutputSettings(out_dir=tmp_path)
    stopped = Summary("interrupted", 130, error="Stopped by SIGTERM: 1 window committed.")
    lineage.begin("export", output, datasets=["conversations"]).finish_export(stopped)
    refused = Summary("locked", 75, error="Another export holds the folder.")
    lineage.begin("export", output, datasets=["conversations"]).finish_export(refused)
    found = [(e["eventType"], e["run"]["runId"]) for e in read_events(events_file)]
    assert [state for state, _ in found] == ["START", "ABORT", "START", "FAIL"]
    assert found[0][1] == found[1][1] != found[2][1] == found[3][1]
    message = read_events(events_file)[3]["run"]["facets"]["errorMessage"]["message"]
    assert message == "Another export holds the folder."


def test_tables_sends_each_table_with_its_rows_read_from_the_dataset_folders(tmp_path) -> None:
    """`tables`: COMPLETE of job tables, each table's Parquet folder with its rows after the
    build, and the dataset folders it built from as inputs."""
    out, events = tmp_path / "out", tmp_path / "events.jsonl"
    with run_sandbox_in_thread(tables_sandbox_settings()) as sb:
        exported = subprocess.run(cli(sb, tmp_path, out), env=cli_env(sb),
                                  capture_output=True, text=True)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    built = run_cli("tables", "--config", str(write_config(tmp_path)), "--out", str(out),
                    env=file_transport(events))  # fmt: skip
    assert built.returncode == 0, built.stderr
    start, end = read_events(events)
    assert (start["eventType"], end["eventType"], end["job"]["name"]) == ("START", "COMPLETE",
                                                                          "tables")  # fmt: skip
    rows = {str(out / "tables" / t): n for t, n in last_json(built)["rows"].items()}
    assert {name: s["rowCount"] for name, s in statistics(end).items()} == rows
    assert [i["name"] for i in end["inputs"]] == [str(out / "conversations")]


def test_a_transport_that_fails_is_one_warning_and_the_export_still_succeeds(tmp_path) -> None:
    """OPENLINEAGE_URL where nothing listens: exit 0, one warning line, no traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = subprocess.run(cli(sb, tmp_path, tmp_path / "out"),
                                env=cli_env(sb, OPENLINEAGE_URL=closed),
                                capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0 and last_json(result)["status"] == "ok", result.stderr
    said = [line for line in result.stderr.splitlines() if "OpenLineage" in line]
    assert len(said) == 1 and "WARNING" in said[0] and "Traceback" not in result.stderr


def test_nothing_is_sent_said_or_imported_without_configuration(tmp_path) -> None:
    """No openlineage.yml and no OPENLINEAGE_ variable: a run says nothing of lineage and
    never imports the client."""
    probe = (
        "import sys; from pathlib import Path; from exporter import lineage; "
        "from exporter.config import OutputSettings; "
        "run = lineage.begin('export', OutputSettings(out_dir=Path('out')), datasets=['users']); "
        "run.finish(0, []); print('openlineage' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path,
                            capture_output=True, text=True)  # fmt: skip
    assert (result.stdout, result.stderr) == ("False\n", "")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("env", "files", "expected"),
    [
        ({}, [], False),
        ({"OPENLINEAGE_URL": "http://marquez:5000"}, [], True),
        ({"OPENLINEAGE__TRANSPORT__TYPE": "console"}, [], True),
        ({"OPENLINEAGE_CONFIG": "{tmp}/elsewhere.yml"}, ["elsewhere.yml"], True),
        ({"OPENLINEAGE_CONFIG": "{tmp}/missing.yml"}, [], False),
        ({}, ["cwd/openlineage.yml"], True),
        ({}, ["home/.openlineage/openlineage.yml"], True),
        ({"OPENLINEAGE_URL": "http://marquez:5000", "OPENLINEAGE_DISABLED": "true"}, [], False),
    ],
)
def test_the_client_counts_as_configured_where_it_reads_its_configuration(
    tmp_path, env, files, expected
) -> None:
    """OPENLINEAGE_URL, OPENLINEAGE__*, OPENLINEAGE_CONFIG, ./openlineage.yml and
    ~/.openlineage/openlineage.yml configure it; OPENLINEAGE_DISABLED=true wins."""
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("transport:\n  type: console\n")
    given = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    assert lineage.configured(given, tmp_path / "cwd", tmp_path / "home") is expected
