"""The Python API: the commands as functions, for orchestrators (Airflow, Dagster, Prefect).

    from exporter import api

    summary = api.run(config="/etc/genesys-export/config.toml", out="/data/genesys")
    print(summary.as_json())

Each function takes what its command takes: ``config`` (the config file; default
``./config.toml`` when there is one), ``env`` (where ``GENESYSCLOUD_*`` are read; default the
process's environment) and options named as the command's flags (``out``, ``start``,
``datasets``, ``layout``, ...; ``exporter.config.OPTIONS``), which override both. Each returns
the typed summary the command prints as its last line (``as_json()`` is that line), after
writing the metrics file as the command does, and raises when the command would exit non-zero:
an ``ExportError`` of the exit code's class (``ConfigError`` 2, ``AuthError`` 3, ...; the class
tree in ``exporter.errors``), with ``exit_code`` set and the summary attached as ``summary``.

No function installs signal handlers: a caller that wants a polite stop passes a ``Stopper``
(``export``) or a ``RunStop`` (``run``) and calls its ``stop`` from its event loop's thread.
The CLI is built on the same functions, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from exporter.bundled import serving_sandbox
from exporter.config import (
    OPTION_FLAGS,
    LocalSettings,
    Settings,
    load_local_settings,
    load_settings,
    option_overrides,
)
from exporter.datasets import select
from exporter.engine.kinds import kind_of
from exporter.engine.scheduler import new_run_id
from exporter.errors import ConfigError, ExportError, error_for
from exporter.forget import ForgetSummary, require_folder
from exporter.forget import forget as run_forget
from exporter.pipeline import RunRequest, RunStop, RunSummary
from exporter.pipeline import run as run_pipeline
from exporter.plan import ExportRequest
from exporter.progress import NoProgress, Progress
from exporter.prune import PruneRequest, PruneSummary, check_folder
from exporter.prune import prune as run_prune
from exporter.publish import PublishRequest, PublishSummary, check_installed, publish_tables
from exporter.report import with_metrics
from exporter.runner import Stopper
from exporter.runner import export as run_export
from exporter.signals import stopping_build_on_signals, stopping_on_signals
from exporter.store.lock import RunLock
from exporter.summary import Summary
from exporter.tables import BuildSummary, Stop, TablesRequest
from exporter.windows import show_instant, validate_range

log = logging.getLogger("exporter")
Config = str | os.PathLike[str] | None
_S = TypeVar("_S")


def export(
    *,
    config: Config = None,
    env: Mapping[str, str] | None = None,
    since_last: bool = False,
    force: bool = False,
    stopper: Stopper | None = None,
    **options: object,
) -> Summary:
    """``genesys-export export``: the range of ``start``/``end`` (or ``since_last``) of the
    datasets configured; returns its summary, or raises its error (``summary`` attached)."""
    settings = load(config, env, options)
    summary = with_metrics(
        export_now(settings, since_last=since_last, force=force, stopper=stopper),
        settings.output,
        os.environ if env is None else env,
    )
    return _returned(summary, summary.as_json())


def tables(
    *,
    config: Config = None,
    env: Mapping[str, str] | None = None,
    full: bool = False,
    stop: Stop | None = None,
    **options: object,
) -> BuildSummary:
    """``genesys-export tables``: build or bring up to date the folder's DuckDB database and
    Parquet files; returns the build's summary, or raises its error."""
    from exporter.tables.build import build_tables  # DuckDB, only for a build

    settings = load_local(config, env, options)
    return build_tables(tables_request(settings, full=full), stop=stop)


def run(
    *,
    config: Config = None,
    env: Mapping[str, str] | None = None,
    stop: RunStop | None = None,
    **options: object,
) -> RunSummary:
    """``genesys-export run``: export the configured datasets (from ``start`` on a new
    folder, then from the earliest window not complete), then build the tables, under one
    lock; returns the run's summary, or raises the worst step's error."""
    settings = load(config, env, options)
    summary = run_now(settings, stop=stop, env=env)
    return _returned(summary, summary.as_json())


def prune(
    *,
    config: Config = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    **options: object,
) -> Pruned:
    """``genesys-export prune``: remove the windows older than ``older_than`` (default
    ``[retention] keep``) under the folder's lock, then bring the tables up to date when the
    folder has them; returns what was done, or raises its error (what was done attached)."""
    done = Pruned()
    try:
        prune_now(load_local(config, env, options), dry_run=dry_run, done=done)
    except ExportError as exc:
        exc.summary = done
        raise
    return done


def publish(
    *,
    config: Config = None,
    env: Mapping[str, str] | None = None,
    stop: Stop | None = None,
    **options: object,
) -> PublishSummary:
    """``genesys-export publish``: put the folder's tables where ``format`` and ``to`` (or
    ``catalog`` and ``namespace``) say, the days changed since the last publish there,
    under the folder's lock; returns the publish's summary, or raises its error. Storage
    credentials come from the process's environment (AWS_*, GOOGLE_*, AZURE_*,
    PYICEBERG_*), as the storage libraries read them, whatever ``env`` holds."""
    return publish_now(load_local(config, env, options), stop=stop)


