"""The command line: parse into settings, run, map errors to exit codes and one-paragraph messages.

This is the only module that prints, with ``exporter.report``: every command ends with a JSON
summary as the last line of stdout, usage errors included. Exit codes (``EXIT_CODES``): 0 done,
1 failed, 2 bad usage/config/input, 3 authentication or permission, 4 told to wait longer than
allowed or jobs stuck (run again later), 5 service unreachable, 75 another run holds the
folder, 130 stopped by a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from exporter import __version__, lineage, logs
from exporter.config import (
    LocalSettings,
    OutputSettings,
    Settings,
    fallback_output,
    load_local_settings,
    load_settings,
)
from exporter.datasets import DATASETS, Listing, Windowed, select
from exporter.errors import ConfigError, ExportError, Interrupted
from exporter.metrics import PUSH_PASSWORD
from exporter.preview import PlanReport, plan_only
from exporter.progress import choose_progress
from exporter.report import error_summary, print_summary, run_lines, with_metrics
from exporter.runner import ExportRequest, Stopper, Summary, export
from exporter.usage import Parser, RefuseSecret
from exporter.windows import show_instant, validate_range

if TYPE_CHECKING:  # the tables load DuckDB: imported when the command runs
    from exporter.tables import BuildSummary, Stop

log = logging.getLogger("exporter.cli")  # not __name__: "__main__" under python -m exporter.cli
PROG = "genesys-export"

# CLI flag -> config key; the config loader names the flag in its error messages.
FLAG_KEYS = {
    "region": "genesys.region",
    "api_url": "genesys.api_url",
    "login_url": "genesys.login_url",
    "client_id": "genesys.client_id",
    "out": "output.out_dir",
    "compression": "output.compression",
    "window": "jobs.window",
    "concurrency": "http.concurrency",
    "metrics_file": "output.metrics_file",
    "metrics_push": "output.metrics_push",
    "log_format": "output.log_format",
    "datasets": "export.datasets",
    "start": "export.start",
    "end": "export.end",
    "lookback": "export.lookback",
    "no_progress": "output.progress",  # stored negated: see _overrides
    "layout": "tables.layout",
    "memory_limit": "tables.memory_limit",
    "threads": "tables.threads",
}
EXIT_CODES = (
    "The last line of stdout is a JSON summary whose exit_code is the exit status (usage errors "
    "too). Exit codes: 0 done; 1 a window failed, or the output or the metrics file cannot be "
    "written; 2 bad usage, config or input; 3 authentication or permission; 4 the service asked "
    "to wait longer than http.retry_after_max_s, or its analytics jobs finished none within "
    "jobs.job_timeout_s (progress kept: run again later); 5 the service cannot be reached "
    "(progress kept); 75 another export holds the output folder (still running; the metrics "
    "file is left to it); 130 stopped by a signal (progress kept)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Bulk export of Genesys Cloud conversation details.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    exp = commands.add_parser(
        "export",
        help="export conversation details for a date range",
        description=(
            "Export the datasets: one file per UTC day (per --window), each window written "
            "once, complete windows skipped, unfinished ones resumed from their checkpoints. "
            "For a schedule: --since-last --start DAY (a new folder starts at DAY, every run "
            "after continues from the earliest window not complete). Records still going on "
            "(no end yet) are refreshed by id each run until they close, for "
            "jobs.open_horizon. A folder belongs to one org: another org's credentials are "
            "refused. SIGTERM or Ctrl-C keeps the work done (a second Ctrl-C stops at once; "
            "the next run resumes either way)."
        ),
        epilog=EXIT_CODES,
    )
    _add_connection_flags(exp)
    exp.add_argument(
        "--datasets",
        help="what to export: names from 'genesys-export datasets', comma-separated, "
        "'dimensions' (every snapshot) or 'all' (default: conversations)",
    )
    exp.add_argument(
        "--start",
        help="first day, YYYY-MM-DD or ISO datetime (UTC default); snapshots need none",
    )
    exp.add_argument(
        "--end", help="end, exclusive (default: now; a later end is cut to now with a note)"
    )
    exp.add_argument("--out", help="output folder (default from config: export)")
    exp.add_argument("--window", help="window size per job and file, e.g. 1d, 6h (default 1d)")
    exp.add_argument("--concurrency", help="concurrent requests (default 8)")
    exp.add_argument("--compression", help="none, gzip or zstd (default none)")
    exp.add_argument("--force", action="store_true", help="export complete windows again")
    exp.add_argument(
        "--since-last",
        action="store_true",
        help="start at the earliest window that is not complete (failed, provisional, "
        "unfinished or missing), for schedules; with --start, a new folder starts at --start "
        "and no run goes before it",
    )
    exp.add_argument(
        "--lookback",
        help="also export again the complete windows ending within this (e.g. 2d) before "
        "where --since-last starts, or before --end without it",
    )
    exp.add_argument(
        "--plan",
        action="store_true",
        help="print each window's action, conversations and requests; fetch no records",
    )
    exp.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    exp.add_argument(
        "--metrics-file",
        help="write Prometheus metrics here on every exit but a lock refusal (75), per dataset "
        "(node_exporter textfile)",
    )
    exp.add_argument(
        "--metrics-push",
        metavar="URL",
        help="push the same metrics to this Prometheus Pushgateway (job genesys_export, "
        "instance the output folder's absolute path); basic auth from "
        "GENESYS_EXPORT_PUSH_USERNAME and GENESYS_EXPORT_PUSH_PASSWORD; a failed push warns",
    )

    auth = commands.add_parser("auth", help="check credentials and permissions")
    auth_commands = auth.add_subparsers(dest="auth_command", required=True, parser_class=Parser)
    check = auth_commands.add_parser(
        "check",
        help="log in; probe each dataset's permission, the analytics limits and the retention",
        epilog="The last line of stdout is a JSON summary: status, exit_code, error and the "
        "report. Exit codes: 0 every dataset readable; 1 the service answered in a way no retry "
        "fixes; 2 bad usage, config or input; 3 a login or permission problem; 4 the service "
        "asked to wait longer than http.retry_after_max_s; 5 the service cannot be reached; 130 "
        "stopped by a signal.",
    )
    _add_connection_flags(check)
    check.add_argument("--datasets", help="datasets to probe (default: as for export)")
    check.add_argument("--start", help="warn if this day is older than the org's retention")
    check.add_argument(
        "--json",
        action="store_true",
        help="print only the JSON summary (the whole report), no table",
    )

    commands.add_parser("datasets", help="list every dataset: endpoint, kind, permission")
    _add_tables_parser(commands)

    sandbox = commands.add_parser("sandbox", help="run the bundled Genesys Cloud sandbox")
    from genesys_sandbox import cli as sandbox_cli

    sandbox_cli.add_arguments(sandbox)
    return parser


def _add_tables_parser(commands: Any) -> None:
    tables = commands.add_parser(
        "tables",
        help="build a DuckDB database and Parquet files from an export folder",
        description=(
            "Build DIR/genesys.duckdb and DIR/tables/<table>/ (Parquet, zstd) from the export "
            "in DIR. Only windows whose file changed since the last build are built again; a "
            "window the manifest no longer lists keeps its rows while its file is on disk; a "
            "killed build leaves the previous database and Parquet files as they were."
        ),
        epilog="exit codes: 0 built or up to date; 1 the tables cannot be written; 2 bad "
        "usage, no manifest, a file that differs from the manifest (export it again), or a "
        "build from nothing while day files the manifest does not list are on disk; 75 an "
        "export holds the folder, or another process has genesys.duckdb open for writing; 130 "
        "stopped by a signal (the database as the last build left it). The last line of stdout "
        "is a JSON summary on every exit.",
    )
    tables.add_argument("--config", type=Path, help="config file (default ./config.toml)")
    tables.add_argument("--out", help="the export folder (default from config: export)")
    _add_table_flags(tables)
    tables.add_argument("--full", action="store_true", help="build every window again")
    _add_log_flags(tables)


def _add_table_flags(parser: argparse.ArgumentParser) -> None:
    """The build's flags, each also a [tables] key."""
    parser.add_argument(
        "--layout",
        choices=("flat", "hive"),
        help="flat: tables/<table>/<day>.parquet; hive: tables/<table>/date=<day>/part.parquet "
        "(default flat)",
    )
    parser.add_argument(
        "--memory-limit",
        help="the build's memory bound, its peak RSS (default 512MB); DuckDB spills to disk "
        "beyond its share",
    )
    parser.add_argument(
        "--threads",
        help="DuckDB's threads (default: the cores available, as many as --memory-limit "
        "allows: 144MB a thread)",
    )


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="config file (default ./config.toml)")
    parser.add_argument("--region", help="Genesys Cloud region, e.g. us-east-1 or mypurecloud.ie")
    parser.add_argument("--api-url", help="explicit API base URL (gateway, proxy, sandbox)")
    parser.add_argument("--login-url", help="explicit login base URL (default derived)")
    parser.add_argument(
        "--client-id",
        help="OAuth client id (the secret comes from the "
        "environment or the config file, never a flag)",
    )
    # Refused with a message that never repeats the value (a flag close to it on any command
    # gets the same message: see exporter.usage).
    parser.add_argument("--client-secret", help=argparse.SUPPRESS, action=RefuseSecret)
    _add_log_flags(parser)


