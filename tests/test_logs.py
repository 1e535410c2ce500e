"""Log lines: -v shows what a stuck run is doing; --log-format json is one object a line; no
secret in either format."""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from exporter import logs
from exporter.plan import ExportRequest
from exporter.progress import NoProgress
from exporter.runner import export
from exporter.store.manifest import Manifest
from genesys_sandbox import FaultRule, run_sandbox_in_thread
from tests.support import (
    START,
    cli,
    cli_env,
    days,
    exporter_settings,
    last_json,
    run_cli,
    sandbox_settings,
    write_config,
)

SECRET = "S3CRET-logs-4242-do-not-leak"
SUBMITTED = re.compile(r"conversations (\S+): submitted job (\S+) over (\S+)")


@pytest.fixture
def exporter_logger() -> Iterator[None]:
    """Put the exporter's logger back as it was (caplog reads it through propagation)."""
    logger = logging.getLogger("exporter")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as the JSON object it must be."""
    lines = [orjson.loads(line) for line in stderr.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def test_a_verbose_run_shows_its_jobs_their_states_and_the_windows_committed(tmp_path) -> None:
    """-v names each job submitted (dataset, window, interval, id: the manifest's), its states
    as they change, and each window committed with its records."""
    out = tmp_path / "out"
    # Jobs stay unfinished for 3 s: time for polls to see them change state even when a loaded
    # machine holds the child process up for a second (at 1 s, a poll once saw FULFILLED first).
    with run_sandbox_in_thread(sandbox_settings(job_delay_s=3.0)) as sb:
        result = subprocess.run(cli(sb, tmp_path, out, "-v"), env=cli_env(sb),
                                capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    submitted = {window: job for window, job, _ in SUBMITTED.findall(result.stderr)}
    records = Manifest.load(out).records("conversations")
    assert set(submitted.values()) == {r.job_id for r in records} and len(submitted) == 2
    assert set(submitted) == {"2026-11-01", "2026-11-02..2026-11-03"}  # one job, two windows
    for record in records:
        assert f"conversations {record.name}: committed {record.records} records (complete)" in (
            result.stderr)  # fmt: skip
    job = next(iter(submitted.values()))
    states = re.findall(rf"job {job}: (\w+) after", result.stderr)
    assert states[-1] == "FULFILLED" and len(states) == len(set(states)) >= 2  # changes only


async def test_a_pause_says_why(sandbox, tmp_path, caplog) -> None:
    """A 429 with Retry-After: the debug log says every request pauses, for how long and why,
    then the request's retry."""
    sandbox.add_fault(FaultRule(kind="status", status=429, retry_after="0.2", count=1))
    with caplog.at_level(logging.DEBUG, logger="exporter"):
        summary = await export(
            exporter_settings(sandbox, tmp_path),
            ExportRequest(START, START + days(1)),
            progress=NoProgress(),
        )
    assert summary.status == "ok" and summary.rate_limited == 1
    assert re.search(r"pausing every request for 0\.20 s: HTTP 429 from \S+, Retry-After",
                     caplog.text)  # fmt: skip
    assert re.search(r"retrying \w+ \S+ in 0\.00 s: The API rate limit was hit", caplog.text)


def test_json_logs_are_one_object_a_line_with_the_lines_fields(tmp_path) -> None:
    """--log-format json -v: every stderr line parses, with time, level, logger and message;
    a job's line carries dataset, window and job_id; the run's own lines are there too."""
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        result = subprocess.run(cli(sb, tmp_path, tmp_path / "out", "-v", "--log-format", "json"),
                                env=cli_env(sb), capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stderr)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
               for line in lines)  # fmt: skip
    job = next(line for line in lines if "submitted job" in line["message"])
    assert (job["level"], job["dataset"], job["logger"]) == ("debug", "conversations",
                                                             "exporter.engine.fetch")  # fmt: skip
    assert job["job_id"] in job["message"] and job["window"] in job["message"]
    said = lines[-1]
    assert (said["level"], said["logger"]) == ("info", "exporter.cli")
    assert said["message"].startswith(f"ok: {last_json(result)['records']} records")


def test_the_config_file_chooses_json_and_an_error_is_an_error_line(tmp_path) -> None:
    """output.log_format = "json" without the flag: JSON from the first line; a run the service
    refuses ends with one line of level error; the secret is in no line."""
    config = tmp_path / "json.toml"
    config.write_text(write_config(tmp_path).read_text().replace(
        "[output]\n", '[output]\nlog_format = "json"\n'))  # fmt: skip
    with run_sandbox_in_thread(sandbox_settings()) as sb:
        env = cli_env(sb) | {"GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}
        result = subprocess.run(cli(sb, tmp_path, tmp_path / "out", "-v", "--config", str(config)),
                                env=env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 3
    lines = json_lines(result.stderr)
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and errors[0]["message"].startswith("error: ")
    assert SECRET not in result.stderr + result.stdout


def test_a_usage_error_is_still_a_plain_line() -> None:
    """Before the flags are read there is no format to choose: the usual one line."""
    result = run_cli("export", "--log-format", "yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("genesys-export: error: argument --log-format")


@pytest.mark.parametrize("json", [False, True])
def test_no_line_shows_a_secret_in_its_message_or_its_fields(
    capsys, exporter_logger, json: bool
) -> None:
    """The redaction filter sits on the handler: a secret in a child logger's message, its
    arguments or a structured field shows as ***, in both formats."""
    logs.setup(verbose=True, json=json)
    logs.redact([SECRET, "abc"])  # too short to redact: would mangle ordinary words
    logging.getLogger("exporter.engine.jobs").debug(
        "token %s refused", SECRET, extra={"job_id": f"id-{SECRET}", "records": 3}
    )
    logs.say(f"error: the secret {SECRET} leaked")
    err = capsys.readouterr().err
    assert SECRET not in err and err.count("***") == 3 - (not json)
    if json:
        first, second = json_lines(err)
        assert (first["job_id"], first["records"], second["level"]) == ("id-***", 3, "error")
    else:
        assert err.splitlines()[1] == "genesys-export: error: the secret *** leaked"
