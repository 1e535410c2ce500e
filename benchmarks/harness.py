"""Process plumbing for the benchmarks: a sandbox in its own process, and measured contender runs.

The sandbox runs as ``python -m exporter sandbox`` and is read only through its HTTP control
endpoints (``/sandbox/stats``, ``/sandbox/ground-truth``). Each contender runs as a child process
under ``benchmarks.measure`` (a small fresh parent that reports the child's own CPU time and peak
RSS), while a sampler thread reads the sandbox's counters every ``SAMPLE_S`` for the plot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SAMPLE_S = 0.5
STARTUP_TIMEOUT_S = 600.0
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # the sandbox's published demo secret, not a real credential


@dataclass(frozen=True, slots=True)
class Sample:
    """Sandbox counters at ``t`` seconds after the contender started."""

    t: float
    results_pages: int
    requests: int
    rate_limited: int


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What one contender process did, as measured from outside it."""

    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    samples: tuple[Sample, ...]
    stats: Mapping[str, Any]


class SandboxProcess:
    """``python -m exporter sandbox`` on a free port, stopped on exit."""

    def __init__(self, flags: Sequence[str], log_path: Path) -> None:
        self._flags = list(flags)
        self._log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        self.startup_s = 0.0

    def __enter__(self) -> SandboxProcess:
        command = [sys.executable, "-m", "exporter", "sandbox", "--port", "0", *self._flags]
        began = time.perf_counter()
        self._log = open(self._log_path, "w")  # closed in __exit__
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.url = self._wait_for_url(began)
        self.startup_s = time.perf_counter() - began
        return self

    def _wait_for_url(self, began: float) -> str:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:  # the banner's first line names the URL
            if " listening on " in line:
                return line.split(" listening on ", 1)[1].split()[0]
            if time.perf_counter() - began > STARTUP_TIMEOUT_S:
                break
        raise RuntimeError(f"the sandbox did not start; see {self._log_path}")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=60) as response:
            return json.loads(response.read())

    def reset_stats(self) -> None:
        request = urllib.request.Request(self.url + "/sandbox/reset-stats", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/sandbox/stats"))

    def ground_truth(self, start: datetime, end: datetime) -> list[str]:
        return list(
            self.get("/sandbox/ground-truth", start=start.isoformat(), end=end.isoformat())["ids"]
        )

    def status_truth(self, start: datetime, end: datetime) -> list[list[str | None]]:
        """[userId, kind, startTime, endTime] of every status starting in [start, end)."""
        path = "/sandbox/user-details/ground-truth"
        return list(self.get(path, start=start.isoformat(), end=end.isoformat())["statuses"])

    def quality_truth(self, start: datetime, end: datetime) -> tuple[list[str], list[str]]:
        """The evaluation ids and the survey ids of conversations starting in [start, end)."""
        found = self.get("/sandbox/quality/ground-truth", start=start.isoformat(),
                         end=end.isoformat())  # fmt: skip
        return list(found["evaluations"]), list(found["surveys"])

    def count(self, start: datetime, end: datetime) -> int:
        return int(
            self.get("/sandbox/ground-truth", start=start.isoformat(), end=end.isoformat())["count"]
        )

    def sandbox_env(self) -> dict[str, str]:
        """Environment pointing a contender at this sandbox (exporter and SDK baseline alike)."""
        return {
            **os.environ,
            "GENESYSCLOUD_API_URL": self.url,
            "GENESYSCLOUD_LOGIN_URL": self.url,
            "GENESYSCLOUD_OAUTHCLIENT_ID": CLIENT_ID,
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": CLIENT_SECRET,
        }


@dataclass(slots=True)
class _Sampler:
    sandbox: SandboxProcess
    began: float
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while True:
            self.take()
            if self.stop.wait(SAMPLE_S):
                return

    def take(self) -> dict[str, Any]:
        stats = self.sandbox.stats()
        self.samples.append(sample_of(stats, time.perf_counter() - self.began))
        return stats


def api_requests(stats: Mapping[str, Any], route: str | None = None) -> int:
    """API requests the sandbox answered (any status), for ``route`` or all but the token route."""
    total = 0
    for key, n in stats["requests"].items():
        name = key.rpartition(" ")[0]
        if (route is None and name != "oauth.token") or name == route:
            total += int(n)
    return total


def sample_of(stats: Mapping[str, Any], t: float) -> Sample:
    pages = int(stats["requests"].get("jobs.results 200", 0))
    return Sample(round(t, 3), pages, api_requests(stats), int(stats["rate_limited"]))


def run_child(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    sandbox: SandboxProcess | None,
    cwd: Path | None = None,
) -> ChildRun:
    """Run ``command`` to the end under ``benchmarks.measure``, sampling ``sandbox`` meanwhile;
    ``cwd`` is where ``python -m exporter`` finds the exporter (another checkout, for A/B)."""
    if sandbox is not None:
        sandbox.reset_stats()
    with tempfile.TemporaryDirectory(prefix="measure-") as folder:
        result_path = Path(folder) / "rusage.json"
        measure = str(Path(__file__).with_name("measure.py"))
        wrapped = [sys.executable, measure, str(result_path), "--", *command]
        began = time.perf_counter()
        process = subprocess.Popen(
            wrapped, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env), cwd=cwd
        )
        sampler = _Sampler(sandbox, began) if sandbox is not None else None
        thread = threading.Thread(target=sampler.run, daemon=True) if sampler else None
        if thread:
            thread.start()
        out, err = _drain(process)
        process.wait()
        wall = time.perf_counter() - began
        usage = json.loads(result_path.read_text()) if result_path.exists() else {}
    stats: dict[str, Any] = {}
    if sampler and thread:
        sampler.stop.set()
        thread.join()
        stats = sampler.take()
    return ChildRun(
        exit_code=int(usage.get("exit_code", process.returncode)),
        wall_s=round(wall, 3),
        cpu_s=float(usage.get("cpu_s", 0.0)),
        peak_rss_mb=float(usage.get("peak_rss_mb", 0.0)),
        stdout=out,
        stderr=err,
        samples=tuple(sampler.samples) if sampler else (),
        stats=stats,
    )


def _drain(process: subprocess.Popen[bytes]) -> tuple[str, str]:
    """Read both pipes to EOF (on threads, so neither pipe can fill and stall the child)."""
    chunks: dict[str, bytes] = {}

    def read(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    readers = [
        threading.Thread(target=read, args=("out", process.stdout)),
        threading.Thread(target=read, args=("err", process.stderr)),
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return (chunks["out"].decode(errors="replace"), chunks["err"].decode(errors="replace"))


def last_json_line(text: str) -> dict[str, Any]:
    """The last stdout line that parses as a JSON object (both contenders end with one)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return {}
