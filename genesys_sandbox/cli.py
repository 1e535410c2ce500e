"""``genesys-export sandbox``: run the sandbox standalone until Ctrl-C or SIGTERM.

The main CLI (``exporter/cli.py``) wires the subcommand to ``add_arguments`` and ``run``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from datetime import UTC, datetime

from genesys_sandbox.data import DatasetSpec
from genesys_sandbox.permissions import CONVERSATION_DETAIL_ANY
from genesys_sandbox.server import Sandbox
from genesys_sandbox.settings import FaultRule, SandboxSettings, fault_mix

DEFAULT_PORT = 8080
_DEMO = SandboxSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's flags: listener, data, credentials, timing, limits and faults."""
    add = parser.add_argument
    spec = DatasetSpec()
    add("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = free)")
    add("--conversations", type=int, default=spec.conversations, help="conversations to generate")
    add("--start", type=_instant, default=spec.start, help="first day of data, YYYY-MM-DD (UTC)")
    add("--days", type=int, default=spec.days, help=f"days of data (default {spec.days})")
    add("--seed", type=int, default=spec.seed, help="data seed: same seed, same records")
    add("--client-id", default=_DEMO.client_id, help="accepted OAuth client id")
    add("--client-secret", default=_DEMO.client_secret, help="accepted OAuth client secret")
    add("--token-ttl", type=float, default=_DEMO.token_ttl_s, help="token lifetime, seconds")
    add("--token-error-status", type=int, choices=(400, 401), default=400,
        help="status of a wrong-secret answer (default 400, as observed)")  # fmt: skip
    add(
        "--no-analytics-permission",
        action="store_true",
        help="shorthand: deny both conversation-detail permissions (analytics routes 403)",
    )
    add("--deny-permission", action="append", default=[], metavar="NAME",
        help="repeatable: a permission the client lacks, e.g. routing:queue:view")  # fmt: skip
    add("--latency-ms", type=float, default=0.0, help="added latency per request")
    add("--jitter-ms", type=float, default=0.0, help="plus up to this much random latency")
    add("--rate-per-minute", type=int, default=_DEMO.rate_per_minute,
        help="requests per token per window (default 300; 0 = unlimited)")  # fmt: skip
    add("--rate-window", type=float, default=_DEMO.rate_window_s, help="rate window, seconds")
    add("--max-concurrent-jobs", type=int, default=_DEMO.max_concurrent_jobs)
    add("--job-delay", type=float, default=_DEMO.job_delay_s, help="seconds until FULFILLED")
    add("--job-expiry", type=float, default=_DEMO.job_expiry_s, help="seconds until EXPIRED")
    add(
        "--job-expiry-pages",
        type=int,
        default=None,
        help="results also expire once a job served this many pages (default: by time only)",
    )
    _add_availability(parser)
    add("--query-drift", type=float, default=0.0, help="fraction of query pages that repeat")
    add("--evaluated-share", type=float, default=spec.evaluated_share,
        help="share of the conversations an agent handled that are evaluated")  # fmt: skip
    add("--surveyed-share", type=float, default=spec.surveyed_share,
        help="share of the inbound conversations an agent handled that are surveyed")  # fmt: skip
    add("--evaluation-edits-per-hour", type=float, default=0.0,
        help="re-reviews per finished evaluation per hour (default 0: none)")  # fmt: skip
    _add_listings(parser)
    _add_faults(parser)


def _add_listings(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--listing-max-page-size",
        type=int,
        default=_DEMO.listing_max_page_size,
        help="largest page of the entity listings (a larger pageSize is served at it)",
    )
    add(
        "--queue-members-max-page-size",
        type=int,
        default=_DEMO.queue_members_max_page_size,
        help="largest page of a queue's members",
    )
    add("--listing-refuse-oversize", action="append", metavar="ROUTE",
        help="repeatable: a listing route ('*': every one) that answers a pageSize above its "
        "largest with 400 naming the allowed range, instead of serving the largest (default: "
        "the quality form listings)")  # fmt: skip
    add("--form-max-page-size", type=int, default=_DEMO.form_max_page_size,
        help="largest page of the quality form listings")  # fmt: skip
    add(
        "--listing-drift",
        type=float,
        default=0.0,
        help="chance that a listing page is preceded by one entity deleted and one created",
    )
    add("--retention-days", type=int, default=_DEMO.retention_days,
        help="analytics data retention the org reports (90-1825)")  # fmt: skip


