"""Run every benchmark scenario side by side: genesys-export against the official-SDK baseline.

For each scenario: start the sandbox in its own process, run each contender as a child process
one after another (never in parallel: the machine is small and shared), sample the sandbox's
counters meanwhile, check the exporter's output against the sandbox's ground truth, and finally
print a Markdown table and write ``benchmarks/results/latest.json`` and ``records_per_s.png``.

    python -m benchmarks.run                 # full run (~15-20 min here)
    python -m benchmarks.run --quick         # smoke check (~2-3 min)
    python -m benchmarks.run --scenarios cpu memory-100k --uvloop
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

from benchmarks import report
from benchmarks.harness import SandboxProcess, last_json_line, run_child
from benchmarks.scenarios import FULL, QUICK, Scenario
from exporter.store.jsonl import read_records

RESULTS = Path(__file__).parent / "results"
EXPORTER = "genesys-export"
UVLOOP = "genesys-export+uvloop"
SDK = "sdk-baseline"
# name, python arguments, checkout to run in, --datasets
# (name, module, the checkout it runs from, datasets, privacy profile)
Contender = tuple[str, list[str], Path | None, str, str]
BENCH_PRIVACY_KEY = "benchmark-privacy-key-0123456789"  # a fixed key: pseudonyms cost the same


class _Id(msgspec.Struct):
    conversationId: str


_id_decoder = msgspec.json.Decoder(_Id)


def exporter_command(
    module: list[str], config: Path, scenario: Scenario, out: Path, datasets: str
) -> list[str]:
    # The default selection passes no flag, so a checkout from before --datasets runs too.
    chosen = [] if datasets == "conversations" else ["--datasets", datasets]
    return [
        sys.executable,
        *module,
        "export",
        *chosen,
        "--config",
        str(config),
        "--start",
        scenario.start.date().isoformat(),
        "--end",
        scenario.end.date().isoformat(),
        "--out",
        str(out),
        "--no-progress",
    ]


def exported_ids(out: Path) -> list[str]:
    """Every conversationId in the exporter's window files, in file order."""
    ids: list[str] = []
    for path in sorted((out / "conversations").glob("*.jsonl")):
        ids.extend(_id_decoder.decode(line).conversationId for line in read_records(path))
    return ids


def exported_statuses(out: Path) -> list[tuple[str, str, str]]:
    """Every (userId, presence or routing, startTime) in the user-details files."""
    keys = []
    for path in sorted((out / "user-details").glob("*.jsonl")):
        for line in read_records(path):
            entry = orjson.loads(line)
            keys += [
                (entry["userId"], kind, status["startTime"])
                for kind in ("primaryPresence", "routingStatus")
                for status in entry[kind]
            ]
    return keys


def exported_quality(out: Path) -> tuple[list[str], list[str]]:
    """Every evaluation id and every survey id in the window files, in file order."""
    found: dict[str, list[str]] = {"evaluations": [], "surveys": []}
    for dataset, ids in found.items():
        for path in sorted((out / dataset).glob("*.jsonl")):
            ids.extend(orjson.loads(line)["id"] for line in read_records(path))
    return found["evaluations"], found["surveys"]


def check_quality(sandbox: SandboxProcess, scenario: Scenario, out: Path) -> str:
    """Say "yes" when the evaluations and surveys exported are the ground truth, each once."""
    evaluations, surveys = sandbox.quality_truth(scenario.start, scenario.end)
    got_evaluations, got_surveys = exported_quality(out)
    verdicts = (verdict(got_evaluations, set(evaluations), "evaluations"),
                verdict(got_surveys, set(surveys), "surveys"))  # fmt: skip
    return next((v for v in verdicts if v != "yes"), "yes")


def check_statuses(sandbox: SandboxProcess, scenario: Scenario, out: Path) -> str:
    """Say "yes" when the exported statuses are the ground truth, each once."""
    truth = {tuple(s[:3]) for s in sandbox.status_truth(scenario.start, scenario.end)}
    return verdict(exported_statuses(out), truth, "statuses")


