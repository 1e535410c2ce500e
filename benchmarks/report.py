"""Turn measured runs into numbers: per-run metrics, the Markdown table, the plot.

Records over time come from the sandbox's counter of results pages served, times the run's
average records per written page; that is what the plot draws and what "after warm-up" uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import ChildRun, Sample, api_requests
from benchmarks.scenarios import Scenario

WARMUP_S = 5.0  # login, availability, submit, the job's ~1 s to FULFILLED, first poll
SMOOTH_S = 2.0  # the plot's rate is over the trailing 2 s (0.5 s samples are lumpy)


def run_metrics(
    scenario: Scenario, contender: str, child: ChildRun, summary: Mapping[str, Any]
) -> dict[str, Any]:
    """The figures the table reports for one contender run."""
    records = int(summary.get("records", 0))
    seconds = float(summary.get("seconds", 0.0)) or child.wall_s
    stats = child.stats
    requests = api_requests(stats)
    polls = api_requests(stats, "jobs.status")
    pages = int(stats["requests"].get("jobs.results 200", 0))
    rate = records / seconds if seconds else 0.0
    ceiling = scenario.ceiling_records_per_s
    fill = records / pages if pages else 0.0
    steady = steady_state(child.samples, fill)
    return {
        "scenario": scenario.name,
        "contender": contender,
        "exit_code": child.exit_code,
        "records": records,
        "seconds": round(seconds, 3),
        "wall_s": child.wall_s,
        "records_per_s": round(rate, 1),
        "requests": requests,
        "requests_per_1000_records": round(requests / records * 1000, 2) if records else None,
        "results_pages": pages,
        # Every record the jobs selected: those written plus those dropped (overlap and the like).
        "job_records_selected": int(stats.get("job_records", 0)),
        "rate_limited_429": int(stats.get("rate_limited", 0)),
        "polls": polls,
        "poll_share": round(polls / requests, 4) if requests else None,
        "ceiling_records_per_s": ceiling,
        "ceiling_fraction": round(rate / ceiling, 4) if ceiling else None,
        "steady": steady,
        "steady_ceiling_fraction": (
            round(steady["records_per_s"] / ceiling, 4) if ceiling and steady else None
        ),
        "cpu_s": child.cpu_s,
        "cpu_s_per_100k": round(child.cpu_s / records * 1e5, 3) if records else None,
        "peak_rss_mb": child.peak_rss_mb,
        "max_in_flight": stats.get("max_in_flight"),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "series": series(child.samples, fill),
    }


def limit_share(scenario: Scenario, metrics: Mapping[str, Any]) -> float | None:
    """The run's API requests per second as a share of the rate limit (None without one)."""
    if not scenario.rate_per_minute or not metrics["seconds"]:
        return None
    return round(metrics["requests"] / metrics["seconds"] / (scenario.rate_per_minute / 60), 4)


def steady_state(samples: Sequence[Sample], fill: float) -> dict[str, float] | None:
    """Records/s and 429s from ``WARMUP_S`` after the first results page to the last one."""
    first = next((s for s in samples if s.results_pages > 0), None)
    if first is None or not samples:
        return None
    final = samples[-1].results_pages
    last = next(s for s in samples if s.results_pages == final)
    begin = next((s for s in samples if s.t >= first.t + WARMUP_S), None)
    if begin is None or last.t - begin.t < 2 * SMOOTH_S:
        return None
    span = last.t - begin.t
    return {
        "from_s": begin.t,
        "to_s": last.t,
        "records_per_s": round((last.results_pages - begin.results_pages) * fill / span, 1),
        "requests_per_s": round((last.requests - begin.requests) / span, 3),
        "rate_limited_429": last.rate_limited - begin.rate_limited,
    }


def series(samples: Sequence[Sample], fill: float) -> list[tuple[float, float]]:
    """(t, records/s over a trailing window) for each sample.

    The window is ``SMOOTH_S``, or twice the mean time between results pages when that is
    longer: the SDK baseline fetches a page every few seconds and then spends them writing it,
    so a short window would draw bursts that are only the moments its pages were served."""
    window = smoothing_window(samples)
    points: list[tuple[float, float]] = []
    for i, sample in enumerate(samples):
        j = i
        while j > 0 and sample.t - samples[j - 1].t <= window + 1e-9:
            j -= 1
        span = sample.t - samples[j].t
        rate = (sample.results_pages - samples[j].results_pages) * fill / span if span else 0.0
        points.append((sample.t, round(rate, 1)))
    return points


