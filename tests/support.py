"""Test helpers: sandbox and exporter settings tuned for fast tests, and output readers."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from exporter.config import (
    Connection,
    HttpSettings,
    JobSettings,
    OutputSettings,
    SandboxOptions,
    Settings,
)
from exporter.progress import NoProgress
from exporter.runner import Stopper
from exporter.store.jsonl import read_records
from exporter.summary import DatasetFigures, Summary
from genesys_sandbox import DatasetSpec, FaultRule, SandboxSettings
from genesys_sandbox.wire import format_instant

START = datetime(2026, 11, 1, tzinfo=UTC)
StatusKey = tuple[str, str, str]  # userId, primaryPresence or routingStatus, startTime
KINDS = ("primaryPresence", "routingStatus")
SMALL = DatasetSpec(conversations=3000, start=START, days=3, seed=7)


def sandbox_settings(**changes: Any) -> SandboxSettings:
    """Sandbox defaults for tests: small data, no latency, no rate limit, instant jobs."""
    base = SandboxSettings(dataset=SMALL, rate_per_minute=None, job_delay_s=0.0)
    return dataclasses.replace(base, **changes)


def exporter_settings(sb: Any, out: Path, **sections: dict[str, Any]) -> Settings:
    """Settings pointing at ``sb`` with zero-ish backoff and polling, overridable per section."""
    connection = Connection(
        region=None,
        api_url=sb.url,
        login_url=sb.url,
        client_id=sb.client_id,
        client_secret=sb.client_secret,
        sandbox=False,
    )
    http = HttpSettings(
        rate_limit_per_minute=0,
        retry_backoff_base_s=0.01,
        retry_backoff_max_s=0.05,
        retry_max_seconds=30.0,
        request_timeout_s=5.0,
    )
    # Two concurrent jobs over the usual 3 days make one single-window and one two-window job,
    # so every test runs through both shapes of batch.
    jobs = JobSettings(poll_initial_s=0.01, poll_max_s=0.05, max_concurrent_jobs=2)
    output = OutputSettings(out_dir=out, checkpoint_s=0.0)
    settings = Settings(
        connection=connection,
        http=http,
        jobs=jobs,
        output=output,
        sandbox=SandboxOptions(),
        config_path=None,
    )
    for name, changes in sections.items():
        settings = dataclasses.replace(
            settings, **{name: dataclasses.replace(getattr(settings, name), **changes)}
        )
    return settings


def exported_ids(out: Path) -> Counter[str]:
    """Every conversationId in the data files under ``out``, with multiplicity."""
    ids: Counter[str] = Counter()
    for path in data_files(out):
        for line in read_records(path):
            ids[orjson.loads(line)["conversationId"]] += 1
    return ids


def data_files(out: Path) -> list[Path]:
    """Files under their final data names (part files are hidden and end in .part)."""
    return sorted(
        p for p in out.rglob("*.jsonl*") if not p.name.startswith(".") and p.suffix != ".part"
    )


def ground_truth(sb: Any, start: datetime, end: datetime) -> set[str]:
    return set(sb.dataset.ids_starting_in(start, end))


def assert_exact(sb: Any, out: Path, days_: int = 3) -> None:
    """Every conversation of the sandbox's first ``days_`` days is in ``out`` exactly once,
    nothing else, and no part file is left."""
    ids = exported_ids(out)
    assert set(ids) == ground_truth(sb, START, START + days(days_)) and max(ids.values()) == 1
    assert not list(out.rglob("*.part"))


def instant(ms: int) -> str:
    return format_instant(datetime.fromtimestamp(ms / 1000, UTC))


def status_truth(sb: Any, start: datetime = START, end: datetime | None = None) -> set[StatusKey]:
    """Every status of the sandbox starting in [start, end) (end: three days on)."""
    end = end or START + timedelta(days=3)
    history = sb.dataset.statuses
    lo, hi = (int(t.timestamp() * 1000) for t in (start, end))
    return {(history.user_ids[s.user], s.kind, instant(s.start_ms)) for s in history.truth(lo, hi)}


def exported(out: Path) -> Counter[StatusKey]:
    """Every status in the user-details files, with multiplicity, each checked to lie in the
    file's day, and one line per user per file."""
    found: Counter[StatusKey] = Counter()
    for path in sorted((out / "user-details").glob("*.jsonl")):
        users = Counter()
        for line in read_records(path):
            entry = orjson.loads(line)
            users[entry["userId"]] += 1
            for kind in KINDS:
                for status in entry[kind]:
                    assert status["startTime"].startswith(path.stem), (path, status)
                    found[entry["userId"], kind, status["startTime"]] += 1
        assert max(users.values()) == 1, path
    return found