def _add_availability(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--availability-date", type=_instant, help="fixed dataAvailabilityDate")
    group.add_argument("--availability-lag", type=float, default=0.0,
                       help="dataAvailabilityDate = now minus this many seconds")  # fmt: skip
    users = parser.add_mutually_exclusive_group()
    users.add_argument(
        "--user-availability-date", type=_instant, help="fixed dataAvailabilityDate of user details"
    )
    users.add_argument("--user-availability-lag", type=float, default=0.0,
                       help="the same, for user details")  # fmt: skip


def _add_faults(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="fraction of API requests answered 429/500/502/503/504")  # fmt: skip
    parser.add_argument("--fault", action="append", default=[], type=_fault, metavar="SPEC",
                        help="repeatable, e.g. 'kind=status,status=503,probability=0.05,"
                        "retry-after=2' or 'kind=drop,routes=jobs.results,count=3'")  # fmt: skip
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of fault choices")


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not a date (YYYY-MM-DD) or ISO instant"
        raise argparse.ArgumentTypeError(message) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fault(text: str) -> FaultRule:
    try:
        return FaultRule.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def settings_from_args(args: argparse.Namespace) -> SandboxSettings:
    """The SandboxSettings the flags describe."""
    dataset = DatasetSpec(conversations=args.conversations, start=args.start, days=args.days,
                          seed=args.seed, evaluated_share=args.evaluated_share,
                          surveyed_share=args.surveyed_share)  # fmt: skip
    refused = args.listing_refuse_oversize
    return SandboxSettings(
        dataset=dataset, host=args.host, port=args.port, client_id=args.client_id,
        client_secret=args.client_secret, token_ttl_s=args.token_ttl,
        token_error_status=args.token_error_status,
        denied_permissions=_denied(args),
        rate_per_minute=args.rate_per_minute or None, rate_window_s=args.rate_window,
        max_concurrent_jobs=args.max_concurrent_jobs, latency_ms=args.latency_ms,
        latency_jitter_ms=args.jitter_ms, job_delay_s=args.job_delay,
        job_expiry_s=args.job_expiry, job_expiry_pages=args.job_expiry_pages,
        availability_date=args.availability_date,
        availability_lag_s=args.availability_lag,
        user_availability_date=args.user_availability_date,
        user_availability_lag_s=args.user_availability_lag, query_drift=args.query_drift,
        listing_max_page_size=args.listing_max_page_size,
        queue_members_max_page_size=args.queue_members_max_page_size,
        listing_refuse_oversize=_DEMO.listing_refuse_oversize if refused is None else (
            tuple(refused)
        ), form_max_page_size=args.form_max_page_size,
        evaluation_edits_per_hour=args.evaluation_edits_per_hour,
        listing_drift=args.listing_drift, retention_days=args.retention_days,
        faults=(*fault_mix(args.fault_rate), *args.fault) if args.fault_rate else tuple(args.fault),
        fault_seed=args.fault_seed,
    )  # fmt: skip


def _denied(args: argparse.Namespace) -> tuple[str, ...]:
    shorthand = CONVERSATION_DETAIL_ANY if args.no_analytics_permission else ()
    return tuple(dict.fromkeys([*shorthand, *args.deny_permission]))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 for bad settings, 1 if it cannot bind."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(settings))
    except OSError as exc:
        print(f"error: the sandbox cannot listen on {settings.host}:{settings.port}: {exc}. "
              "Choose another --port (0 picks a free one).", file=sys.stderr)  # fmt: skip
        return 1
    return 0


async def _serve(settings: SandboxSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    began = time.perf_counter()
    async with Sandbox(settings) as sandbox:
        _announce(sandbox, settings, time.perf_counter() - began)
        await stop.wait()
    print("sandbox stopped.", flush=True)


def _announce(sandbox: Sandbox, settings: SandboxSettings, startup_s: float) -> None:
    spec = settings.dataset
    # A secret the user chose is theirs to know; only the published demo secret is echoed.
    secret = (
        settings.client_secret if settings.client_secret == _DEMO.client_secret else "(as given)"
    )
    rate = settings.rate_per_minute or "unlimited"
    print(
        f"Genesys Cloud sandbox listening on {sandbox.url} (login and API base URL)\n"
        f"  client id:     {settings.client_id}\n"
        f"  client secret: {secret}\n"
        f"  data:          {spec.conversations} conversations from {spec.start:%Y-%m-%d}, "
        f"{spec.days} days, seed {spec.seed} (built in {startup_s:.1f} s)\n"
        f"  rate limit:    {rate} requests per token per {settings.rate_window_s:g} s; "
        f"{len(settings.faults)} fault rule(s)\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
