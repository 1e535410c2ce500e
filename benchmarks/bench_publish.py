"""Publishing: the built tables to S3 (SeaweedFS on loopback) as Parquet, Delta and Iceberg,
against a plain pyarrow upload of the same Parquet files, with CPU time and peak RSS.

    python -m benchmarks.bench_publish            # 1,000,000 conversations over 7 days
    python -m benchmarks.bench_publish --quick    # 200,000

One sandbox export of conversations and every snapshot and one table build (as
``benchmarks.bench_tables`` makes them), then, each as its own measured process
(``benchmarks.measure``): ``pyarrow.fs.copy_files`` of the Parquet set to the bucket (the
baseline), a first publish in each format, a publish with nothing changed, and the hourly
case: the last day exported again (zstd, so its sha256 changes), the tables brought up to date,
and a publish of that one day; then a forget of 50 completed deletions about customers spread
over the week, the tables built again, and the publish that writes the days it changed and
drops the versions before it (Delta vacuumed, Iceberg's older snapshots expired). Prints a
Markdown table and writes ``benchmarks/results/publish.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_forget import DELETIONS, add_deletions
from benchmarks.bench_tables import export_command, tables_command
from benchmarks.harness import SandboxProcess, last_json_line, run_child
from benchmarks.scenarios import DATA_START, TABLES_FULL, TABLES_QUICK, TablesScenario
from tests.seaweedfs import BUCKET, CATALOG, SeaweedFS

RESULTS = Path(__file__).parent / "results"
GOAL_RATIO = 1.5  # a Parquet publish within 1.5x a plain upload of the same files
FORMATS = ("parquet", "delta", "iceberg")


def publish_command(out: Path, fmt: str) -> list[str]:
    where = ["--catalog", CATALOG, "--namespace", "bench"] if fmt == "iceberg" else [
        "--to", f"s3://{BUCKET}/bench-{fmt}"]  # fmt: skip
    return [sys.executable, "-m", "exporter", "publish", "--out", str(out), "--format", fmt,
            *where]  # fmt: skip


def upload_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.bench_publish", "--upload", str(out)]


def upload(out: Path) -> None:
    """The baseline: pyarrow copies the Parquet set to the bucket, its threads on, and says
    how long that took (JSON, as the publish summary does)."""
    import time

    from pyarrow import fs

    scheme, _, host = os.environ["AWS_ENDPOINT_URL"].partition("://")
    s3 = fs.S3FileSystem(endpoint_override=host, scheme=scheme, region=os.environ["AWS_REGION"])
    began = time.perf_counter()
    fs.copy_files(str(Path(os.path.realpath(out / "tables"))), f"{BUCKET}/bench-pyarrow",
                  destination_filesystem=s3, use_threads=True)  # fmt: skip
    files = [p for p in (out / "tables").rglob("*.parquet")]
    size = sum(p.stat().st_size for p in files)
    print(json.dumps({"seconds": time.perf_counter() - began, "bytes": size,
                      "written": [str(p) for p in files]}))  # fmt: skip


def measure(label: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    child = run_child(command, env=env, sandbox=None)
    if child.exit_code != 0:
        raise RuntimeError(f"{label} failed:\n{child.stderr[-3000:]}")
    summary = last_json_line(child.stdout)
    result = {
        "label": label, "seconds": round(float(summary["seconds"]), 2),
        "days": len(summary.get("written", [])), "rows": summary.get("rows", 0),
        "mb": round(summary.get("bytes", 0) / 1e6, 1), "cpu_s": child.cpu_s,
        "wall_s": child.wall_s, "peak_rss_mb": child.peak_rss_mb,
        "purged_files": summary.get("purged_files", 0),
    }  # fmt: skip
    _say(f"{label}: {result['days']} table days, {result['mb']} MB in {result['seconds']} s, "
         f"{child.cpu_s:.1f} CPU s, {child.peak_rss_mb:.0f} MB peak")  # fmt: skip
    return result


def run(scenario: TablesScenario, work: Path) -> dict[str, Any]:
    out = work / "export"
    (work / "bench.toml").write_text("[http]\nrate_limit_per_minute = 0\n")
    results: dict[str, Any] = {"scenario": scenario.name, "conversations": scenario.conversations,
                               "days": scenario.days, "runs": []}  # fmt: skip
    with SandboxProcess(scenario.sandbox_flags(), work / "sandbox.log") as sandbox:
        env = sandbox.sandbox_env()
        _checked(run_child(export_command(out, scenario), env=env, sandbox=sandbox), "export")
        _checked(run_child(tables_command(out, scenario), env=dict(os.environ), sandbox=None),
                 "the tables build")  # fmt: skip
        with SeaweedFS(work / "seaweedfs") as lake:
            lake_env = {**os.environ, **lake.env()}
            runs = results["runs"]
            runs.append(measure("pyarrow upload of the Parquet set", upload_command(out),
                                lake_env))  # fmt: skip
            for fmt in FORMATS:
                runs.append(measure(f"publish {fmt}, first", publish_command(out, fmt), lake_env))
            for fmt in FORMATS:
                runs.append(measure(f"publish {fmt}, nothing changed", publish_command(out, fmt),
                                    lake_env))  # fmt: skip
            _reexport_last_day(out, scenario, env, sandbox)
            for fmt in FORMATS:
                runs.append(measure(f"publish {fmt}, one day re-exported",
                                    publish_command(out, fmt), lake_env))  # fmt: skip
            results["deletions"] = add_deletions(sandbox.url, out, DELETIONS - 2)
            forget = [sys.executable, "-m", "exporter", "forget", "--out", str(out)]
            _checked(run_child(forget, env=env, sandbox=sandbox), "the forget")
            _checked(run_child(tables_command(out, scenario), env=dict(os.environ), sandbox=None),
                     "the build after the forget")  # fmt: skip
            for fmt in FORMATS:
                runs.append(measure(f"publish {fmt}, after a forget", publish_command(out, fmt),
                                    lake_env))  # fmt: skip
    results["parquet_mb"] = round(sum(p.stat().st_size for p in (out / "tables").rglob("*")
                                      if p.is_file()) / 1e6)  # fmt: skip
    return results


def _reexport_last_day(out: Path, scenario: TablesScenario, env: dict[str, str],
                       sandbox: SandboxProcess) -> None:  # fmt: skip
    """What an hourly run does before its publish: the last day exported again (new bytes),
    the tables brought up to date."""
    last = DATA_START.date().fromordinal(DATA_START.date().toordinal() + scenario.days - 1)
    again = export_command(out, scenario, "--force", "--compression", "zstd")
    again[again.index("--start") + 1] = last.isoformat()
    again[again.index("--datasets") + 1] = "conversations"
    _checked(run_child(again, env=env, sandbox=sandbox), "the re-export of the last day")
    _checked(run_child(tables_command(out, scenario), env=dict(os.environ), sandbox=None),
             "the incremental build")  # fmt: skip


def _checked(child: Any, what: str) -> None:
    if child.exit_code != 0:
        raise RuntimeError(f"{what} failed:\n{child.stderr[-3000:]}")


def markdown(results: dict[str, Any]) -> str:
    rows = ["| step | table days | MB | seconds | MB/s | CPU s | peak RSS MB | history files "
            "deleted |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for run in results["runs"]:
        rate = run["mb"] / run["seconds"] if run["seconds"] else 0
        purged = run.get("purged_files") or ""
        rows.append(f"| {run['label']} | {run['days']} | {run['mb']:,} | {run['seconds']:.1f} | "
                    f"{rate:,.0f} | {run['cpu_s']:.1f} | {run['peak_rss_mb']:.0f} | "
                    f"{purged} |")  # fmt: skip
    base = next(r for r in results["runs"] if r["label"].startswith("pyarrow"))
    first = {f: next(r for r in results["runs"] if r["label"] == f"publish {f}, first")
             for f in FORMATS}  # fmt: skip
    ratios = ", ".join(f"{f} {first[f]['seconds'] / base['seconds']:.2f}x" for f in FORMATS)
    parquet = first["parquet"]["seconds"] / base["seconds"]
    verdict = "met" if parquet <= GOAL_RATIO else "NOT met"
    rows += ["", f"{results['conversations']:,} conversations over {results['days']} days, "
             f"{results['parquet_mb']:,} MB of Parquet. First publish against the plain upload: "
             f"{ratios} (goal for Parquet: within {GOAL_RATIO}x, {verdict})."]  # fmt: skip
    return "\n".join(rows)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 conversations")
    parser.add_argument("--upload", type=Path, help=argparse.SUPPRESS)  # the baseline child
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the outputs")
    args = parser.parse_args()
    if args.upload:
        upload(args.upload)
        return 0
    scenario = TABLES_QUICK if args.quick else TABLES_FULL
    with tempfile.TemporaryDirectory(prefix="genesys-publish-") as folder:
        results = run(scenario, Path(folder))
    table = markdown(results)
    results["table_markdown"] = table
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "publish.json").write_text(json.dumps(results, indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