def assert_statuses_exact(sb: Any, out: Path) -> None:
    """Every status of the sandbox's first three days in ``out`` exactly once, nothing else."""
    statuses = exported(out)
    assert set(statuses) == status_truth(sb) and max(statuses.values()) == 1
    assert not list(out.rglob("*.part"))


class StopAfterPages(NoProgress):
    """Stops the run (politely, as SIGTERM does) once ``n`` pages are written, while every
    batch is still being read."""

    def __init__(self, stopper: Stopper, n: int) -> None:
        self._stopper, self._left = stopper, n

    def advance(self, records: int) -> None:
        self._left -= 1
        if self._left == 0:
            self._stopper.stop("SIGTERM")


def on_user_details(rule: FaultRule) -> FaultRule:
    """The same fault on the user-details family's routes instead of the conversations'."""
    routes = tuple(
        f"user-details.{r}" if r.startswith("jobs.") or r == "query" else r for r in rule.routes
    )
    return dataclasses.replace(rule, routes=routes)


def days(n: int) -> timedelta:
    return timedelta(days=n)


Factory = Callable[..., Settings]


def cli_env(sb: Any, **extra: str) -> dict[str, str]:
    """The environment of a CLI run against ``sb`` (no config file's connection applies)."""
    env = dict(os.environ)
    env.update(
        GENESYSCLOUD_API_URL=sb.url,
        GENESYSCLOUD_LOGIN_URL=sb.url,
        GENESYSCLOUD_OAUTHCLIENT_ID=sb.client_id,
        GENESYSCLOUD_OAUTHCLIENT_SECRET=sb.client_secret,
        **extra,
    )
    env.pop("GENESYSCLOUD_REGION", None)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``genesys-export ARGS`` in a child process, with no GENESYSCLOUD_ variable but ``env``'s."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GENESYSCLOUD_")}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def assert_one_clear_line(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    """Exit ``code``, no traceback, one stderr line saying error, holding every needle."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def last_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON summary a command ends with: the last line of its stdout."""
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    summary: dict[str, Any] = orjson.loads(lines[-1])
    return summary


def sample_figures(records: int, ok: bool = True, **windowed: object) -> DatasetFigures:
    """A dataset's figures as a run's summary holds them (``windowed``: watermark, windows)."""
    return DatasetFigures(files=2, records=records, bytes=records * 900, failed=0 if ok else 1,
                          denied=False, ok=ok, **windowed)  # type: ignore[typeddict-item]  # fmt: skip


CONVERSATIONS_FIGURES = sample_figures(
    1200, watermark="2026-11-03T00:00:00.000Z", windows_by_status={"complete": 2, "provisional": 1}
)
USER_DETAILS_FIGURES = sample_figures(
    300, watermark="2026-11-02T23:00:00.000Z", windows_by_status={"complete": 3}
)


def sample_summary(**changes: object) -> Summary:
    """An export's summary of three datasets, ok unless ``changes`` say otherwise."""
    base = dict(status="ok", exit_code=0, records=1550, windows=3, requests=40, retries=2,
                rate_limited=1, seconds=12.5, watermark="2026-11-03T00:00:00.000Z",
                windows_by_status={"complete": 5, "provisional": 1},
                run_id="20261103T000000Z-abc123",
                datasets={"conversations": CONVERSATIONS_FIGURES,
                          "user-details": USER_DETAILS_FIGURES,
                          "users": sample_figures(50)})  # fmt: skip
    return Summary(**{**base, **changes})  # type: ignore[arg-type]


MetricKey = tuple[str, tuple[tuple[str, str], ...]]  # name, sorted (label, value) pairs


def metric_samples(text: str | bytes) -> dict[MetricKey, float]:
    """Every sample of a metrics text by name and labels, read by Prometheus's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = text.decode() if isinstance(text, bytes) else text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# A bcrypt hash of PUSH_PASSWORD (4 rounds: quick to check), for a gateway that asks for it.
PUSH_USER, PUSH_PASSWORD = "pusher", "push-pass-5ecret"
PUSH_HASH = "$2b$04$63.OOj18gVp1UT/Y3yQuHOZHGoOsP25NhvC1FPWjImj0nfdJO0rL6"


def pushgateway_binary() -> str:
    """Debian's prometheus-pushgateway. Where it is not installed the test skips, naming the
    package (as the image test does for podman); CI installs it (.ci/run), so none skips there."""
    found = shutil.which("prometheus-pushgateway")
    if found is None:
        import pytest

        pytest.skip("needs a Prometheus Pushgateway: apt-get install prometheus-pushgateway")
    return found


@contextlib.contextmanager
def running_pushgateway(tmp_path: Path, *, auth: bool = False) -> Iterator[str]:
    """A real Pushgateway on a free loopback port, holding metrics in memory only; yields its
    URL. ``auth``: it asks for basic auth, PUSH_USER and PUSH_PASSWORD."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flags = [f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    if auth:
        config = tmp_path / "pushgateway-web.yml"
        config.write_text(f"basic_auth_users:\n  {PUSH_USER}: {PUSH_HASH}\n")
        flags.append(f"--web.config.file={config}")
    with subprocess.Popen([pushgateway_binary(), *flags], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE) as gateway:  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(gateway, url, auth)
            yield url
        finally:
            gateway.terminate()
            gateway.communicate(timeout=10)


