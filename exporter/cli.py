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
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from exporter import __version__, api, lineage, logs
from exporter.bundled import serving_sandbox
from exporter.config import (
    OPTION_FLAGS,
    OPTIONS,
    PUSH_PASSWORD,
    LocalSettings,
    OutputSettings,
    Settings,
    fallback_output,
    load_local_settings,
    load_settings,
    option_overrides,
)
from exporter.datasets import DATASETS, select
from exporter.engine.kinds import kind_of
from exporter.errors import ConfigError, ExportError, Interrupted
from exporter.forget import describe as describe_forget
from exporter.preview import PlanReport, plan_only
from exporter.progress import Progress, choose_progress
from exporter.publish.request import FORMATS
from exporter.report import error_summary, print_summary, with_metrics
from exporter.signals import stopping_build_on_signals
from exporter.summary import Summary
from exporter.usage import Parser, RefuseSecret

if TYPE_CHECKING:  # the tables load DuckDB: imported when the command runs
    from exporter.prune import PruneSummary
    from exporter.tables import BuildSummary

log = logging.getLogger("exporter.cli")  # not __name__: "__main__" under python -m exporter.cli
PROG = "genesys-export"

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
    _add_export_flags(exp)
    exp.add_argument("--force", action="store_true", help="export complete windows again")
    exp.add_argument(
        "--since-last",
        action="store_true",
        help="start at the earliest window that is not complete (failed, provisional, "
        "unfinished or missing), for schedules; with --start, a new folder starts at --start "
        "and no run goes before it",
    )
    exp.add_argument(
        "--plan",
        action="store_true",
        help="print each window's action, conversations and requests; fetch no records",
    )
    _add_run_parser(commands)

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
    _add_prune_parser(commands)
    _add_publish_parser(commands)
    _add_forget_parser(commands)

    # Listed for --help only: main() hands `sandbox ...` to the sandbox's own parser, so no
    # other command pays for importing the sandbox.
    commands.add_parser("sandbox", help="run the bundled Genesys Cloud sandbox (see its --help)")
    return parser


def _add_export_flags(parser: argparse.ArgumentParser) -> None:
    """The export's flags, each also a config key; ``run`` takes them too."""
    parser.add_argument(
        "--datasets",
        help="what to export: names from 'genesys-export datasets', comma-separated, "
        "'dimensions' (every snapshot) or 'all' (default: conversations)",
    )
    parser.add_argument(
        "--start",
        help="first day, YYYY-MM-DD or ISO datetime (UTC default); snapshots need none",
    )
    parser.add_argument(
        "--end", help="end, exclusive (default: now; a later end is cut to now with a note)"
    )
    parser.add_argument("--out", help="output folder (default from config: export)")
    parser.add_argument("--window", help="window size per job and file, e.g. 1d, 6h (default 1d)")
    parser.add_argument("--concurrency", help="concurrent requests (default 8)")
    parser.add_argument("--compression", help="none, gzip or zstd (default none)")
    parser.add_argument(
        "--lookback",
        help="also export again the complete windows ending within this (e.g. 2d) before "
        "where --since-last starts, or before --end without it",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    parser.add_argument(
        "--metrics-file",
        help="write Prometheus metrics here on every exit but a lock refusal (75), per dataset "
        "(node_exporter textfile)",
    )
    parser.add_argument(
        "--metrics-push",
        metavar="URL",
        help="push the same metrics to this Prometheus Pushgateway (job genesys_export, "
        "instance the output folder's absolute path); basic auth from "
        "GENESYS_EXPORT_PUSH_USERNAME and GENESYS_EXPORT_PUSH_PASSWORD; a failed push warns",
    )
    parser.add_argument(
        "--privacy",
        help="none, standard or strict: what happens to customers' personal data before it is "
        "written (README, Privacy; default none); the key comes from "
        "GENESYS_EXPORT_PRIVACY_KEY or [privacy] key_file, never a flag",
    )
    parser.add_argument(
        "--privacy-key", help=argparse.SUPPRESS, action=RefuseSecret, refusal=PRIVACY_KEY_REFUSAL
    )


def _add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="export, forget, prune, build the tables, publish: the one command a schedule calls",
        description=(
            "Export the configured datasets as a schedule does (--since-last: a new folder "
            "starts at --start, every run after continues from the earliest window not "
            "complete), apply the org's new GDPR deletions (--forget, when set), prune what is "
            "older than --older-than (when set), build the tables "
            "(incrementally), then publish them (when --format or [publish] says where), "
            "under one lock. Every flag is also a config.toml key, so a schedule's command can "
            "be just `genesys-export run`. "
            "The last line of stdout is one JSON summary with a section per step; a failing "
            "step is named there. SIGTERM or Ctrl-C stops the step running and keeps its work "
            "(exit 130)."
        ),
        epilog="Exit codes: the worst step's, from the worst: 130 stopped by a signal; 2 bad "
        "usage, config or input; 3 authentication or permission; 1 a window, snapshot, the "
        "tables or the publish failed, or the metrics file cannot be written; 5 the service "
        "or the storage cannot be reached; 4 run again later (a long Retry-After, a stuck "
        "jobs service); 75 another run holds the folder; 0 done. Progress is kept on every "
        "exit.",
    )
    _add_connection_flags(run)
    _add_export_flags(run)
    run.add_argument(
        "--older-than",
        help="then prune the windows that ended longer ago than this, e.g. 400d (default: "
        "[retention] keep; unset, nothing is pruned)",
    )
    run.add_argument(
        "--forget",
        action="store_true",
        default=None,
        help="after the export, apply the org's new completed GDPR deletions, as "
        "genesys-export forget (also [forget] enabled)",
    )
    _add_table_flags(run)
    _add_publish_flags(run)