def _add_log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging: jobs submitted and their states, windows committed, pauses and why",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="stderr's lines: text for people (default), or json, one object a line for Loki "
        "or Elasticsearch (also output.log_format)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    logs.setup()  # usage errors come before the flags that choose the format
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as exc:  # a usage error: it names flags, never a value
        return _fail(exc)
    _setup_logging(args)
    try:
        if args.command == "sandbox":
            from genesys_sandbox import cli as sandbox_cli

            return sandbox_cli.run(args)
        if args.command == "datasets":
            _print_datasets()
            return 0
        if args.command == "tables":
            return _tables_command(args)
        if args.command == "auth":
            return _auth_command(args)
        return _export_command(args)
    except ExportError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return _fail(Interrupted("Stopped by a signal."))


def _load(args: argparse.Namespace) -> Settings:
    settings, warnings = load_settings(**_layers(args))
    for warning in warnings:
        log.warning("%s", warning)
    return settings


def _load_local(args: argparse.Namespace) -> LocalSettings:
    settings, warnings = load_local_settings(**_layers(args))
    for warning in warnings:
        log.warning("%s", warning)
    return settings


def _layers(args: argparse.Namespace) -> dict[str, Any]:
    """What the settings loaders take: the config file, the environment, and the flags given
    (each a config key; a switch such as --no-progress only when set)."""
    overrides: dict[str, object] = {}
    for name, value in vars(args).items():
        if name not in FLAG_KEYS or value is None or value is False:
            continue
        overrides[FLAG_KEYS[name]] = False if name == "no_progress" else value
    return {
        "config_path": args.config,
        "env": os.environ,
        "overrides": overrides,
        "cwd": Path.cwd(),
        "flag_names": {key: "--" + dest.replace("_", "-") for dest, key in FLAG_KEYS.items()},
    }