def _wait_ready(gateway: subprocess.Popen[bytes], url: str, auth: bool) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert gateway.poll() is None, gateway.communicate()[1].decode()[-2000:]
        with contextlib.suppress(OSError):
            gateway_text(url, auth=auth, path="/-/ready")
            return
        time.sleep(0.05)
    raise AssertionError("the Pushgateway did not get ready within 15 s")


def gateway_text(url: str, *, auth: bool = False, path: str = "/metrics") -> str:
    """What the gateway at ``url`` serves at ``path``."""
    request = urllib.request.Request(url + path)
    if auth:
        pair = base64.b64encode(f"{PUSH_USER}:{PUSH_PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {pair}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


def gateway_group(url: str, out: Path, *, auth: bool = False) -> dict[MetricKey, float]:
    """The samples of the export in ``out``'s group (job genesys_export, instance its absolute
    path), keyed without those two labels."""
    group = {("instance", os.path.abspath(out)), ("job", "genesys_export")}
    return {
        (name, tuple(pair for pair in labels if pair not in group)): value
        for (name, labels), value in metric_samples(gateway_text(url, auth=auth)).items()
        if group <= set(labels)
    }


def start_time(pid: int) -> int:
    """A process's start time as /proc records it (clock ticks since boot, field 22)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


# A budget the headers announce, so a CLI run does not keep its cautious starting pace (the
# unlimited test sandbox sends no rate-limit headers; the real service always does).
ANNOUNCED_BUDGET = 60_000


def stop_after(sb: Any, command: list[str], route: str, answers: int, sig: int) -> bytes:
    """Run ``command`` against ``sb``, send ``sig`` once ``route`` has answered ``answers``
    times with 200, and check the exit: -9 for SIGKILL, 130 for a polite stop. Returns
    stderr."""
    proc = subprocess.Popen(command, env=cli_env(sb), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    while sb.stats().count(route, 200) < answers:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 130), stderr[-2000:]
    return stderr


def write_config(tmp_path: Path) -> Path:
    """A config with fast polling and frequent checkpoints, and no connection settings."""
    config = tmp_path / "test-config.toml"
    config.write_text(
        "[jobs]\npoll_initial_s = 0.05\npoll_max_s = 0.1\nmax_concurrent_jobs = 2\n"
        "[output]\ncheckpoint_s = 0.0\n"
        "[http]\nretry_backoff_base_s = 0.01\n"
    )
    return config


def cli(sb: Any, tmp_path: Path, out: Path, *args: str) -> list[str]:
    """``genesys-export export`` of the usual three days into ``out``, fast settings."""
    return [
        sys.executable,
        "-m",
        "exporter",
        "export",
        "--config",
        str(write_config(tmp_path)),
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-04",
        "--out",
        str(out),
        "--no-progress",
        *args,
    ]


# -- tables: exports to build from, and what their raw JSON holds, counted without DuckDB

TABLES_WATERMARK = START + timedelta(days=2, hours=6)  # the third day stays provisional
TABLES_DATA = DatasetSpec(conversations=900, start=START, days=3, seed=7)  # small: fast builds


def tables_sandbox_settings(**changes: Any) -> SandboxSettings:
    """The sandbox the table tests export from: small data, the third day provisional."""
    return sandbox_settings(dataset=TABLES_DATA, availability_date=TABLES_WATERMARK, **changes)


def raw_lines(out: Path, dataset: str) -> list[dict[str, Any]]:
    """Every line of the dataset's buildable files (windows complete or provisional; for a
    snapshot, the newest), parsed with orjson."""
    from exporter.store.manifest import Manifest

    records = [r for r in Manifest.load(out).records(dataset)
               if r.status in ("complete", "provisional") and r.file]  # fmt: skip
    if records and records[-1].source == "listing":
        records = records[-1:]
    return [orjson.loads(line) for r in records for line in read_records(out / str(r.file))]


def raw_table_rows(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each conversation table's keys, each user-details table's and each workforce
    (schedules, adherence) table's, from the raw lines."""
    rows: dict[str, list[tuple[Any, ...]]] = {
        name: [] for name in ("conversations", "participants", "participant_attributes",
                              "sessions", "segments", "metrics", "user_presence",
                              "user_routing_status", "schedule_shifts", "schedule_activities",
                              "adherence_days", "adherence_exceptions", "adherence_actuals")
    }  # fmt: skip
    for c in raw_lines(out, "conversations"):
        cid = c["conversationId"]
        rows["conversations"].append((cid,))
        for p in c["participants"]:
            pid = p["participantId"]
            rows["participants"].append((cid, pid))
            rows["participant_attributes"] += [(cid, pid, k) for k in p.get("attributes", {})]
            for s in p["sessions"]:
                sid = s["sessionId"]
                rows["sessions"].append((cid, pid, sid))
                rows["segments"] += [(cid, pid, sid, i) for i in range(len(s["segments"]))]
                rows["metrics"] += [(cid, pid, sid, i) for i in range(len(s.get("metrics", [])))]
    for u in raw_lines(out, "user-details"):
        for kind, table in (("primaryPresence", "user_presence"),
                            ("routingStatus", "user_routing_status")):  # fmt: skip
            rows[table] += [(u["userId"], s["startTime"]) for s in u.get(kind, [])]
    for a in raw_lines(out, "schedules"):
        day = (a["businessUnitId"], a["date"], a["user"]["id"])
        for shift in a["shifts"]:
            rows["schedule_shifts"].append((*day, shift["id"]))
            rows["schedule_activities"] += [(*day, shift["id"], i)
                                            for i in range(len(shift["activities"]))]  # fmt: skip
    for a in raw_lines(out, "adherence"):
        day = (a["managementUnitId"], a["date"], a["userId"])
        rows["adherence_days"].append(day)
        rows["adherence_exceptions"] += [(*day, i) for i in range(len(a["exceptions"]))]
        rows["adherence_actuals"] += [(*day, i) for i in range(len(a["actuals"]))]
    return rows


