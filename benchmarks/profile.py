"""Profile genesys-export on the CPU-bound scenario with py-spy, and sum the samples up.

Starts the sandbox (no limit, no latency), runs one export under ``py-spy record`` (raw
collapsed stacks, every thread, idle samples left out), writes the raw profile next to the
results, and prints where the event-loop thread and the writer threads spend their samples.

    pip install py-spy
    python -m benchmarks.profile --conversations 300000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.harness import SandboxProcess
from benchmarks.run import RESULTS, exporter_command
from benchmarks.scenarios import Scenario

# (substring of a frame, bucket): the first rule matching any frame of a stack wins.
BUCKETS = (
    ("select_for_windows", "records.select_for_windows: key decode, routing to windows"),
    ("decode_results", "JobsApi.decode_results: msgspec split of the page into Raw records"),
    ("ClientResponse.read", "aiohttp: reading the body"),
    ("_read_ready", "asyncio/aiohttp: socket reads and HTTP parsing"),
    ("data_received", "asyncio/aiohttp: socket reads and HTTP parsing"),
    ("_append", "output: join, file write, sha256, page-cache release (file thread)"),
    ("_sync", "output: flush + fsync (file thread)"),
    ("_commit", "output: commit (file thread)"),
    ("Manifest", "manifest save"),
    ("importlib", "imports at start-up"),
    ("_run_once", "event loop: scheduling, other callbacks"),
)
# Frames where a thread waits rather than works; py-spy does not always see them as idle.
IDLE = ("concurrent/futures/thread.py:81", "EpollSelector.select", "threading.py:320")


def summarise(raw: Path) -> list[tuple[str, int]]:
    """Samples per bucket, idle waits left out, most first."""
    buckets: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE):
            continue
        bucket = next((name for key, name in BUCKETS if any(key in f for f in frames)), "other")
        buckets[bucket] += int(count)
    return buckets.most_common()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile-cpu.txt")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        parser.error("py-spy is not installed; run: pip install py-spy")
    scenario = Scenario("cpu", "cpu-bound", "profile", args.conversations, days=7)
    with tempfile.TemporaryDirectory(prefix="genesys-profile-") as folder:
        work = Path(folder)
        config = work / "exporter.toml"
        config.write_text(scenario.exporter_config())
        with SandboxProcess(scenario.sandbox_flags(), work / "sandbox.log") as sandbox:
            command = exporter_command(["-m", "exporter"], config, scenario, work / "out")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            rate = ["--rate", str(args.rate)]
            spy = ["py-spy", "record", "--format", "raw", "--threads", *rate, "-o", str(args.out)]
            subprocess.run([*spy, "--", *command], env=sandbox.sandbox_env(), check=True)
    buckets = summarise(args.out)
    total = sum(n for _, n in buckets)
    print(f"{total} busy samples (idle waits left out); raw profile: {args.out}")
    for name, count in buckets:
        print(f"{count / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