def forget(
    *,
    config: Config = None,
    env: Mapping[str, str] | None = None,
    stop: Stop | None = None,
    **options: object,
) -> ForgetSummary:
    """``genesys-export forget``: erase the subjects of the org's completed GDPR deletions not
    yet applied from every file of the folder, under its lock; returns what it did, or raises
    its error."""
    return forget_now(load(config, env, options), stop=stop)


# ---- what the CLI shares ------------------------------------------------------------------


@dataclass(slots=True)
class Pruned:
    """What a prune command got done, filled in as it goes (an error may end it midway)."""

    pruned: PruneSummary | None = None
    built: BuildSummary | None = None
    memory_limit: str = ""
    error: ExportError | None = None

    def sections(self) -> dict[str, Any]:
        """The summary's sections: the prune's and the build's (None where it did not run)."""
        return {
            "prune": None if self.pruned is None else self.pruned.as_json(),
            "tables": None if self.built is None else self.built.as_json(),
        }


def prune_now(
    settings: Settings | LocalSettings, *, dry_run: bool, done: Pruned, signals: bool = False
) -> None:
    """Prune under the folder's lock (a dry run takes none), then build the tables if the
    folder has a database; ``done`` holds what got done when an error ends it."""
    from exporter.tables.build import build_tables  # DuckDB, only for a build
    from exporter.tables.database import DB_NAME

    request = PruneRequest.from_settings(settings, dry_run=dry_run)
    stop = Stop()
    check_folder(request.out_dir)  # before the lock, which would create a file in it
    lock = contextlib.nullcontext() if dry_run else RunLock(request.out_dir, new_run_id())
    with stopping_build_on_signals(stop.request) if signals else contextlib.nullcontext(), lock:
        done.pruned = run_prune(request, now=datetime.now(UTC))
        if not dry_run and (request.out_dir / DB_NAME).exists():
            build = tables_request(settings, full=False)
            done.built = build_tables(build, stop=stop, locked=True)


def publish_request(settings: Settings | LocalSettings) -> PublishRequest:
    """The publish ``[publish]`` (and its flags) describes; ConfigError when it says none
    (``settings.publish.configured`` is False: ``run`` skips the step then)."""
    chosen = settings.publish
    if chosen.format is None:
        raise ConfigError(
            "Nothing says where to publish: give --format parquet or delta with --to "
            "s3://BUCKET/PREFIX, or --format iceberg with --catalog NAME, or set them under "
            "[publish] in config.toml."
        )
    return PublishRequest(
        out_dir=settings.output.out_dir, format=chosen.format, to=chosen.to,
        catalog=chosen.catalog, namespace=chosen.namespace, keep_history=chosen.keep_history,
    )  # fmt: skip


def publish_now(
    settings: Settings | LocalSettings, *, stop: Stop | None = None, signals: bool = False
) -> PublishSummary:
    """One publish under the folder's lock. ``signals``: SIGTERM and SIGINT stop it between
    days (the CLI's). ``run`` calls ``publish_tables(..., locked=True)`` instead, holding the
    lock for all its steps."""
    request = publish_request(settings)
    stop = stop or Stop()
    with stopping_build_on_signals(stop.request) if signals else contextlib.nullcontext():
        return publish_tables(request, stop=stop)


def forget_now(
    settings: Settings, *, stop: Stop | None = None, signals: bool = False
) -> ForgetSummary:
    """One forget under the folder's lock. ``signals``: SIGTERM and SIGINT stop it before it
    swaps a file (the CLI's)."""
    stop = stop or Stop()
    require_folder(settings.output.out_dir)  # before the lock, which would create a file in it
    with (
        stopping_build_on_signals(stop.request) if signals else contextlib.nullcontext(),
        serving_sandbox(settings) as live,
        RunLock(settings.output.out_dir, new_run_id()),
    ):
        return asyncio.run(run_forget(live, stop=stop))


def load(config: Config, env: Mapping[str, str] | None, options: Mapping[str, object]) -> Settings:
    """Settings as a command loads them: defaults < config file < environment < options."""
    settings, _warnings = load_settings(**_sources(config, env, options))
    return settings


def load_local(
    config: Config, env: Mapping[str, str] | None, options: Mapping[str, object]
) -> LocalSettings:
    """``load`` for the commands that never reach the API (no credentials asked for)."""
    settings, _warnings = load_local_settings(**_sources(config, env, options))
    return settings


def _sources(
    config: Config, env: Mapping[str, str] | None, options: Mapping[str, object]
) -> dict[str, Any]:
    return {
        "config_path": None if config is None else Path(config),
        "env": os.environ if env is None else env,
        "overrides": option_overrides(options),
        "cwd": Path.cwd(),
        "flag_names": OPTION_FLAGS,
    }


