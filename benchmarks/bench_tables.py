"""Table builds: conversations per second, against DuckDB merely reading the same files and
against the export's own CPU-bound rate, with the build's CPU time and peak RSS.

    python -m benchmarks.bench_tables            # 1,000,000 conversations over 7 days
    python -m benchmarks.bench_tables --quick    # 200,000

One sandbox export (no rate limit, no latency: CPU-bound) of conversations and every snapshot,
then, each as its own measured process (``benchmarks.measure``), after the sandbox has gone
idle: DuckDB reading the conversation files (lines only; and with the build's typed read, no
writes), a full build, a build with nothing changed, and a build after one day is exported
again (zstd-compressed, so its sha256 changes: the sandbox's data is the same each time).
Prints a Markdown table and writes ``benchmarks/results/tables.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import SandboxProcess, last_json_line, run_child
from benchmarks.scenarios import DATA_START, TABLES_FULL, TABLES_QUICK, TablesScenario
from exporter.tables.request import Limits, parse_size

RESULTS = Path(__file__).parent / "results"
TARGET_CONVERSATIONS_PER_S = 20_000


def export_command(out: Path, scenario: TablesScenario, *extra: str) -> list[str]:
    end = DATA_START.date().fromordinal(DATA_START.date().toordinal() + scenario.days)
    return [
        sys.executable, "-m", "exporter", "export", "--datasets", "conversations,dimensions",
        "--config", str(out.parent / "bench.toml"), "--start", DATA_START.date().isoformat(),
        "--end", end.isoformat(), "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def tables_command(out: Path, scenario: TablesScenario, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "exporter", "tables", "--out", str(out),
        "--memory-limit", scenario.memory_limit, "--threads", str(scenario.threads), *extra,
    ]  # fmt: skip


def read_command(out: Path, scenario: TablesScenario, typed: bool) -> list[str]:
    flags = ["--read", str(out), "--memory-limit", scenario.memory_limit]
    return [sys.executable, "-m", "benchmarks.bench_tables", *flags,
            "--threads", str(scenario.threads), *(["--typed"] if typed else [])]  # fmt: skip


def read_only(out: Path, memory_limit: str, threads: int, typed: bool) -> None:
    """DuckDB reading every conversation file and writing nothing: lines only, or the
    build's typed read of every declared field."""
    import duckdb

    from exporter.tables import sql

    files = sorted(str(p) for p in (out / "conversations").glob("*.jsonl*"))
    con = duckdb.connect()
    pool = Limits(parse_size(memory_limit) or 0, threads).pool_bytes  # the build's share
    con.execute(f"SET memory_limit = '{pool}B'")
    con.execute(f"SET threads = {threads}")
    began = time.perf_counter()
    lines = 0
    for path in files:
        if typed:
            stage = sql.typed_stage_sql("conversations", path, "auto_detect", [])
            select = stage.split(" AS SELECT ", 1)[1]
            query = f"SELECT count(*), sum(len(participants)) FROM (SELECT {select})"
        else:
            query = f"SELECT count(*) FROM read_ndjson_objects({sql.literal(path)})"
        row = con.execute(query).fetchone()
        lines += int(row[0]) if row else 0
    print(json.dumps({"seconds": time.perf_counter() - began, "lines": lines}))


def measure(label: str, command: list[str], rate_of: str = "conversations") -> dict[str, Any]:
    child = run_child(command, env=dict(os.environ), sandbox=None)
    if child.exit_code != 0:
        raise RuntimeError(f"{label} failed:\n{child.stderr[-3000:]}")
    summary = last_json_line(child.stdout)
    count = int(summary.get(rate_of, 0))
    seconds = float(summary["seconds"])
    result = {
        "label": label, "seconds": round(seconds, 2), "count": count,
        "per_s": round(count / seconds) if seconds else 0, "cpu_s": child.cpu_s,
        "wall_s": child.wall_s, "peak_rss_mb": child.peak_rss_mb,
    }  # fmt: skip
    _say(f"{label}: {count:,} in {seconds:.1f} s ({result['per_s']:,}/s), {child.cpu_s:.1f} "
         f"CPU s, {child.peak_rss_mb:.0f} MB peak")  # fmt: skip
    return result