def raw_metric_sum(out: Path, name: str) -> int:
    return sum(
        m["value"]
        for c in raw_lines(out, "conversations")
        for p in c["participants"]
        for s in p["sessions"]
        for m in s.get("metrics", [])
        if m["name"] == name
    )


def put_window_file(out: Path, dataset: str, name: str, lines: list[bytes],
                    status: str = "complete") -> Path:  # fmt: skip
    """Write a day file by hand and record it in the manifest, as an export would."""
    import hashlib

    from exporter.store.manifest import Manifest, WindowRecord
    from exporter.windows import Window, format_instant

    window = Window.from_name(name)
    path = out / dataset / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(data)
    manifest = Manifest.load(out)
    manifest.put(dataset, WindowRecord(
        name=name, start=format_instant(window.start), end=format_instant(window.end),
        status=status, source="jobs", file=f"{dataset}/{name}.jsonl", records=len(lines),
        bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
    ))  # fmt: skip
    manifest.save()
    return path


# The exporter's datasets of published forms read the sandbox's published-form listings.
_SANDBOX_LISTING = {"evaluation-forms": "published-evaluation-forms",
                    "survey-forms": "published-survey-forms"}  # fmt: skip


def sandbox_listing(dataset: str) -> str:
    """The sandbox listing (its route name) a snapshot dataset reads."""
    return _SANDBOX_LISTING.get(dataset, dataset)


# -- GDPR deletions: the sandbox's requests and what of their subjects must be forgotten


def strong(subject: dict[str, Any]) -> list[str]:
    """A subject's values that name nobody else: its numbers' digits, its addresses."""
    found = ["".join(c for c in phone if c.isdigit()) for phone in subject["phoneNumbers"]]
    return [value.lower() for value in found + list(subject["emailAddresses"])]


def counted(truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests a forget applies: completed deletions."""
    return [r for r in truth if r["requestType"] == "GDPR_DELETE" and r["status"] == "COMPLETED"]


def gdpr_truth(sb: Any) -> list[dict[str, Any]]:
    """The sandbox's GDPR requests, with their subjects' values (its control endpoint)."""
    with urllib.request.urlopen(sb.url + "/sandbox/gdpr/ground-truth", timeout=10) as answer:
        found: list[dict[str, Any]] = orjson.loads(answer.read())["requests"]
    return found