def _add_forget_parser(commands: Any) -> None:
    forget = commands.add_parser(
        "forget",
        help="erase the subjects of the org's completed GDPR deletions from an export folder",
        description=(
            "Read the org's GDPR requests (permission gdpr:request:view), and erase every "
            "value of each completed deletion's subject (names, phone numbers, e-mail and "
            "postal addresses, handles, ids) not applied yet from every file of DIR: a file "
            "holding one is written again atomically, the manifest gets its new size and "
            "sha256, and DIR/forgotten.json records the request (id, when, how many records "
            "and files; never a value). From then on every export into DIR erases the "
            "deletions' subjects before writing, so a day exported again keeps them "
            "forgotten. The tables take the changes at their next build, the lake at the next "
            "publish. Killed at any point, the next forget (or export) finishes the job."
        ),
        epilog="exit codes: 0 applied, or nothing new; 1 a file cannot be written or the "
        "service answered in a way no retry fixes; 2 bad usage, config or input (no export "
        "folder, another org's folder, a privacy key that is missing or not the folder's, a "
        "file that differs from the manifest); 3 a login or permission problem; 5 the service "
        "cannot be reached; 75 another run holds the folder; 130 stopped by a signal before "
        "any file was replaced. The last line of stdout is a JSON summary on every exit.",
    )
    _add_connection_flags(forget)
    forget.add_argument("--out", help="the export folder (default from config: export)")


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


def _add_prune_parser(commands: Any) -> None:
    prune = commands.add_parser(
        "prune",
        help="remove windows older than a duration: files, manifest records, table rows",
        description=(
            "Remove every window of DIR that ended more than --older-than ago (by UTC "
            "midnight), whatever its status, with its files and its records in the manifest; "
            "snapshot datasets keep their newest retention.keep_snapshots days. The manifest "
            "records what was pruned, so no export goes back before it. If DIR holds "
            "genesys.duckdb, the tables are then brought up to date (the pruned days' rows "
            "and Parquet files go). A duration under a day, jobs.window, export.lookback or "
            "jobs.open_horizon is refused, and so is one that would remove every window. "
            "Killed at any point, the next prune finishes the job."
        ),
        epilog="exit codes: 0 pruned, nothing to prune, or listed (--dry-run); 1 the folder "
        "or the tables cannot be written; 2 bad usage, no manifest, or a refused duration; 75 "
        "another run holds the folder, or another process has genesys.duckdb open for "
        "writing; 130 stopped by a signal (what was pruned stays pruned; the tables as the "
        "last build left them). The last line of stdout is a JSON summary on every exit, with "
        "a prune and a tables section.",
    )
    prune.add_argument("--config", type=Path, help="config file (default ./config.toml)")
    prune.add_argument("--out", help="the export folder (default from config: export)")
    prune.add_argument(
        "--older-than",
        help="remove windows that ended longer ago than this, e.g. 400d (default: keep under "
        "[retention])",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="list what would be removed; remove nothing"
    )
    _add_table_flags(prune)
    _add_log_flags(prune)


