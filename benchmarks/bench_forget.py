"""GDPR forgetting: what ``forget`` costs on a folder, and what applying the deletions costs an
export, side by side in one run.

    python -m benchmarks.bench_forget            # 200,000 conversations over 7 days
    python -m benchmarks.bench_forget --quick    # 50,000

One sandbox (no rate limit, no latency: CPU-bound) with 50 completed deletions about real
customers (its 2 own and 48 added through its control endpoint). Each step a measured process:
an export of conversations with forgetting off, the same export with ``[forget] enabled``
(every record checked against the 50 subjects, the ones holding a value erased), ``forget`` on
the first folder (every file read, those holding a value written again), and ``forget`` with
nothing new. Prints a Markdown table and writes ``benchmarks/results/forget.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench_tables import export_command
from benchmarks.harness import SandboxProcess, last_json_line, run_child
from benchmarks.scenarios import TablesScenario
from exporter.store.jsonl import read_records

RESULTS = Path(__file__).parent / "results"
FULL = TablesScenario("forget-200k", conversations=200_000, days=7)
QUICK = TablesScenario("forget-50k", conversations=50_000, days=7)
DELETIONS = 50


def add_deletions(url: str, out: Path, count: int) -> int:
    """Deletions about the customers of ``count`` conversations spread over the export; the
    deletions the org then has, completed."""
    files = sorted((out / "conversations").glob("*.jsonl"))
    ids = [orjson.loads(line)["conversationId"] for path in files for line in read_records(path)]
    step = max(1, len(ids) // count)
    added = 0
    for conversation_id in ids[::step]:
        if added == count:
            break
        body = orjson.dumps({"conversationId": conversation_id})
        asked = urllib.request.Request(url + "/sandbox/gdpr/requests", data=body, method="POST")
        try:
            with urllib.request.urlopen(asked, timeout=30):
                added += 1
        except urllib.error.HTTPError:  # a customer with no name, number or address: skip
            continue
    with urllib.request.urlopen(url + "/sandbox/gdpr/ground-truth", timeout=300) as answer:
        truth = orjson.loads(answer.read())["requests"]
    return sum(r["requestType"] == "GDPR_DELETE" and r["status"] == "COMPLETED" for r in truth)


def measure(label: str, command: list[str], env: dict[str, str], sandbox: Any,
            mb: float) -> dict[str, Any]:  # fmt: skip
    child = run_child(command, env=env, sandbox=sandbox)
    if child.exit_code != 0:
        raise RuntimeError(f"{label} failed:\n{child.stderr[-3000:]}")
    summary = last_json_line(child.stdout)
    seconds = float(summary["seconds"])
    records = int(summary.get("records", 0))
    result = {
        "label": label, "seconds": round(seconds, 2), "records": records,
        "per_s": round(records / seconds) if seconds and "datasets" in summary else None,
        "mb_per_s": round(mb / seconds, 1) if seconds else None, "cpu_s": child.cpu_s,
        "peak_rss_mb": child.peak_rss_mb, "summary": summary,
    }  # fmt: skip
    _say(f"{label}: {seconds:.1f} s, {child.cpu_s:.1f} CPU s, {child.peak_rss_mb:.0f} MB peak")
    return result


def run(scenario: TablesScenario, work: Path) -> dict[str, Any]:
    plain, erasing = work / "plain", work / "erasing"
    (work / "bench.toml").write_text("[http]\nrate_limit_per_minute = 0\n")
    (work / "forget.toml").write_text(
        "[http]\nrate_limit_per_minute = 0\n[forget]\nenabled = true\n"
    )
    results: dict[str, Any] = {"scenario": scenario.name, "conversations": scenario.conversations,
                               "days": scenario.days, "runs": []}  # fmt: skip
    with SandboxProcess(scenario.sandbox_flags(), work / "sandbox.log") as sandbox:
        env = sandbox.sandbox_env()
        first = export_command(plain, scenario)
        first[first.index("--datasets") + 1] = "conversations"
        exported = run_child(first, env=env, sandbox=sandbox)
        if exported.exit_code != 0:
            raise RuntimeError(f"the export failed:\n{exported.stderr[-3000:]}")
        mb = sum(p.stat().st_size for p in (plain / "conversations").glob("*")) / 1e6
        results["jsonl_mb"] = round(mb)
        results["deletions"] = add_deletions(sandbox.url, plain, DELETIONS - 2)
        runs = results["runs"]
        again = export_command(plain, scenario)
        again[again.index("--datasets") + 1] = "conversations"
        again[again.index("--out") + 1] = str(work / "plain-again")
        runs.append(measure("export, forgetting off", again, env, sandbox, mb))
        with_forget = export_command(erasing, scenario)
        with_forget[with_forget.index("--datasets") + 1] = "conversations"
        with_forget[with_forget.index("--config") + 1] = str(work / "forget.toml")
        runs.append(measure("export, 50 deletions applied", with_forget, env, sandbox, mb))
        forget = [sys.executable, "-m", "exporter", "forget", "--out", str(plain)]
        runs.append(measure("forget, 50 new deletions", forget, env, sandbox, mb))
        runs.append(measure("forget, nothing new", forget, env, sandbox, mb))
    return results


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| step | seconds | records/s | MB/s of JSONL | CPU s | peak RSS MB | changed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in results["runs"]:
        summary = run["summary"]
        changed = (f"{summary['records']:,} records in {summary['files']} files"
                   if "files" in summary else "")  # fmt: skip
        per_s = f"{run['per_s']:,}" if run["per_s"] else ""
        mb_per_s = run["mb_per_s"] if summary.get("files", 1) else ""  # nothing read
        rows.append(f"| {run['label']} | {run['seconds']:.1f} | {per_s} | {mb_per_s} | "
                    f"{run['cpu_s']:.1f} | {run['peak_rss_mb']:.0f} | {changed} |")  # fmt: skip
    off, on = results["runs"][0], results["runs"][1]
    rows.append("")
    rows.append(
        f"{results['conversations']:,} conversations over {results['days']} days, "
        f"{results['jsonl_mb']:,} MB of JSONL, {results['deletions']} completed deletions. "
        f"Applying them in the export: {on['per_s'] / off['per_s']:.2f}x the records/s and "
        f"{on['cpu_s'] / off['cpu_s']:.2f}x the CPU of the export without them."
    )
    return "\n".join(rows)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 conversations")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the outputs")
    args = parser.parse_args()
    scenario = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="genesys-forget-") as folder:
        results = run(scenario, Path(folder))
    table = markdown(results)
    results["table_markdown"] = table
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "forget.json").write_text(json.dumps(results, indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