def _export_command(args: argparse.Namespace) -> int:
    """Export; then write the metrics, then print the summary that says how that went."""
    settings: Settings | None = None
    ran = False
    events: lineage.LineageRun | None = None
    try:
        settings = _load(args)
        _redact(settings)
        with _maybe_sandbox(settings) as live:
            request = _request(args, live)
            if args.plan:
                _print_plan(asyncio.run(plan_only(live, request)))
                return 0
            names = [dataset.name for dataset in request.datasets]
            events = lineage.begin("export", live.output, datasets=names)
            gc.freeze()  # the modules and settings live all run: spare the collector walking them
            summary = asyncio.run(_export_with_signals(live, request, live.output.progress))
            ran = True
    except ExportError as exc:
        summary = Summary(exc.summary_status, exc.exit_code, error=str(exc))
    except KeyboardInterrupt:
        stopped = "Stopped by a signal before the export began; nothing to keep."
        summary = Summary(Interrupted.summary_status, Interrupted.exit_code, error=stopped)
    if not args.plan:
        summary = with_metrics(summary, _output(args, settings), os.environ)
    if events is not None:
        events.finish_export(summary)
    _print_summary(summary, settings.output.out_dir if settings and ran else None)
    return summary.exit_code


def _output(args: argparse.Namespace, settings: Settings | None) -> OutputSettings:
    """The settings' [output]; if they did not load, the flags', or the config file's as far
    as it reads."""
    if settings is not None:
        return settings.output
    flags = {"out_dir": args.out, "metrics_file": args.metrics_file,
             "metrics_push": args.metrics_push}  # fmt: skip
    return fallback_output(config_path=args.config, flags=flags, cwd=Path.cwd())


def _request(args: argparse.Namespace, settings: Settings) -> ExportRequest:
    now = datetime.now(UTC)
    chosen = settings.export
    datasets = select(chosen.datasets)
    end = chosen.end or now
    if end > now:
        _say(f"note: --end {show_instant(end)} is in the future; exporting up to now "
             f"({now:%Y-%m-%dT%H:%M:%SZ}).")  # fmt: skip
        end = now
    windowed = any(isinstance(d, Windowed) for d in datasets)
    if chosen.start is None and windowed and not args.since_last:
        raise ConfigError(
            "No --start given; add --start YYYY-MM-DD, or --since-last to continue "
            "from the earliest window that is not complete (snapshots alone need neither)."
        )
    if chosen.start is not None:
        validate_range(chosen.start, end, now=now)
    return ExportRequest(chosen.start, end, force=args.force, lookback=chosen.lookback,
                         since_last=args.since_last, datasets=datasets)  # fmt: skip