def run(scenario: TablesScenario, work: Path) -> dict[str, Any]:
    out = work / "export"
    (work / "bench.toml").write_text("[http]\nrate_limit_per_minute = 0\n")
    results: dict[str, Any] = {"scenario": scenario.name, "conversations": scenario.conversations,
                               "days": scenario.days, "memory_limit": scenario.memory_limit,
                               "threads": scenario.threads, "runs": []}  # fmt: skip
    with SandboxProcess(scenario.sandbox_flags(), work / "sandbox.log") as sandbox:
        env = sandbox.sandbox_env()
        child = run_child(export_command(out, scenario), env=env, sandbox=sandbox)
        if child.exit_code != 0:
            raise RuntimeError(f"the export failed:\n{child.stderr[-3000:]}")
        summary = last_json_line(child.stdout)
        conversations = summary["datasets"]["conversations"]["records"]
        export_rate = round(conversations / summary["seconds"])
        results["export"] = {"conversations": conversations, "seconds": summary["seconds"],
                             "per_s": export_rate, "cpu_s": child.cpu_s}  # fmt: skip
        _say(f"export: {conversations:,} conversations at {export_rate:,}/s (CPU-bound)")
        runs = results["runs"]
        runs.append(measure("duckdb reads the lines", read_command(out, scenario, False), "lines"))
        runs.append(measure("duckdb typed read", read_command(out, scenario, True), "lines"))
        runs.append(measure("tables, full build", tables_command(out, scenario, "--full")))
        runs.append(measure("tables, nothing changed", tables_command(out, scenario), "records"))
        last = DATA_START.date().fromordinal(DATA_START.date().toordinal() + scenario.days - 1)
        again = export_command(out, scenario, "--force", "--compression", "zstd")  # new bytes
        again[again.index("--start") + 1] = last.isoformat()
        again[again.index("--datasets") + 1] = "conversations"
        if run_child(again, env=env, sandbox=sandbox).exit_code != 0:
            raise RuntimeError("the re-export of the last day failed")
        runs.append(measure("tables, one day re-exported", tables_command(out, scenario)))
    results["db_mb"] = round((out / "genesys.duckdb").stat().st_size / 1e6)
    results["parquet_mb"] = round(sum(p.stat().st_size for p in (out / "tables").rglob("*")
                                      if p.is_file()) / 1e6)  # fmt: skip
    results["jsonl_mb"] = round(sum(p.stat().st_size for p in (out / "conversations").glob("*"))
                                / 1e6)  # fmt: skip
    return results


def markdown(results: dict[str, Any]) -> str:
    export = results["export"]
    rows = [
        "| step | count | seconds | per s | CPU s | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| export (CPU-bound, sandbox on the same cores) | {export['conversations']:,} "
        f"conversations | {export['seconds']:.1f} | {export['per_s']:,} | {export['cpu_s']:.1f} "
        "| |",
    ]
    for run in results["runs"]:
        rows.append(
            f"| {run['label']} | {run['count']:,} | {run['seconds']:.1f} | {run['per_s']:,} | "
            f"{run['cpu_s']:.1f} | {run['peak_rss_mb']:.0f} |"
        )
    full = next(r for r in results["runs"] if r["label"] == "tables, full build")
    verdict = "met" if full["per_s"] >= TARGET_CONVERSATIONS_PER_S else "NOT met"
    limit = parse_size(results["memory_limit"]) or 0
    peak_mib = max(r["peak_rss_mb"] for r in results["runs"] if r["label"].startswith("tables"))
    within = "within" if peak_mib * 2**20 <= limit else "OVER"
    rows.append("")
    rows.append(
        f"Full build: {full['per_s']:,} conversations/s against the {TARGET_CONVERSATIONS_PER_S:,}"
        f"/s target ({verdict}), {full['per_s'] / export['per_s']:.2f}x the export's CPU-bound "
        f"rate; {results['threads']} threads; peak RSS {peak_mib:,.0f} MiB, {within} "
        f"--memory-limit {results['memory_limit']} ({limit / 2**20:,.0f} MiB). JSONL "
        f"{results['jsonl_mb']:,} MB -> database {results['db_mb']:,} MB, Parquet "
        f"{results['parquet_mb']:,} MB."
    )
    return "\n".join(rows)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 conversations")
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)  # the read-only child
    parser.add_argument("--typed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the outputs")
    args = parser.parse_args()
    if args.read:
        read_only(args.read, args.memory_limit or "512MB", args.threads or 2, args.typed)
        return 0
    scenario = TABLES_QUICK if args.quick else TABLES_FULL
    if args.memory_limit or args.threads:
        from dataclasses import replace

        scenario = replace(scenario, memory_limit=args.memory_limit or scenario.memory_limit,
                           threads=args.threads or scenario.threads)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="genesys-tables-") as folder:
        results = run(scenario, Path(folder))
    table = markdown(results)
    results["table_markdown"] = table
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "tables.json").write_text(json.dumps(results, indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