def check_exporter(sandbox: SandboxProcess, scenario: Scenario, out: Path, datasets: str) -> str:
    """Say "yes" when each windowed dataset's output is its ground truth, each record once."""
    verdicts = []
    if "conversations" in datasets.split(","):
        verdicts.append(check_conversations(sandbox, scenario, out))
    if "user-details" in datasets.split(","):
        verdicts.append(check_statuses(sandbox, scenario, out))
    if "quality" in datasets.split(","):
        verdicts.append(check_quality(sandbox, scenario, out))
    return next((v for v in verdicts if v != "yes"), "yes")


def check_conversations(sandbox: SandboxProcess, scenario: Scenario, out: Path) -> str:
    truth = set(sandbox.ground_truth(scenario.start, scenario.end))
    return verdict(exported_ids(out), truth, "conversations")


def verdict(exported: Sequence[Hashable], truth: set[Any], what: str) -> str:
    """ "yes" when ``exported`` is ``truth``, each once; else what differs."""
    found = set(exported)
    if found == truth and len(exported) == len(found):
        return "yes"
    return (
        f"NO: {len(truth - found)} {what} missing, {len(found - truth)} extra, "
        f"{len(exported) - len(found)} duplicates"
    )


def check_sdk(sandbox: SandboxProcess, start: datetime, end: datetime, path: Path) -> str:
    """The naive loop writes whatever each job returns: the truth plus overlap records."""
    with open(path, "rb") as file:
        ids = [orjson.loads(line)["conversation_id"] for line in file]
    truth = set(sandbox.ground_truth(start, end))
    missing = len(truth - set(ids))
    extra = len(ids) - len(truth)
    if missing:
        return f"NO: {missing} missing"
    return f"covers (+{extra} overlap)" if extra else "yes"


def sdk_range(sandbox: SandboxProcess, scenario: Scenario) -> tuple[datetime, datetime]:
    """Whole hours of the second (busy, weekday) day holding at least ``sdk_records``."""
    assert scenario.sdk_records is not None
    day = scenario.start + timedelta(days=1 if scenario.days > 1 else 0)
    for hours in range(1, 25):
        if sandbox.count(day, day + timedelta(hours=hours)) >= scenario.sdk_records:
            return day, day + timedelta(hours=hours)
    return day, day + timedelta(days=1)


def run_exporter(
    contender: Contender, sandbox: SandboxProcess, scenario: Scenario, work: Path
) -> dict[str, Any]:
    name, module, tree, datasets, privacy = contender
    config = work / "exporter.toml"
    env = sandbox.sandbox_env()
    if privacy == "none":  # no [privacy] section: a checkout from before profiles runs too
        config.write_text(scenario.exporter_config())
    else:
        config.write_text(f'{scenario.exporter_config()}\n[privacy]\nprofile = "{privacy}"\n')
        env["GENESYS_EXPORT_PRIVACY_KEY"] = BENCH_PRIVACY_KEY
    out = work / f"out-{name.replace('/', '_').replace(' ', '_')}"
    child = run_child(
        exporter_command(module, config, scenario, out, datasets),
        env=env,
        sandbox=sandbox,
        cwd=tree,
    )
    summary = last_json_line(child.stdout)
    metrics = report.run_metrics(scenario, name, child, summary)
    metrics["correct"] = (
        check_exporter(sandbox, scenario, out, datasets) if child.exit_code == 0 else "failed"
    )
    metrics["conversations"] = len(exported_ids(out))
    metrics["statuses"] = len(exported_statuses(out))
    metrics["evaluations"], metrics["surveys"] = map(len, exported_quality(out))
    metrics["limit_share"] = report.limit_share(scenario, metrics)
    metrics["range"] = [scenario.start.isoformat(), scenario.end.isoformat()]
    if child.exit_code != 0:
        metrics["stderr_tail"] = child.stderr[-2000:]
    shutil.rmtree(out, ignore_errors=True)
    return metrics