def _add_publish_parser(commands: Any) -> None:
    publish = commands.add_parser(
        "publish",
        help="publish the tables to object storage: Parquet, Delta or Iceberg, exactly once",
        description=(
            "Publish the tables genesys-export tables built in DIR: --format parquet or delta "
            "under --to s3://BUCKET/PREFIX (gs://, az://), or --format iceberg into "
            "--namespace of the pyiceberg catalog --catalog. Only the days whose content "
            "changed since the last publish to that destination are written, each replaced "
            "whole in one commit that carries a marker of what it holds; nothing changed, "
            "nothing written. Credentials and endpoint come from the environment (AWS_*, "
            "GOOGLE_*, AZURE_*; the catalog from .pyiceberg.yaml or PYICEBERG_CATALOG__*). "
            "Killed at any point, the next publish finishes the job."
        ),
        epilog="exit codes: 0 published, or up to date; 1 a read or write failed; 2 bad "
        "usage or config, no tables in DIR, no credentials, no such bucket or catalog; 3 the "
        "credentials were refused; 5 the storage or the catalog cannot be reached; 75 another "
        "run holds the folder, or other publishes kept committing the same tables; 130 "
        "stopped by a signal (each day as its last commit left it). The last line of stdout "
        "is a JSON summary on every exit.",
    )
    publish.add_argument("--config", type=Path, help="config file (default ./config.toml)")
    publish.add_argument("--out", help="the export folder (default from config: export)")
    _add_publish_flags(publish)
    _add_log_flags(publish)


def _add_publish_flags(parser: argparse.ArgumentParser) -> None:
    """Where the tables go, each also a [publish] key."""
    parser.add_argument(
        "--format", choices=FORMATS, help="parquet, delta or iceberg (default from [publish])"
    )
    parser.add_argument(
        "--to", help="parquet and delta: where, s3://BUCKET/PREFIX, gs://... or az://..."
    )
    parser.add_argument(
        "--catalog",
        help="iceberg: the pyiceberg catalog's name (.pyiceberg.yaml, PYICEBERG_CATALOG__*)",
    )
    parser.add_argument("--namespace", help="iceberg: the tables' namespace (default genesys)")
    parser.add_argument(
        "--keep-history",
        action="store_true",
        default=None,
        help="delta and iceberg: keep the versions from before a forget (by default a "
        "publish after a forget drops them, so no copy keeps what was forgotten)",
    )


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
    # For publish, unless told otherwise: Arrow on the C library's allocator (its default,
    # mimalloc, keeps freed memory), and pyiceberg writing with 2 threads (not cores + 4): an
    # Iceberg publish of 1,000,000 conversations peaked at 483 MB with both, 521 MB with
    # pyiceberg's threads, about 100 MB more again on mimalloc; no slower. Both are read
    # when first used, and nothing has used them yet.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    os.environ.setdefault("PYICEBERG_MAX_WORKERS", "2")
    logs.setup()  # usage errors come before the flags that choose the format
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["sandbox"]:
        return _sandbox_command(given[1:])
    try:
        args = build_parser().parse_args(given)
    except ConfigError as exc:  # a usage error: it names flags, never a value
        return _fail(exc)
    _setup_logging(args)
    try:
        if args.command == "datasets":
            _print_datasets()
            return 0
        if args.command == "tables":
            return _tables_command(args)
        if args.command == "prune":
            return _prune_command(args)
        if args.command == "publish":
            return _publish_command(args)
        if args.command == "forget":
            return _forget_command(args)
        if args.command == "auth":
            return _auth_command(args)
        if args.command == "run":
            return _run_command(args)
        return _export_command(args)
    except ExportError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return _fail(Interrupted("Stopped by a signal."))