def export_request(settings: Settings, *, since_last: bool, force: bool) -> ExportRequest:
    """The export the settings describe, up to ``end`` (now when unset or later)."""
    now = datetime.now(UTC)
    chosen = settings.export
    datasets = select(chosen.datasets)
    end = chosen.end or now
    if end > now:
        log.warning("note: --end %s is in the future; exporting up to now (%s).",
                    show_instant(end), show_instant(now))  # fmt: skip
        end = now
    ranged = any(kind_of(d).ranged for d in datasets)
    if chosen.start is None and ranged and not since_last:
        raise ConfigError(
            "No --start given; add --start YYYY-MM-DD, or --since-last to continue "
            "from the earliest window that is not complete (snapshots alone need neither)."
        )
    if chosen.start is not None:
        validate_range(chosen.start, end, now=now)
    return ExportRequest(chosen.start, end, force=force, lookback=chosen.lookback,
                         since_last=since_last, datasets=datasets)  # fmt: skip


def tables_request(settings: Settings | LocalSettings, *, full: bool) -> TablesRequest:
    return TablesRequest(
        out_dir=settings.output.out_dir,
        layout=settings.tables.layout,
        memory_limit=settings.tables.memory_limit,
        threads=settings.tables.threads or None,
        full=full,
    )


def run_request(settings: Settings) -> RunRequest:
    """``run``'s steps: the export as a schedule runs it (--since-last, from ``start`` on a new
    folder), the prune of ``[retention] keep`` (checked now: a duration too short for the
    lookback or the open horizon is bad input before anything runs), an incremental build,
    the publish ``[publish]`` describes (its settings and libraries checked now too)."""
    keep = settings.retention.keep
    publish = None
    if settings.publish.format is not None:
        publish = publish_request(settings)
        check_installed(publish)
    return RunRequest(
        export=export_request(settings, since_last=True, force=False),
        tables=tables_request(settings, full=False),
        prune=PruneRequest.from_settings(settings) if keep is not None else None,
        publish=publish,
        forget=settings.forget.enabled,
    )


def export_now(
    settings: Settings,
    *,
    since_last: bool,
    force: bool,
    stopper: Stopper | None = None,
    progress: Progress | None = None,
    signals: bool = False,
) -> Summary:
    """One export, its bad input included in its summary. ``signals``: SIGTERM and SIGINT
    stop it politely (the CLI's; ``exporter.signals``). A progress display gets the records
    to fetch counted first."""
    stopper = stopper or Stopper()

    async def exporting(live: Settings, request: ExportRequest) -> Summary:
        task = asyncio.current_task()
        assert task is not None
        stopper.attach(task)  # a stop while planning cancels the planning at once
        with stopping_on_signals(stopper.stop) if signals else contextlib.nullcontext():
            return await run_export(live, request, progress=progress or NoProgress(),
                                    stopper=stopper, estimate=progress is not None)  # fmt: skip

    try:
        with serving_sandbox(settings) as live:
            request = export_request(live, since_last=since_last, force=force)
            return asyncio.run(exporting(live, request))
    except ConfigError as exc:
        return Summary(exc.summary_status, exc.exit_code, error=str(exc))


def run_now(
    settings: Settings,
    *,
    stop: RunStop | None = None,
    progress: Progress | None = None,
    signals: bool = False,
    env: Mapping[str, str] | None = None,
) -> RunSummary:
    """One run, its metrics written from the export step's figures with the run's verdict.
    ``signals``: SIGTERM and SIGINT stop the step running, politely."""
    stop = stop or RunStop()

    async def running(live: Settings) -> RunSummary:
        with stopping_on_signals(stop.stop) if signals else contextlib.nullcontext():
            return await run_pipeline(live, run_request(live), progress=progress or NoProgress(),
                                      stop=stop, estimate=progress is not None)  # fmt: skip

    try:
        with serving_sandbox(settings) as live:
            summary = asyncio.run(running(live))
    except ConfigError as exc:
        steps = {"export": {"status": exc.summary_status, "exit_code": exc.exit_code,
                            "error": str(exc)}}  # fmt: skip
        summary = RunSummary(exc.summary_status, exc.exit_code, steps, 0.0, error=str(exc))
    return with_run_metrics(summary, settings, os.environ if env is None else env)


def run_verdict(summary: RunSummary) -> Summary:
    """The export step's figures with the run's verdict: what the metrics and the lineage
    events of a run say (they describe datasets, which the export step wrote)."""
    exported = summary.export or Summary(summary.status, summary.exit_code)
    return dataclasses.replace(exported, status=summary.status, exit_code=summary.exit_code,
                               error=summary.error)  # fmt: skip


def with_run_metrics(summary: RunSummary, settings: Settings, env: Mapping[str, str]) -> RunSummary:
    """The run once its metrics are written and pushed: the export's figures, the run's
    verdict; a file that cannot be written fails the run as it fails an export."""
    written = with_metrics(run_verdict(summary), settings.output, env)
    if written.exit_code == summary.exit_code:
        return summary
    return dataclasses.replace(
        summary, status=written.status, exit_code=written.exit_code, error=written.error
    )


def _returned(summary: _S, as_json: Mapping[str, Any]) -> _S:
    """``summary``, or its error raised when the command would exit non-zero."""
    code: int = as_json["exit_code"]
    if code == 0:
        return summary
    raise error_for(as_json["status"], code, as_json.get("error") or as_json["status"], summary)