async def _export_with_signals(
    settings: Settings, request: ExportRequest, progress: bool
) -> Summary:
    loop = asyncio.get_running_loop()
    stopper = Stopper()
    task = asyncio.current_task()
    assert task is not None
    stopper.attach(task)

    def on_signal(name: str) -> None:
        if stopper.requested:  # a second signal: stop now; the next run resumes anyway
            _say(f"second signal ({name}): stopping at once; the next run resumes from the "
                 "checkpoints.")  # fmt: skip
            os._exit(130)
        _say(f"{name}: finishing up (checkpointing open windows); a second signal stops at once.")
        stopper.stop(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        return await export(
            settings, request, stopper=stopper,
            progress=choose_progress(progress, bar=settings.output.log_format == "text"),
            estimate=progress,
        )  # fmt: skip
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _auth_command(args: argparse.Namespace) -> int:
    from exporter.probe import check_access

    settings = _load(args)
    _redact(settings)
    with _maybe_sandbox(settings) as live:
        report = asyncio.run(
            check_access(live, select(live.export.datasets), start=live.export.start)
        )
    if not args.json:
        for line in report.lines():
            print(line)
    return print_summary(report.as_json())


def _tables_command(args: argparse.Namespace) -> int:
    from exporter.tables import Stop, TablesRequest, build_tables

    stop = Stop()
    events: lineage.LineageRun | None = None
    try:
        settings = _load_local(args)
        request = TablesRequest(
            out_dir=settings.output.out_dir,
            layout=settings.tables.layout,
            memory_limit=settings.tables.memory_limit,
            threads=settings.tables.threads or None,
            full=args.full,
        )
        events = lineage.begin("tables", settings.output)
        with _stopping_on_signals(stop):
            summary = build_tables(request, stop=stop)
    except ExportError as exc:
        if events is not None:
            events.finish_tables(exc)
        return _tables_failed(exc)
    events.finish_tables(summary)
    _report_tables(summary, request.memory_limit)
    print(orjson.dumps(summary.as_json()).decode(), flush=True)
    return 0


# As the export's summary names them; any other exit code is "error".
def _tables_failed(exc: ExportError) -> int:
    """One line on stderr, and the JSON summary as the last line of stdout, as on success."""
    _say(f"{'stopped' if isinstance(exc, Interrupted) else 'error'}: {exc}")
    return print_summary(error_summary(exc))


@contextlib.contextmanager
def _stopping_on_signals(stop: Stop) -> Iterator[None]:
    """SIGTERM (a CronJob's grace period, systemd, timeout) and Ctrl-C ask the build to stop.
    The handler raises nothing: a KeyboardInterrupt raised inside a DuckDB call would come
    out of it as another exception, on whichever thread ran the query."""

    def on_signal(signum: int, frame: object) -> None:
        stop.request()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: not set from Python; nothing to put back
                signal.signal(sig, handler)


def _report_tables(summary: BuildSummary, memory_limit: str) -> None:
    for label in summary.lenient:
        _say(f"note: {label} has a field whose type differs from its declaration; read "
             "leniently (values that do not fit are NULL).")  # fmt: skip
    if summary.in_flight:
        _say(f"kept as last built, being exported again: {', '.join(summary.in_flight)}")
    if summary.kept_unlisted:
        kept = summary.kept_unlisted
        more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
        _say(
            f"warning: kept {len(kept)} window(s) the manifest no longer lists ({kept[0]}"
            f"{more}): their day files are still on disk. Export those days again so the "
            "manifest records them, or delete their files to drop them from the tables."
        )
    if summary.status == "up-to-date":
        _say(f"up to date: no window changed since the last build ({summary.database}).")
        return
    rate = summary.conversations / summary.seconds if summary.seconds else 0.0
    removed = f"; removed {', '.join(summary.removed)}" if summary.removed else ""
    _say(
        f"built {len(summary.built)} windows ({', '.join(summary.built)}){removed}: "
        f"{summary.records:,} records ({summary.conversations:,} conversations, "
        f"{rate:,.0f}/s) in {summary.seconds:.1f} s at {summary.threads} "
        f"thread{'s' if summary.threads != 1 else ''} within {memory_limit}; "
        f"{summary.database} and {summary.parquet_files} Parquet files"
    )


def _print_datasets() -> None:
    print(f"{'dataset':<22} {'kind':<9} {'permission':<36} endpoint")
    for dataset in DATASETS.values():
        if isinstance(dataset, Listing):
            kind, endpoint = "snapshot", dataset.endpoint
        else:
            kind, endpoint = "windowed", f"POST {dataset.api.jobs} (+ {dataset.api.query})"
        print(f"{dataset.name:<22} {kind:<9} {dataset.permission or '(none declared)':<36} "
              f"{endpoint}")  # fmt: skip
        print(f"{'':<22} {dataset.summary}")


@contextlib.contextmanager
def _maybe_sandbox(settings: Settings) -> Iterator[Settings]:
    """With api_url = "sandbox", run the bundled sandbox for the duration of the command."""
    if not settings.connection.sandbox:
        yield settings
        return
    from genesys_sandbox import DatasetSpec, SandboxSettings, run_sandbox_in_thread

    opts = settings.sandbox
    try:
        dataset = DatasetSpec(
            conversations=opts.conversations, start=opts.start, days=opts.days, seed=opts.seed
        )
    except ValueError as exc:  # the sandbox speaks plain ValueErrors; [sandbox] is ours to name
        raise ConfigError(f"config.toml [sandbox]: {exc}") from None
    sandbox_settings = SandboxSettings(
        dataset=dataset,
        client_id=settings.connection.client_id,
        client_secret=settings.connection.client_secret,
        latency_ms=opts.latency_ms,
        rate_per_minute=opts.rate_per_minute,
        token_ttl_s=opts.token_ttl_s,
        job_delay_s=opts.job_delay_s,
    )
    with run_sandbox_in_thread(sandbox_settings) as sandbox:
        _say(
            f"using the bundled SANDBOX at {sandbox.url}: demo data ({opts.conversations} "
            f"conversations from {opts.start:%Y-%m-%d}, {opts.days} days), not a real org. "
            "Set a region and credentials in config.toml to export from Genesys Cloud."
        )
        connection = dataclasses.replace(
            settings.connection, api_url=sandbox.url, login_url=sandbox.url
        )
        yield dataclasses.replace(settings, connection=connection)


def _print_plan(report: PlanReport) -> None:
    print(f"data availability (watermark): {report.watermark or 'n/a'}")
    print(f"{'dataset':<21} {'window':<36} {'action':<8} {'source':<7} {'records':>8} "
          f"{'requests':>8}  reason")  # fmt: skip
    for line in report.lines:
        count = "" if line.conversations is None else f"{line.conversations}"
        print(
            f"{line.dataset:<21} {line.name:<36} {line.action:<8} {line.source:<7} {count:>8} "
            f"{line.requests:>8}  {line.reason}"
        )
    pace = f"{report.per_minute}/min" if report.per_minute else "no announced limit"
    minutes = f"{report.minutes:.1f} min" if report.minutes is not None else "n/a"
    to_fetch = sum(line.action != "skip" for line in report.lines)
    print(
        f"estimate: {len(report.lines)} windows, {to_fetch} to fetch in {report.jobs} jobs; "
        f"{report.requests} requests, {minutes} at {pace}"
    )
    print(
        orjson.dumps(
            {
                "windows": len(report.lines),
                "to_fetch": to_fetch,
                "jobs": report.jobs,
                "requests": report.requests,
                "minutes": report.minutes,
                "per_minute": report.per_minute,
            }
        ).decode()
    )


def _print_summary(summary: Summary, out_dir: Path | None) -> None:
    """The error, then (for a run that took place, writing ``out_dir``) what it did, on
    stderr; the JSON summary as stdout's last line."""
    if summary.error:
        _say(f"error: {summary.error}")
    for line in run_lines(summary, out_dir) if out_dir is not None else []:
        _say(line)
    print_summary(summary.as_json())


def _fail(exc: ExportError) -> int:
    """Say what ended the command, then its JSON summary; returns its exit code."""
    _say(f"error: {exc}")
    return print_summary(error_summary(exc))


def _say(message: str) -> None:
    logs.say(message)


def _setup_logging(args: argparse.Namespace) -> None:
    """-v and the log format: --log-format, else the config file's output.log_format."""
    chosen = getattr(args, "log_format", None)
    if chosen is None and hasattr(args, "config"):
        chosen = fallback_output(config_path=args.config, flags={}, cwd=Path.cwd()).log_format
    logs.setup(verbose=getattr(args, "verbose", False), json=chosen == "json")


def _redact(settings: Settings) -> None:
    """No line from now on shows the client secret or the Pushgateway's password."""
    logs.redact([settings.connection.client_secret, os.environ.get(PUSH_PASSWORD, "")])


if __name__ == "__main__":
    sys.exit(main())