def _sandbox_command(argv: list[str]) -> int:
    from genesys_sandbox import cli as sandbox_cli

    parser = Parser(prog=f"{PROG} sandbox", description="Run the bundled Genesys Cloud sandbox.")
    sandbox_cli.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except ConfigError as exc:  # a usage error: it names flags, never a value
        return _fail(exc)
    return sandbox_cli.run(args)


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
    (each a config key; --no-progress sets output.progress)."""
    given = {name: v for name, v in vars(args).items() if name in OPTIONS and v is not None}
    overrides = option_overrides(given)
    if getattr(args, "no_progress", False):
        overrides["output.progress"] = False
    return {
        "config_path": args.config,
        "env": os.environ,
        "overrides": overrides,
        "cwd": Path.cwd(),
        "flag_names": {**OPTION_FLAGS, "output.progress": "--no-progress"},
    }


def _export_command(args: argparse.Namespace) -> int:
    """Export; then write the metrics, then print the summary that says how that went."""
    settings: Settings | None = None
    events: lineage.LineageRun | None = None
    try:
        settings = _load(args)
        _redact(settings)
        if args.plan:
            return _plan(settings, args)
        events = lineage.begin("export", settings.output, datasets=_dataset_names(settings))
        gc.freeze()  # the modules and settings live all run: spare the collector walking them
        summary = api.export_now(
            settings, since_last=args.since_last, force=args.force, signals=True,
            progress=_progress(settings),
        )  # fmt: skip
    except ExportError as exc:
        summary = Summary(exc.summary_status, exc.exit_code, error=str(exc))
    except KeyboardInterrupt:
        stopped = "Stopped by a signal before the export began; nothing to keep."
        summary = Summary(Interrupted.summary_status, Interrupted.exit_code, error=stopped)
    summary = with_metrics(summary, _output(args, settings), os.environ)
    if events is not None:
        events.finish_export(summary)
    ran = settings is not None and summary.status != ConfigError.summary_status
    _print_summary(summary, settings.output.out_dir if settings and ran else None)
    return summary.exit_code


def _run_command(args: argparse.Namespace) -> int:
    """Export, prune, build the tables, publish; the metrics; each step's account, then one
    summary."""
    try:
        settings = _load(args)
    except ExportError as exc:  # the settings did not load: no step can begin
        failed = Summary(exc.summary_status, exc.exit_code, error=str(exc))
        failed = with_metrics(failed, _output(args, None), os.environ)
        _say(f"error: {failed.error}")
        return print_summary(
            {"status": failed.status, "exit_code": failed.exit_code, "error": failed.error}
        )
    _redact(settings)
    events = lineage.begin("run", settings.output, datasets=_dataset_names(settings))
    gc.freeze()  # the modules and settings live all run: spare the collector walking them
    summary = api.run_now(settings, progress=_progress(settings), signals=True)
    events.finish_export(api.run_verdict(summary))
    if summary.export is not None and summary.export.status != ConfigError.summary_status:
        for line in summary.export.lines(settings.output.out_dir):
            _say(f"export: {line}")
    if summary.tables is not None:
        _report_tables(summary.tables, settings.tables.memory_limit)
    if summary.published is not None:
        _say(f"publish: {summary.published.line()}")
    if summary.error:
        _say(f"error: {summary.error}")
    return print_summary(summary.as_json())


def _progress(settings: Settings) -> Progress | None:
    """A bar on a terminal (never beside JSON logs), log lines otherwise; None when off."""
    if not settings.output.progress:
        return None
    return choose_progress(True, bar=settings.output.log_format == "text")


def _dataset_names(settings: Settings) -> list[str]:
    try:
        return [dataset.name for dataset in select(settings.export.datasets)]
    except ConfigError:
        return []


def _plan(settings: Settings, args: argparse.Namespace) -> int:
    """--plan: what the export would do, fetching no records."""
    with serving_sandbox(settings) as live:
        request = api.export_request(live, since_last=args.since_last, force=args.force)
        _print_plan(asyncio.run(plan_only(live, request)))
    return 0


def _output(args: argparse.Namespace, settings: Settings | None) -> OutputSettings:
    """The settings' [output]; if they did not load, the flags', or the config file's as far
    as it reads."""
    if settings is not None:
        return settings.output
    flags = {"out_dir": args.out, "metrics_file": args.metrics_file,
             "metrics_push": args.metrics_push}  # fmt: skip
    return fallback_output(config_path=args.config, flags=flags, cwd=Path.cwd())


def _auth_command(args: argparse.Namespace) -> int:
    from exporter.probe import check_access

    settings = _load(args)
    _redact(settings)
    with serving_sandbox(settings) as live:
        report = asyncio.run(
            check_access(live, select(live.export.datasets), start=live.export.start)
        )
    if not args.json:
        for line in report.lines():
            print(line)
    return print_summary(report.as_json())


def _tables_command(args: argparse.Namespace) -> int:
    from exporter.tables import Stop, build_tables

    stop = Stop()
    events: lineage.LineageRun | None = None
    try:
        settings = _load_local(args)
        request = api.tables_request(settings, full=args.full)
        events = lineage.begin("tables", settings.output)
        with stopping_build_on_signals(stop.request):
            summary = build_tables(request, stop=stop)
    except ExportError as exc:
        if events is not None:
            events.finish_tables(exc)
        return _tables_failed(exc)
    events.finish_tables(summary)
    _report_tables(summary, request.memory_limit)
    print(orjson.dumps(summary.as_json()).decode(), flush=True)
    return 0


def _prune_command(args: argparse.Namespace) -> int:
    """Prune under the folder's lock, then bring the tables up to date if the folder has
    any; one stderr line for each, and a summary with a section for each, on every exit."""
    done = api.Pruned()
    try:
        settings = _load_local(args)
        done.memory_limit = settings.tables.memory_limit
        api.prune_now(settings, dry_run=args.dry_run, done=done, signals=True)
    except ExportError as exc:
        done.error = exc
    return _report_prune(done)


def _report_prune(done: api.Pruned) -> int:
    """A dry run lists what would go on stdout; stderr says what was pruned and built, then
    the error if any; the summary is the last line."""
    pruned, built, error = done.pruned, done.built, done.error
    if pruned is not None:
        _say_pruned(pruned)
    if built is not None:
        _report_tables(built, done.memory_limit)
    sections = done.sections()
    if error is None:
        return print_summary({"status": "ok", "exit_code": 0, **sections})
    if pruned is not None and pruned.status == "pruned":
        _say("note: what was pruned stays pruned; the tables lose those days' rows at the "
             "next genesys-export tables (or run).")  # fmt: skip
    _say(f"{'stopped' if isinstance(error, Interrupted) else 'error'}: {error}")
    return print_summary({**error_summary(error), **sections})


def _publish_command(args: argparse.Namespace) -> int:
    """Publish under the folder's lock: one stderr line saying what was written (or that
    nothing changed), the summary last; one error line and the summary on a failure."""
    try:
        summary = api.publish_now(_load_local(args), signals=True)
    except ExportError as exc:
        return _tables_failed(exc)
    _say(summary.line())
    return print_summary(summary.as_json())


def _forget_command(args: argparse.Namespace) -> int:
    """Forget under the folder's lock: one stderr line saying what was applied, the summary
    last; one error line and the summary on a failure."""
    try:
        settings = _load(args)
        _redact(settings)
        summary = api.forget_now(settings, signals=True)
    except ExportError as exc:
        return _tables_failed(exc)
    _say(describe_forget(summary))
    return print_summary(summary.as_json())


def _say_pruned(summary: PruneSummary) -> None:
    for line in summary.listed():
        print(line)
    _say(summary.line())


# As the export's summary names them; any other exit code is "error".
def _tables_failed(exc: ExportError) -> int:
    """One line on stderr, and the JSON summary as the last line of stdout, as on success."""
    _say(f"{'stopped' if isinstance(exc, Interrupted) else 'error'}: {exc}")
    return print_summary(error_summary(exc))


def _report_tables(summary: BuildSummary, memory_limit: str) -> None:
    for line in summary.lines(memory_limit):
        _say(line)


def _print_datasets() -> None:
    print(f"{'dataset':<24} {'kind':<9} {'permission':<36} endpoint")
    for dataset in DATASETS.values():
        kind = kind_of(dataset)
        print(f"{dataset.name:<24} {kind.word:<9} {dataset.permission or '(none declared)':<36} "
              f"{kind.endpoint(dataset)}")  # fmt: skip
        print(f"{'':<24} {dataset.summary}")


def _print_plan(report: PlanReport) -> None:
    for line in report.text():
        print(line)
    print(orjson.dumps(report.as_json()).decode())


def _print_summary(summary: Summary, out_dir: Path | None) -> None:
    """The error, then (for a run that took place, writing ``out_dir``) what it did, on
    stderr; the JSON summary as stdout's last line."""
    if summary.error:
        _say(f"error: {summary.error}")
    for line in summary.lines(out_dir) if out_dir is not None else []:
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


PRIVACY_KEY_REFUSAL = (
    "The privacy key is never taken from a flag (it would show in shell history and ps); set "
    "GENESYS_EXPORT_PRIVACY_KEY, or key_file under [privacy] in config.toml."
)


def _redact(settings: Settings) -> None:
    """No line from now on shows the client secret, the Pushgateway's password or the privacy
    key (whichever way it is given)."""
    key = settings.privacy_key
    with contextlib.suppress(ConfigError):  # an unreadable key file: the run refuses it later
        key = settings.privacy.read_key(key)
    logs.redact([settings.connection.client_secret, os.environ.get(PUSH_PASSWORD, ""), key])


if __name__ == "__main__":
    sys.exit(main())