def smoothing_window(samples: Sequence[Sample]) -> float:
    paging = [s for s in samples if s.results_pages > 0]
    if len(paging) < 2 or paging[-1].results_pages < 2:
        return SMOOTH_S
    per_page = (paging[-1].t - paging[0].t) / (paging[-1].results_pages - 1)
    return max(SMOOTH_S, 2 * per_page)


# -- the table ---------------------------------------------------------------------------------

HEADER = (
    "| scenario | contender | records | records/s | × SDK | of ceiling (steady) | "
    "req / 1k rec | 429s | polls (share) | CPU s / 100k | peak RSS MB | ids = truth |"
)


def markdown_table(runs: Sequence[Mapping[str, Any]], skipped: Mapping[str, str]) -> str:
    lines = [HEADER, "|" + " --- |" * 12]
    sdk_rate = {r["scenario"]: r["records_per_s"] for r in runs if r["contender"] == "sdk-baseline"}
    for run in runs:
        lines.append(_row(run, sdk_rate.get(run["scenario"])))
    for scenario, reason in skipped.items():
        lines.append(f"| {scenario} | sdk-baseline | {reason} |" + " |" * 10)
    return "\n".join(lines)


def _row(run: Mapping[str, Any], sdk_rate: float | None) -> str:
    versus = "1×" if run["contender"] == "sdk-baseline" else _ratio(run["records_per_s"], sdk_rate)
    ceiling = ""
    if run["ceiling_fraction"] is not None:
        steady = run["steady_ceiling_fraction"]
        ceiling = f"{run['ceiling_fraction']:.0%}" + (f" ({steady:.0%})" if steady else "")
    share = run["poll_share"]
    polls = f"{run['polls']} ({share:.1%})" if share is not None else str(run["polls"])
    cells = [
        run["scenario"],
        run["contender"],
        f"{run['records']:,}",
        f"{run['records_per_s']:,.0f}",
        versus,
        ceiling,
        _num(run["requests_per_1000_records"], ".2f"),
        str(run["rate_limited_429"]),
        polls,
        _num(run["cpu_s_per_100k"], ".1f"),
        f"{run['peak_rss_mb']:.0f}",
        run["correct"],
    ]
    return "| " + " | ".join(cells) + " |"


def floors_table(floors: Mapping[str, Any], exporter_cpu: Mapping[str, float]) -> str:
    """Each floor next to the exporter's CPU per record, net of start-up: the median of its
    runs, and the best of them (the floors themselves are a best of 3)."""
    runs = int(exporter_cpu.get("runs", 1))
    lines = [
        "| method (same records, same process each) | CPU µs / record | "
        f"exporter ÷ floor (median of {runs} runs) | exporter ÷ floor (best of {runs}) |",
        "| --- | --- | --- | --- |",
    ]
    median, best = exporter_cpu.get("net_us_per_record"), exporter_cpu.get("net_us_per_record_best")
    for name, result in floors["methods"].items():
        us = result["us_per_record"]
        lines.append(f"| {name} | {us:.1f} | {_ratio(median, us)} | {_ratio(best, us)} |")
    lines.append(
        f"| genesys-export, net of start-up (cpu scenario) | median {_num(median, '.1f')}, "
        f"best {_num(best, '.1f')} (whole process {_num(exporter_cpu.get('us_per_record'), '.1f')}"
        ") | | |"
    )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}×" if a and b else ""


def _num(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


# -- the plot ----------------------------------------------------------------------------------


def plot(runs: Sequence[Mapping[str, Any]], scenarios: Sequence[Scenario], path: Path) -> None:
    """records/s over time, one panel per scenario, one line per contender, the ceiling dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in scenarios if any(r["scenario"] == s.name for r in runs)]
    cols = 2
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.6 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, shown, strict=False):
        for run in (r for r in runs if r["scenario"] == scenario.name):
            points = run["series"]
            if points:  # zero rates (warm-up) are left out: the axis is logarithmic
                ax.plot(
                    [p[0] for p in points],
                    [p[1] if p[1] > 0 else float("nan") for p in points],
                    label=run["contender"],
                    linewidth=1.2,
                )
        if scenario.ceiling_records_per_s:
            ax.axhline(
                scenario.ceiling_records_per_s,
                linestyle="--",
                color="grey",
                label=f"ceiling ({scenario.rate_per_minute}/min × 1000)",
            )
        ax.set_yscale("log")
        ax.set_title(f"{scenario.name}: {scenario.conversations:,} conversations", fontsize=10)
        ax.set_xlabel("seconds since the contender started")
        ax.set_ylabel("records/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