def run_sdk(sandbox: SandboxProcess, scenario: Scenario, work: Path) -> dict[str, Any]:
    start, end = sdk_range(sandbox, scenario)
    out = work / "sdk.jsonl"
    command = [
        sys.executable,
        "-m",
        "benchmarks.sdk_baseline",
        "--url",
        sandbox.url,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--out",
        str(out),
    ]
    child = run_child(command, env=sandbox.sandbox_env(), sandbox=sandbox)
    metrics = report.run_metrics(scenario, SDK, child, last_json_line(child.stdout))
    metrics["correct"] = check_sdk(sandbox, start, end, out) if child.exit_code == 0 else "failed"
    metrics["range"] = [start.isoformat(), end.isoformat()]
    if child.exit_code != 0:
        metrics["stderr_tail"] = child.stderr[-2000:]
    out.unlink(missing_ok=True)
    return metrics


def run_floors(sandbox: SandboxProcess, scenario: Scenario, max_records: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.floors",
        "--url",
        sandbox.url,
        "--start",
        scenario.start.isoformat(),
        "--end",
        scenario.end.isoformat(),
        "--max-records",
        str(max_records),
    ]
    child = run_child(command, env=sandbox.sandbox_env(), sandbox=None)
    if child.exit_code != 0:
        raise RuntimeError(f"floors failed:\n{child.stderr[-2000:]}")
    return last_json_line(child.stdout)


def startup_cost() -> dict[str, dict[str, float]]:
    """CPU seconds and peak RSS of a contender's start alone (interpreter + imports)."""
    commands = {
        EXPORTER: [sys.executable, "-m", "exporter", "--version"],
        SDK: [sys.executable, "-c", "import PureCloudPlatformClientV2"],
    }
    costs = {}
    for name, command in commands.items():
        child = run_child(command, env=os.environ, sandbox=None)
        costs[name] = {"cpu_s": child.cpu_s, "peak_rss_mb": child.peak_rss_mb}
    return costs


def run_scenario(scenario: Scenario, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    log = work / f"sandbox-{scenario.name}.log"
    _say(f"[{scenario.name}] starting the sandbox ({scenario.conversations:,} conversations)")
    with SandboxProcess(scenario.sandbox_flags(), log) as sandbox:
        _say(f"[{scenario.name}] sandbox ready in {sandbox.startup_s:.1f} s at {sandbox.url}")
        contenders: list[Contender] = [
            (_named(EXPORTER, datasets, scenario), ["-m", "exporter"], None, datasets, "none")
            for datasets in scenario.datasets
        ]
        for profile in args.privacy:
            name = f"{EXPORTER} --privacy {profile}"
            contenders.append((name, ["-m", "exporter"], None, "conversations", profile))
        if args.uvloop:
            contenders.append(
                (UVLOOP, ["-m", "benchmarks.with_uvloop"], None, "conversations", "none")
            )
        if args.compare_with:
            label = f"{EXPORTER}@{_commit_of(args.compare_with)}"
            contenders.append(
                (label, ["-m", "exporter"], args.compare_with, "conversations", "none")
            )
        runs = []
        for contender in contenders:
            runs.append(_repeated(contender, sandbox, scenario, work))
        if scenario.sdk_records is not None and not args.no_sdk:
            runs.append(run_sdk(sandbox, scenario, work))
            _report_run(runs[-1])
        floors = None
        if scenario.floors:
            floors = run_floors(sandbox, scenario, args.floor_records)
            _say(f"[{scenario.name}] floors: {json.dumps(floors['methods'])}")
    return {"runs": runs, "floors": floors, "sandbox_startup_s": round(sandbox.startup_s, 1)}


def _repeated(
    contender: Contender, sandbox: SandboxProcess, scenario: Scenario, work: Path
) -> dict[str, Any]:
    """``scenario.repeats`` exporter runs; the one with the median CPU time stands for them,
    carrying every run's CPU seconds (``cpu_s_runs``) for the floors' best-of comparison."""
    attempts = []
    for _ in range(scenario.repeats):
        attempts.append(run_exporter(contender, sandbox, scenario, work))
        _report_run(attempts[-1])
    median = sorted(attempts, key=lambda run: run["cpu_s"])[len(attempts) // 2]
    return {**median, "cpu_s_runs": [run["cpu_s"] for run in attempts]}


def _report_run(run: dict[str, Any]) -> None:
    _say(
        f"[{run['scenario']}] {run['contender']}: {run['records']:,} records, "
        f"{run['records_per_s']:,.0f}/s, {run['cpu_s']:.1f} CPU s, "
        f"{run['peak_rss_mb']:.0f} MB peak, correct: {run['correct']}"
    )


def _named(name: str, datasets: str, scenario: Scenario) -> str:
    return name if len(scenario.datasets) == 1 else f"{name} [{datasets}]"


def _commit_of(tree: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or tree.name


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, a couple of minutes")
    parser.add_argument("--scenarios", nargs="+", help="names to run (default: all)")
    parser.add_argument("--uvloop", action="store_true", help="also run the exporter on uvloop")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK baseline")
    parser.add_argument(
        "--privacy",
        nargs="+",
        default=[],
        choices=("standard", "strict"),
        help="also run the exporter (conversations) with these privacy profiles, to compare "
        "their cost with none's",
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        help="another checkout of this repository: its exporter runs too, side by side (A/B)",
    )
    parser.add_argument("--floor-records", type=int, default=None, help="records for the floors")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the outputs")
    parser.add_argument("--label", default="", help="free text saved with the results")
    args = parser.parse_args()
    chosen = QUICK if args.quick else FULL
    if args.scenarios:
        known = {s.name for s in chosen}
        unknown = set(args.scenarios) - known
        if unknown:
            parser.error(f"unknown scenarios {sorted(unknown)}; choose from {sorted(known)}")
        chosen = tuple(s for s in chosen if s.name in args.scenarios)
    args.floor_records = args.floor_records or (20_000 if args.quick else 100_000)
    return run_all(chosen, args)


def run_all(scenarios: tuple[Scenario, ...], args: argparse.Namespace) -> int:
    began = time.time()
    startup = startup_cost()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="genesys-bench-") as folder:
        for scenario in scenarios:
            results[scenario.name] = run_scenario(scenario, args, Path(folder))
    runs = [run for result in results.values() for run in result["runs"]]
    for run in runs:
        base = startup[SDK if run["contender"] == SDK else EXPORTER]["cpu_s"]
        if run["records"]:
            best = min(run.get("cpu_s_runs", [run["cpu_s"]]))
            run["net_cpu_us_per_record"] = round((run["cpu_s"] - base) / run["records"] * 1e6, 2)
            run["net_cpu_us_per_record_best"] = round((best - base) / run["records"] * 1e6, 2)
    skipped = {s.name: s.sdk_skip_reason for s in scenarios if s.sdk_records is None}
    table = report.markdown_table(runs, skipped)
    floors_md = _floors_markdown(results, runs)
    budget_md = (
        _budget_markdown(scenarios, runs)
        + _limit_markdown(scenarios, runs, "user-details", ["conversations", "statuses"])
        + _limit_markdown(scenarios, runs, "quality", ["conversations", "evaluations", "surveys"])
    )
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": _machine(),
        "label": args.label,
        "exporter_source": _exporter_source(),
        "duration_s": round(time.time() - began),
        "startup": startup,
        "scenarios": {s.name: {**_scenario_json(s), **results[s.name]} for s in scenarios},
        "table_markdown": table,
        "floors_markdown": floors_md,
        "budget_markdown": budget_md,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.json").write_text(json.dumps(document, indent=1) + "\n")
    report.plot(runs, scenarios, args.results / "records_per_s.png")
    print(table)
    for extra in (floors_md, budget_md):
        if extra:
            print()
            print(extra)
    bad = [r for r in runs if r["exit_code"] != 0 or r["correct"].startswith("NO")]
    return 1 if bad else 0


def _budget_markdown(scenarios: tuple[Scenario, ...], runs: list[dict[str, Any]]) -> str:
    """For scenarios run once per dataset selection: the time the extra datasets added,
    against what their own requests cost at the rate limit (the target: no more)."""
    rows = []
    for scenario in scenarios:
        if not scenario.budget_table:
            continue
        named = [_named(EXPORTER, d, scenario) for d in scenario.datasets]
        alone, more = (next(r for r in runs if r["contender"] == n) for n in named[:2])
        extra_requests = more["requests"] - alone["requests"]
        allowance = extra_requests / (scenario.rate_per_minute / 60)
        added = more["seconds"] - alone["seconds"]
        rows.append(
            f"| {scenario.name} | {alone['seconds']:.1f} s | {more['seconds']:.1f} s | "
            f"{added:+.1f} s | {extra_requests} requests = {allowance:.1f} s | "
            f"{'yes' if added <= allowance else 'NO'} |"
        )
    if not rows:
        return ""
    head = ("| scenario | conversations alone | with the others | added | the others' "
            "requests at the limit | within |\n| --- | --- | --- | --- | --- | --- |")  # fmt: skip
    return head + "\n" + "\n".join(rows)


def _limit_markdown(
    scenarios: tuple[Scenario, ...], runs: list[dict[str, Any]], selected: str, counts: list[str]
) -> str:
    """For scenarios with a ``selected`` dataset (or group) in a selection: each run's
    records (the ``counts`` columns) and how near the rate limit it ran."""
    named = [s for s in scenarios if any(selected in d for d in s.datasets)]
    rows = [
        f"| {run['contender']} | "
        + "".join(f"{run[count]:,} | " for count in counts)
        + f"{run['seconds']:.1f} s | {run['requests']} | {run['limit_share']:.0%} | "
        f"{run['rate_limited_429']} | {run['correct']} |"
        for scenario in named
        for run in runs
        if run["scenario"] == scenario.name
    ]
    if not rows:
        return ""
    columns = ["contender", *counts, "seconds", "requests", "requests/s against the limit",
               "429s", "correct"]  # fmt: skip
    head = f"| {' | '.join(columns)} |\n|{' --- |' * len(columns)}"
    return "\n\n" + head + "\n" + "\n".join(rows)


def _floors_markdown(results: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    for name, result in results.items():
        if result["floors"]:
            exporter = next(
                (r for r in runs if r["scenario"] == name and r["contender"] == EXPORTER), None
            )
            cpu = {}
            if exporter and exporter["records"]:
                cpu = {
                    "us_per_record": exporter["cpu_s"] / exporter["records"] * 1e6,
                    "net_us_per_record": exporter.get("net_cpu_us_per_record"),
                    "net_us_per_record_best": exporter.get("net_cpu_us_per_record_best"),
                    "runs": len(exporter["cpu_s_runs"]),
                }
            return report.floors_table(result["floors"], cpu)
    return ""


def _scenario_json(scenario: Scenario) -> dict[str, Any]:
    return {
        "kind": scenario.kind,
        "measures": scenario.measures,
        "conversations": scenario.conversations,
        "days": scenario.days,
        "rate_per_minute": scenario.rate_per_minute,
        "latency_ms": scenario.latency_ms,
        "jitter_ms": scenario.jitter_ms,
        "sdk_records_target": scenario.sdk_records,
        "exporter_config": scenario.exporter_config(),
    }


def _exporter_source() -> dict[str, Any]:
    """Which exporter code ran: the package folder, and its git commit when it has one."""
    import exporter

    folder = Path(exporter.__file__).parent
    source: dict[str, Any] = {"path": str(folder), "version": exporter.__version__}
    try:
        git = ["git", "-C", str(folder)]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True
        )
    except OSError:
        return source
    if commit.returncode == 0:
        source["git_commit"] = commit.stdout.strip()
        source["uncommitted_changes"] = bool(dirty.stdout.strip())
    return source


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_end": os.getloadavg(),
    }


if __name__ == "__main__":
    sys.exit(main())
